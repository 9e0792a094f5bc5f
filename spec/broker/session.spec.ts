import { expect } from 'chai'
import type { ClientHandle } from '../../lib/backend/backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connack } from '../helpers/flow.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { pingPong } from '../helpers/events.js'

describe('broker – sessions', () => {
  const teardown = useTeardown()

  it('a persistent session gets the QoS 1 messages queued while it was away [MQTT-3.1.2-5]', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 1 }])
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('q', 'one', 1, 1))
    pub.send(publish('q', 'two', 1, 2))
    await pub.next()
    await pub.next()
    const back = new (await import('../helpers/flow.js')).Peer(broker)
    expect(await back.connect({ clientId: 's', clean: false })).to.deep.equal(connack(true))
    const first = (await back.next()) as PublishPacket
    const second = (await back.next()) as PublishPacket
    expect([first.payload.toString(), second.payload.toString()]).to.deep.equal(['one', 'two'])
  })

  it('resends unacknowledged QoS 1 deliveries with DUP when the session resumes [MQTT-4.4.0-1]', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 1 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('q', 'x', 1, 1))
    const first = (await sub.next()) as PublishPacket
    expect(first.dup).to.equal(false)
    sub.destroy() // no PUBACK
    await sub.waitClosed()
    const back = await connected(broker, { clientId: 's', clean: false })
    const again = (await back.next()) as PublishPacket
    expect(again).to.deep.include({ topic: 'q', qos: 1, dup: true, packetId: first.packetId })
    back.send({ type: 'puback', packetId: again.packetId! })
    await pingPong(back)
  })

  it('resends PUBREL for a QoS 2 delivery that got PUBREC but no PUBCOMP', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 2 }])
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('q', 'x', 2, 1))
    const first = (await sub.next()) as PublishPacket
    sub.send({ type: 'pubrec', packetId: first.packetId! })
    expect(await sub.next()).to.deep.equal({ type: 'pubrel', packetId: first.packetId })
    sub.destroy()
    await sub.waitClosed()
    const back = await connected(broker, { clientId: 's', clean: false })
    expect(await back.next()).to.deep.equal({ type: 'pubrel', packetId: first.packetId })
    back.send({ type: 'pubcomp', packetId: first.packetId! })
  })

  it('a clean session starts empty: no subscriptions, no queue', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 1 }])
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const back = await connected(broker, { clientId: 's', clean: true })
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('q', 'x', 1, 1))
    await pub.next()
    await pingPong(back)
  })

  it('takeover: a second connection with the same client id closes the first [MQTT-3.1.4-3]', async () => {
    const broker = makeBroker(teardown)
    const first = await connected(broker, { clientId: 'same' })
    const second = await connected(broker, { clientId: 'same' })
    await first.waitClosed()
    second.send({ type: 'pingreq' })
    expect(await second.next()).to.deep.equal({ type: 'pingresp' })
  })

  it('takeover: MQTT 5 gets DISCONNECT 0x8E Session taken over', async () => {
    const broker = makeBroker(teardown)
    const first = await connected(broker, { clientId: 'same', protocolLevel: 5 })
    await connected(broker, { clientId: 'same', protocolLevel: 5 })
    expect(await first.next()).to.deep.include({ type: 'disconnect', reasonCode: ReasonCode.SessionTakenOver })
    await first.waitClosed()
  })

  it('takeover keeps the persistent session: subscriptions carry over', async () => {
    const broker = makeBroker(teardown)
    const first = await connected(broker, { clientId: 'same', clean: false })
    await subscribe(first, [{ topicFilter: 't', qos: 0 }])
    const second = new (await import('../helpers/flow.js')).Peer(broker)
    expect(await second.connect({ clientId: 'same', clean: false })).to.deep.equal(connack(true))
    await first.waitClosed()
    const pub = await connected(broker, { clientId: 'pub' })
    pub.send(publish('t', 'x'))
    expect(await second.next()).to.deep.equal(publish('t', 'x'))
  })

  it('MQTT 5: DISCONNECT may not turn a Session Expiry of 0 into non-zero (MQTT 5.0 3.14.2.2.2)', async () => {
    const broker = makeBroker(teardown)
    const peer = await connected(broker, { protocolLevel: 5 })
    peer.send({ type: 'disconnect', properties: { sessionExpiryInterval: 10 } })
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
  })

  it('takeover keeps the deliveries waiting beyond the inflight window: the new connection gets them all, in order [MQTT-4.6.0-6]', async () => {
    const broker = makeBroker(teardown, { inflightWindow: 2 })
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 1 }])
    const pub = await connected(broker, { clientId: 'pub' })
    for (let i = 1; i <= 5; i++) pub.send(publish('q', `m${i}`, 1, i))
    for (let i = 1; i <= 5; i++) await pub.next() // five PUBACKs: all five were accepted
    const inflight = [(await sub.next()) as PublishPacket, (await sub.next()) as PublishPacket]
    expect(inflight.map((p) => p.payload.toString())).to.deep.equal(['m1', 'm2'])
    // No PUBACK: m3..m5 wait beyond the window of 2 when the same client id connects again.
    const back = await connected(broker, { clientId: 's', clean: false })
    await sub.waitClosed()
    const got: string[] = []
    for (let i = 0; i < 5; i++) {
      const p = (await back.next()) as PublishPacket
      got.push(`${p.payload.toString()}${p.dup ? '*' : ''}`)
      back.send({ type: 'puback', packetId: p.packetId! })
    }
    expect(got).to.deep.equal(['m1*', 'm2*', 'm3', 'm4', 'm5'])
  })

  it('a message a backend marks as possibly sent before goes out with DUP=1 [MQTT-3.3.1-1]', async () => {
    const broker = makeBroker(teardown)
    const sub = await connected(broker, { clientId: 's', clean: false })
    await subscribe(sub, [{ topicFilter: 'q', qos: 1 }])
    const handle = broker.connectedClients.find((c) => c.clientId === 's') as unknown as ClientHandle
    const message = { topic: 'q', payload: Buffer.from('again'), qos: 1 as const, retain: false, redelivery: true }
    expect(handle.deliver(message, { topicFilter: 'q', qos: 1 })).to.equal('sent')
    expect(handle.deliver({ ...message, redelivery: false }, { topicFilter: 'q', qos: 1 })).to.equal('sent')
    const [first, second] = [(await sub.next()) as PublishPacket, (await sub.next()) as PublishPacket]
    expect(first).to.deep.include({ topic: 'q', qos: 1, dup: true })
    expect(second).to.deep.include({ topic: 'q', qos: 1, dup: false })
  })
})

