import { expect } from 'chai'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket, QoS, Subscription } from '../../lib/packet/types.js'
import type { Broker } from '../../lib/broker/broker.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { beforePong, pingPong } from '../helpers/events.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket> = {}): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: 5, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribe(p: Peer, subscriptions: Subscription[], identifier?: number, packetId = 1): Promise<number[]> {
  p.send({
    type: 'subscribe',
    packetId,
    subscriptions,
    ...(identifier === undefined ? {} : { properties: { subscriptionIdentifiers: [identifier] } })
  })
  const ack = await p.next()
  expect(ack).to.include({ type: 'suback', packetId })
  return (ack as { reasonCodes: number[] }).reasonCodes
}

function publish(topic: string, payload: string, qos: QoS = 0, packetId?: number, extra: Partial<PublishPacket> = {}): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...extra }
  if (packetId !== undefined) packet.packetId = packetId
  return packet
}

describe('MQTT 5 – subscription options and identifiers', () => {
  const teardown = useTeardown()

  it('No Local skips only that subscription: an overlapping one still delivers [MQTT-3.8.3-3]', async () => {
    const broker = makeBroker(teardown)
    const c = await peer(broker, { clientId: 'me' })
    await subscribe(c, [{ topicFilter: 'a/+', qos: 1, noLocal: true }, { topicFilter: 'a/b', qos: 0 }])
    c.send(publish('a/b', 'self'))
    expect(await c.next()).to.deep.equal(publish('a/b', 'self'))
    c.send(publish('a/c', 'only-no-local'))
    await pingPong(c, 'not sent back on the No Local subscription')
  })

  it('Retain As Published 0 clears RETAIN on live delivery [MQTT-3.3.1-12]', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 't', qos: 0 }])
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'r', 0, undefined, { retain: true }))
    expect(await sub.next()).to.deep.include({ retain: false })
  })

  it('Retain Handling 0 sends the retained messages again on a repeated SUBSCRIBE [MQTT-3.3.1-9]', async () => {
    const broker = makeBroker(teardown)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'r', 0, undefined, { retain: true }))
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 't', qos: 0, retainHandling: 0 }])
    expect(await sub.next()).to.deep.include({ retain: true })
    await subscribe(sub, [{ topicFilter: 't', qos: 0, retainHandling: 0 }], undefined, 2)
    expect(await sub.next()).to.deep.include({ retain: true })
    await subscribe(sub, [{ topicFilter: 't', qos: 0, retainHandling: 1 }], undefined, 3)
    await subscribe(sub, [{ topicFilter: 't', qos: 0, retainHandling: 2 }], undefined, 4)
    await pingPong(sub, 'no retained message for Retain Handling 1 and 2')
  })

  it('a subscription identifier is stored and sent with each matching PUBLISH [MQTT-3.3.4-3]', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 'a/#', qos: 0 }], 42)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('a/b', 'x'))
    expect(await sub.next()).to.deep.equal(publish('a/b', 'x', 0, undefined, { properties: { subscriptionIdentifiers: [42] } }))
  })

  it('overlapping subscriptions: one copy at the highest QoS with every identifier [MQTT-3.3.4-2] [MQTT-3.3.4-4]', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 'a/+', qos: 0 }], 1)
    await subscribe(sub, [{ topicFilter: 'a/b', qos: 1 }], 2, 2)
    await subscribe(sub, [{ topicFilter: '#', qos: 0 }], undefined, 3)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('a/b', 'x', 1, 5))
    const got = (await sub.next()) as PublishPacket
    expect(got).to.deep.include({ topic: 'a/b', qos: 1 })
    expect([...(got.properties?.subscriptionIdentifiers ?? [])].sort()).to.deep.equal([1, 2])
    sub.send({ type: 'puback', packetId: got.packetId! })
    expect((await beforePong(sub)).filter((p) => p.type === 'publish')).to.deep.equal([])
  })

  it('a repeated SUBSCRIBE replaces the identifier; without one, none is sent', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: 't', qos: 0 }], 7)
    await subscribe(sub, [{ topicFilter: 't', qos: 0 }], undefined, 2)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'x'))
    expect(await sub.next()).to.deep.equal(publish('t', 'x'))
  })

  it('identifiers survive in a resumed session and come with its queued messages', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 60 } })
    await subscribe(sub, [{ topicFilter: 't', qos: 1 }], 9)
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'queued', 1, 1))
    await pub.next()
    const back = await peer(broker, { clientId: 's', clean: false, properties: { sessionExpiryInterval: 60 } })
    const got = (await back.next()) as PublishPacket
    expect(got.properties).to.deep.equal({ subscriptionIdentifiers: [9] })
  })
})

describe('MQTT 5 – shared subscriptions', () => {
  const teardown = useTeardown()

  it('round robin by default: members take turns (MQTT 5.0 4.8.2)', async () => {
    const broker = makeBroker(teardown)
    const a = await peer(broker, { clientId: 'a' })
    const b = await peer(broker, { clientId: 'b' })
    await subscribe(a, [{ topicFilter: '$share/g/t', qos: 0 }])
    await subscribe(b, [{ topicFilter: '$share/g/t', qos: 0 }])
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 0; i < 6; i++) pub.send(publish('t', `${i}`))
    await pingPong(pub)
    const gotA = (await beforePong(a)).map((p) => (p as PublishPacket).payload.toString())
    const gotB = (await beforePong(b)).map((p) => (p as PublishPacket).payload.toString())
    expect(gotA.length).to.equal(3)
    expect(gotB.length).to.equal(3)
    expect([...gotA, ...gotB].sort()).to.deep.equal(['0', '1', '2', '3', '4', '5'])
    // Alternating: consecutive messages go to different members.
    expect(gotA.map(Number).every((n) => n % 2 === Number(gotA[0]) % 2)).to.equal(true)
  })

  it("policy 'random' gives each message to one member chosen at random", async () => {
    const broker = makeBroker(teardown, { memory: { sharedSubscriptionPolicy: 'random' } })
    const a = await peer(broker, { clientId: 'a' })
    const b = await peer(broker, { clientId: 'b' })
    await subscribe(a, [{ topicFilter: '$share/g/t', qos: 0 }])
    await subscribe(b, [{ topicFilter: '$share/g/t', qos: 0 }])
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 0; i < 60; i++) pub.send(publish('t', `${i}`))
    await pingPong(pub)
    const gotA = await beforePong(a)
    const gotB = await beforePong(b)
    expect(gotA.length + gotB.length).to.equal(60)
    // Each member is chosen with probability 1/2: both get some (failure odds 2^-59).
    expect(gotA.length).to.be.greaterThan(0)
    expect(gotB.length).to.be.greaterThan(0)
  })

  it('no retained messages are sent for a shared subscription (MQTT 5.0 3.8.3.1)', async () => {
    const broker = makeBroker(teardown)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'r', 0, undefined, { retain: true }))
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, [{ topicFilter: '$share/g/t', qos: 0 }])
    await pingPong(sub, 'no retained message on a shared subscription')
  })

  it("a leaving member's unacknowledged QoS 1 messages go to another member (MQTT 5.0 4.8.2)", async () => {
    const backend = new MemoryBackend()
    const broker = makeBroker(teardown, { backend })
    const leaving = await peer(broker, { clientId: 'leaving' })
    await subscribe(leaving, [{ topicFilter: '$share/g/t', qos: 1 }])
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', 'job', 1, 1))
    await pub.next()
    expect(await leaving.next()).to.deep.include({ type: 'publish', topic: 't' })
    const staying = await peer(broker, { clientId: 'staying' })
    await subscribe(staying, [{ topicFilter: '$share/g/t', qos: 1 }])
    // The first member never acknowledges and goes away; its session ends with the connection.
    leaving.destroy()
    const got = (await staying.next()) as PublishPacket
    expect(got).to.deep.include({ topic: 't', qos: 1 })
    expect(got.payload.toString()).to.equal('job')
    expect(backend.stats.sharedRedelivered).to.equal(1)
  })

  it('messages waiting beyond a leaving member\'s window go to another member', async () => {
    const broker = makeBroker(teardown)
    const leaving = await peer(broker, { clientId: 'leaving', properties: { receiveMaximum: 1 } })
    await subscribe(leaving, [{ topicFilter: '$share/g/t', qos: 1 }])
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 1; i <= 3; i++) {
      pub.send(publish('t', `m${i}`, 1, i))
      await pub.next()
    }
    expect(await leaving.next()).to.deep.include({ type: 'publish' })
    const staying = await peer(broker, { clientId: 'staying' })
    await subscribe(staying, [{ topicFilter: '$share/g/t', qos: 1 }])
    leaving.destroy()
    const payloads: string[] = []
    for (let i = 0; i < 3; i++) {
      const p = (await staying.next()) as PublishPacket
      payloads.push(p.payload.toString())
      staying.send({ type: 'puback', packetId: p.packetId! })
    }
    expect(payloads).to.deep.equal(['m1', 'm2', 'm3'])
  })

  it('when not available: told in CONNACK and refused with SUBACK 0x9E', async () => {
    const broker = makeBroker(teardown, { sharedSubscriptionAvailable: false })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { sharedSubscriptionAvailable: false } })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$share/g/t', qos: 0 }, { topicFilter: 't', qos: 0 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [ReasonCode.SharedSubscriptionsNotSupported, 0] })
      .run()
  })
})
