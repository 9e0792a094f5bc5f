import { expect } from 'chai'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Broker } from '../../lib/broker/broker.js'
import { ended, pingPong, sentinelNext } from '../helpers/events.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

const v5 = (fields: Partial<ConnectPacket> = {}): ConnectPacket => connect({ protocolLevel: 5, ...fields })

async function peer(broker: Broker, fields: Partial<ConnectPacket>): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: 5, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function watcher(broker: Broker, filter: string): Promise<Peer> {
  const p = await peer(broker, { clientId: 'watcher' })
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos: 0 }] })
  expect(await p.next()).to.deep.include({ type: 'suback' })
  return p
}

describe('MQTT 5 – session expiry', () => {
  const teardown = useTeardown()

  it('tells the client in CONNACK when the server lowers its Session Expiry Interval (3.2.2.3.2)', async () => {
    const broker = makeBroker(teardown, { maxSessionExpiryInterval: 60 })
    await flow(broker)
      .send(v5({ clientId: 'a', clean: false, properties: { sessionExpiryInterval: 3600 } }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { sessionExpiryInterval: 60 } })
      .run()
    await flow(broker)
      .send(v5({ clientId: 'b', properties: { sessionExpiryInterval: 30 } }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .run()
  })

  it('DISCONNECT may change a non-zero interval; the session keeps the new value', async () => {
    const backend = new MemoryBackend()
    const broker = makeBroker(teardown, { backend })
    const p = await peer(broker, { clientId: 'a', clean: false, properties: { sessionExpiryInterval: 100 } })
    const done = ended(broker, 'a')
    p.send({ type: 'disconnect', properties: { sessionExpiryInterval: 5 } })
    await p.waitClosed()
    await done
    expect(backend.getSession('a')?.expiryInterval).to.equal(5)
  })

  it('DISCONNECT setting 0 ends the session with the connection', async () => {
    const backend = new MemoryBackend()
    const broker = makeBroker(teardown, { backend })
    const p = await peer(broker, { clientId: 'a', clean: false, properties: { sessionExpiryInterval: 100 } })
    const done = ended(broker, 'a')
    p.send({ type: 'disconnect', properties: { sessionExpiryInterval: 0 } })
    await p.waitClosed()
    await done
    expect(backend.getSession('a')).to.equal(undefined)
  })

  it('DISCONNECT changing the interval from 0 to non-zero is a protocol error 0x82 (MQTT 5.0 3.14.2.2.2)', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(v5({ clientId: 'a' }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .send({ type: 'disconnect', properties: { sessionExpiryInterval: 10 } })
      .expect({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
      .expectClose()
      .run()
  })

  it('an away session and its queue are discarded once the interval ran out (MQTT 5.0 3.1.2.11.2)', async () => {
    let clock = Date.now()
    const backend = new MemoryBackend({ now: () => clock })
    const broker = makeBroker(teardown, { backend })
    const sub = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 10 } })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
    await sub.next()
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const pub = await peer(broker, { clientId: 'p' })
    pub.send({ type: 'publish', topic: 't', payload: Buffer.from('kept'), qos: 1, packetId: 1, retain: false, dup: false })
    await pub.next()
    expect(backend.getSession('s')?.queueLength).to.equal(1)
    // Within the interval the session (with its queue) comes back.
    clock += 9_000
    expect(backend.expireSessions()).to.equal(0)
    // After it, the shared sweep removes it.
    clock += 2_000
    expect(backend.expireSessions()).to.equal(1)
    expect(backend.getSession('s')).to.equal(undefined)
    expect(backend.stats.sessionsExpired).to.equal(1)
    const back = new Peer(broker)
    expect(await back.connect({ protocolLevel: 5, clientId: 's', clean: false, properties: { sessionExpiryInterval: 10 } })).to.deep.equal({
      type: 'connack',
      sessionPresent: false,
      reasonCode: 0
    })
    // The discarded queue is not sent: the PINGRESP comes first.
    await pingPong(back, 'no queued message after an expired session')
  })

  it('a session resumed within its interval is present with its queue', async () => {
    let clock = Date.now()
    const backend = new MemoryBackend({ now: () => clock })
    const broker = makeBroker(teardown, { backend })
    const sub = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 10 } })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
    await sub.next()
    const done = ended(broker, 's')
    sub.destroy()
    await done
    const pub = await peer(broker, { clientId: 'p' })
    pub.send({ type: 'publish', topic: 't', payload: Buffer.from('kept'), qos: 1, packetId: 1, retain: false, dup: false })
    await pub.next()
    clock += 9_000
    const back = new Peer(broker)
    expect(await back.connect({ protocolLevel: 5, clientId: 's', clean: false, properties: { sessionExpiryInterval: 10 } })).to.deep.equal({
      type: 'connack',
      sessionPresent: true,
      reasonCode: 0
    })
    expect(await back.next()).to.deep.include({ type: 'publish', topic: 't', qos: 1 })
  })
})

describe('MQTT 5 – Will Delay Interval', () => {
  const teardown = useTeardown()
  const will = (delay: number): ConnectPacket['will'] => ({
    topic: 'will',
    payload: Buffer.from('gone'),
    qos: 0,
    retain: false,
    properties: { willDelayInterval: delay }
  })

  it('publishes the will after the delay, not at once (3.1.3.2.2)', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 20, clock })
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', clean: false, will: will(1), properties: { sessionExpiryInterval: 60 } })
    const done = ended(broker, 'a')
    p.destroy()
    await done
    await clock.advance(980)
    expect(broker.delayedWillCount).to.equal(1)
    await sentinelNext(broker, w, 'will')
    await clock.advance(40)
    expect(broker.delayedWillCount).to.equal(0)
    const got = (await w.next()) as PublishPacket
    expect(got).to.deep.include({ topic: 'will', payload: Buffer.from('gone') })
    // The Will Delay Interval belongs to the will, not to the PUBLISH.
    expect(got.properties).to.equal(undefined)
  })

  it('a new connection to the session within the delay cancels the will [MQTT-3.1.3-9]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 20, clock })
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', clean: false, will: will(1), properties: { sessionExpiryInterval: 60 } })
    const done = ended(broker, 'a')
    p.destroy()
    await done
    await clock.advance(100)
    expect(broker.delayedWillCount).to.equal(1)
    await peer(broker, { clientId: 'a', clean: false, properties: { sessionExpiryInterval: 60 } })
    expect(broker.delayedWillCount).to.equal(0)
    await clock.advance(1300)
    await sentinelNext(broker, w, 'will')
  })

  it('is published when the session ends first: expiry 0 publishes at once', async () => {
    const broker = makeBroker(teardown, { timerInterval: 20 })
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', will: will(30) })
    p.destroy()
    expect(await w.next(300)).to.deep.include({ topic: 'will' })
  })

  it('is published at the session expiry when that comes before the delay', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 20, clock })
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', clean: false, will: will(300), properties: { sessionExpiryInterval: 1 } })
    const done = ended(broker, 'a')
    p.destroy()
    await done
    await clock.advance(980)
    await sentinelNext(broker, w, 'will')
    await clock.advance(40)
    expect(await w.next()).to.deep.include({ topic: 'will' })
  })

  it('a reconnect with Clean Start ends the old session: the will is published at once', async () => {
    const broker = makeBroker(teardown, { timerInterval: 20 })
    const w = await watcher(broker, 'will')
    const p = await peer(broker, { clientId: 'a', clean: false, will: will(30), properties: { sessionExpiryInterval: 60 } })
    const done = ended(broker, 'a')
    p.destroy()
    await done
    await sentinelNext(broker, w, 'will')
    await peer(broker, { clientId: 'a', clean: true })
    expect(await w.next(300)).to.deep.include({ topic: 'will' })
  })

  it('a takeover within the delay does not publish the will', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 20, clock })
    const w = await watcher(broker, 'will')
    const first = await peer(broker, { clientId: 'a', clean: false, will: will(1), properties: { sessionExpiryInterval: 60 } })
    const done = ended(broker, 'a')
    await peer(broker, { clientId: 'a', clean: false, properties: { sessionExpiryInterval: 60 } })
    expect(await first.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.SessionTakenOver, properties: { reasonString: 'another connection took the session over' } })
    await done
    expect(broker.delayedWillCount).to.equal(0)
    await clock.advance(1300)
    await sentinelNext(broker, w, 'will')
  })

  it('broker.close() publishes the delayed wills (the sessions end with the broker)', async () => {
    const backend = new MemoryBackend()
    const published: string[] = []
    const original = backend.publish.bind(backend)
    backend.publish = (client, message) => {
      published.push(message.topic)
      return original(client, message)
    }
    const broker = makeBroker(teardown, { backend })
    const p = await peer(broker, { clientId: 'a', clean: false, will: will(30), properties: { sessionExpiryInterval: 60 } })
    const done = ended(broker, 'a')
    p.destroy()
    await done
    expect(published).to.deep.equal([])
    await broker.close()
    expect(published).to.deep.equal(['will'])
  })
})
