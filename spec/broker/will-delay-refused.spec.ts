/**
 * A refused CONNECT leaves the delayed will of the session's previous connection alone.
 *
 * MQTT 5.0 3.1.3.2.2 Will Delay Interval: "The Server delays publishing the Client's Will Message
 * until the Will Delay Interval has passed or the Session ends, whichever happens first. If a new
 * Network Connection to this Session is made before the Will Delay Interval has passed, the Server
 * MUST NOT send the Will Message [MQTT-3.1.3-9]." 3.1.2.5 Will Flag: the will is published "unless
 * [...] a new Network Connection for the ClientID is opened before the Will Delay Interval has
 * elapsed [MQTT-3.1.2-8]". A CONNECT the server refuses (CONNACK >= 0x80, or closed without
 * CONNACK) never becomes a connection to the session (3.2.2.2: after a refusing CONNACK the server
 * MUST close the Network Connection), so the will stays due; only an accepted connection cancels
 * it (or, with Clean Start, ends the session and publishes it at once).
 */
import { expect } from 'chai'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { SetupResult } from '../../lib/backend/backend.js'
import type { ClientHandle } from '../../lib/backend/backend.js'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { ended, sentinelNext } from '../helpers/events.js'
import { Peer } from '../helpers/flow.js'
import { refusedAfterSetup } from '../helpers/refused-connect.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

const will: ConnectPacket['will'] = { topic: 'will', payload: Buffer.from('gone'), qos: 0, retain: false, properties: { willDelayInterval: 1 } }

/** A MemoryBackend whose next session setup hands out a session that fails `clearWill` once. */
class FailingBackend extends MemoryBackend {
  failNext = false

  override setup(client: ClientHandle, clean: boolean, expiryInterval: number): SetupResult {
    const result = super.setup(client, clean, expiryInterval)
    if (this.failNext) {
      this.failNext = false
      const session = result.session
      const original = session.clearWill.bind(session)
      session.clearWill = () => {
        session.clearWill = original
        throw new Error('the session store failed')
      }
    }
    return result
  }
}

describe('MQTT 5 – a refused CONNECT keeps the delayed will [MQTT-3.1.3-9]', () => {
  const teardown = useTeardown()

  /** A broker, a watcher of `will`, and client `a` gone with a will due in 1 s (virtual time). */
  async function delayedWill(broker: Broker, clock: VirtualClock): Promise<Peer> {
    const w = new Peer(broker)
    expect(await w.connect({ protocolLevel: 5, clientId: 'watcher', username: 'u', password: Buffer.from('good') })).to.include({ reasonCode: 0 })
    w.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'will', qos: 0 }] })
    expect(await w.next()).to.deep.include({ type: 'suback' })
    const a = new Peer(broker)
    const connect = { protocolLevel: 5 as const, clientId: 'a', clean: false, username: 'u', password: Buffer.from('good'), will, properties: { sessionExpiryInterval: 60 } }
    expect(await a.connect(connect)).to.include({ reasonCode: 0 })
    const done = ended(broker, 'a')
    a.destroy()
    await done
    await clock.advance(100)
    expect(broker.delayedWillCount).to.equal(1)
    return w
  }

  /** The will is published once, when due (not before, not twice). */
  async function publishedWhenDue(broker: Broker, clock: VirtualClock, w: Peer): Promise<void> {
    await sentinelNext(broker, w, 'will')
    await clock.advance(1000)
    const got = (await w.next()) as PublishPacket
    expect(got).to.deep.include({ topic: 'will', payload: Buffer.from('gone') })
    expect(broker.delayedWillCount).to.equal(0)
    await sentinelNext(broker, w, 'will')
  }

  for (const clean of [false, true]) {
    it(`refused after the session setup (CONNACK over its Maximum Packet Size, Clean Start ${clean ? 1 : 0}): the will stays due, not published at once`, async () => {
      const clock = new VirtualClock()
      const broker = makeBroker(teardown, { timerInterval: 20, clock, maxSessionExpiryInterval: 60 })
      const w = await delayedWill(broker, clock)
      // The CONNACK would tell the lowered Session Expiry Interval: 10 bytes, over the client's 8.
      await refusedAfterSetup(broker, 'a', clean, { sessionExpiryInterval: 3600, maximumPacketSize: 8 })
      expect(broker.delayedWillCount).to.equal(1)
      await publishedWhenDue(broker, clock, w)
    })
  }

  it('refused with 0x88 Server unavailable when a step after the setup fails: the will stays due', async () => {
    const clock = new VirtualClock()
    const backend = new FailingBackend({ now: () => clock.now() })
    const broker = makeBroker(teardown, { timerInterval: 20, clock, backend })
    const w = await delayedWill(broker, clock)
    backend.failNext = true
    const q = new Peer(broker)
    const done = ended(broker, 'a')
    expect(await q.connect({ protocolLevel: 5, clientId: 'a', clean: false, properties: { sessionExpiryInterval: 60 } })).to.include({
      type: 'connack',
      reasonCode: ReasonCode.ServerUnavailable
    })
    await q.waitClosed()
    await done
    expect(broker.delayedWillCount).to.equal(1)
    await publishedWhenDue(broker, clock, w)
  })

  it('refused for bad credentials (before the setup): the will stays due', async () => {
    const clock = new VirtualClock()
    const backend = withAccessControl(new MemoryBackend({ now: () => clock.now() }), {
      bruteForce: false,
      authenticators: [
        {
          name: 'spec',
          authenticate: (r) => (r.password?.toString() === 'good' ? { result: 'allow' } : { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword })
        }
      ]
    })
    const broker = makeBroker(teardown, { timerInterval: 20, clock, backend })
    const w = await delayedWill(broker, clock)
    const q = new Peer(broker)
    expect(await q.connect({ protocolLevel: 5, clientId: 'a', clean: true, username: 'u', password: Buffer.from('bad') })).to.include({
      reasonCode: ReasonCode.BadUserNameOrPassword
    })
    await q.waitClosed()
    expect(broker.delayedWillCount).to.equal(1)
    await publishedWhenDue(broker, clock, w)
  })

  it('an accepted CONNECT within the delay still cancels it; with Clean Start it is published at once', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 20, clock })
    const w = await delayedWill(broker, clock)
    const resumed = new Peer(broker)
    expect(await resumed.connect({ protocolLevel: 5, clientId: 'a', clean: false, properties: { sessionExpiryInterval: 60 } })).to.include({ reasonCode: 0 })
    expect(broker.delayedWillCount).to.equal(0)
    await clock.advance(1300)
    await sentinelNext(broker, w, 'will')
    // Gone again with a will, then back with Clean Start: the session ends, the will goes out now.
    const again = new Peer(broker)
    const done = ended(broker, 'a')
    expect(await again.connect({ protocolLevel: 5, clientId: 'a', clean: false, will, properties: { sessionExpiryInterval: 60 } })).to.include({ reasonCode: 0 })
    await done
    const gone = ended(broker, 'a')
    again.destroy()
    await gone
    expect(broker.delayedWillCount).to.equal(1)
    const fresh = new Peer(broker)
    expect(await fresh.connect({ protocolLevel: 5, clientId: 'a', clean: true })).to.include({ reasonCode: 0 })
    expect(await w.next()).to.deep.include({ topic: 'will', payload: Buffer.from('gone') })
    expect(broker.delayedWillCount).to.equal(0)
  })
})
