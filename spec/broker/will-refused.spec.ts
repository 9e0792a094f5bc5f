import { expect } from 'chai'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { ClientHandle, SetupResult } from '../../lib/backend/backend.js'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Will } from '../../lib/packet/types.js'
import type { MemorySession } from '../../lib/session/memory-session.js'
import { makeBroker } from '../helpers/broker.js'
import { ended, sentinelNext } from '../helpers/events.js'
import { Peer } from '../helpers/flow.js'
import type { Peer as PeerType } from '../helpers/flow.js'
import { connected, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

const will: Will = { topic: 'will/c', payload: Buffer.from('gone'), qos: 0, retain: false }

/** A MemoryBackend that keeps the last session it set up, to look at its stored will. */
class KeepingBackend extends MemoryBackend {
  last: MemorySession | undefined
  override setup(client: ClientHandle, clean: boolean, expiryInterval: number): SetupResult {
    const result = super.setup(client, clean, expiryInterval)
    this.last = result.session as MemorySession
    return result
  }
}

async function watcher(broker: Broker): Promise<PeerType> {
  const peer = await connected(broker, { clientId: 'watcher' })
  await subscribe(peer, [{ topicFilter: 'will/#', qos: 0 }])
  return peer
}

/**
 * A will belongs to an accepted connection: a CONNECT refused after the backend set its session up
 * (a later step failed) and a connection lost before CONNACK publish no will, and the will stored in
 * the session is withdrawn (a backend that publishes stored wills itself must not find it).
 */
describe('broker – no will for a CONNECT that was not accepted', () => {
  const teardown = useTeardown()

  it('a step after session setup fails: CONNACK 0x88, no will, none left in the session', async () => {
    const backend = new KeepingBackend({
      responseInformation: () => {
        throw new Error('response information store down')
      }
    })
    const broker = makeBroker(teardown, { backend })
    const w = await watcher(broker)
    const done = ended(broker, 'c')
    const c = new Peer(broker)
    const ack = await c.connect({
      clientId: 'c',
      protocolLevel: 5,
      clean: false,
      will,
      properties: { sessionExpiryInterval: 3600, requestResponseInformation: true }
    })
    expect(ack).to.include({ type: 'connack', reasonCode: ReasonCode.ServerUnavailable })
    await c.waitClosed()
    await done
    await sentinelNext(broker, w, 'will/c')
    expect(backend.last?.getWill()).to.equal(undefined)
  })

  it('the connection is lost while a step after session setup is pending: no will', async () => {
    let release: (info: string) => void = () => undefined
    let reached: () => void = () => undefined
    const waiting = new Promise<void>((resolve) => (reached = resolve))
    const backend = new MemoryBackend()
    // The CONNECT waits in the responseInformation step (after setupSession and storeWill).
    Object.assign(backend, {
      responseInformation: () => {
        reached()
        return new Promise<string>((resolve) => (release = resolve))
      }
    })
    const broker = makeBroker(teardown, { backend })
    const w = await watcher(broker)
    const done = ended(broker, 'c')
    const c = new Peer(broker)
    c.send({ type: 'connect', protocolLevel: 5, clean: true, keepalive: 0, clientId: 'c', will, properties: { requestResponseInformation: true } })
    await waiting
    c.destroy()
    await done
    release('late')
    await sentinelNext(broker, w, 'will/c')
  })
})
