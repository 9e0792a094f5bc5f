import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Packet, PublishPacket, QoS } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { connack, connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock } from '../helpers/virtual-clock.js'
import { beforePong, pingPong } from '../helpers/events.js'
import type { Broker } from '../../lib/broker/broker.js'

function publish(topic: string, payload: string, qos: QoS = 0, packetId?: number, extra: Partial<PublishPacket> = {}): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...extra }
  if (packetId !== undefined) packet.packetId = packetId
  return packet
}

async function subscriber(broker: Broker, filter: string, qos: QoS, level: 4 | 5 = 4, clientId = 'sub'): Promise<Peer> {
  const peer = new Peer(broker)
  expect(await peer.connect({ clientId, protocolLevel: level })).to.include({ type: 'connack', reasonCode: 0 })
  peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos }] })
  expect(await peer.next()).to.deep.equal({ type: 'suback', packetId: 1, reasonCodes: [qos] })
  return peer
}

async function publisher(broker: Broker, level: 4 | 5 = 4, clientId = 'pub'): Promise<Peer> {
  const peer = new Peer(broker)
  expect(await peer.connect({ clientId, protocolLevel: level })).to.include({ type: 'connack', reasonCode: 0 })
  return peer
}

describe('broker – PUBLISH', () => {
  const teardown = useTeardown()

  for (const level of [4, 5] as const) {
    describe(`level ${level}`, () => {
      it('delivers QoS 0 to a subscriber', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'a/+', 0, level)
        const pub = await publisher(broker, level)
        pub.send(publish('a/b', 'hello'))
        expect(await sub.next()).to.deep.equal(publish('a/b', 'hello'))
      })

      it('QoS 1: PUBACK to the publisher, QoS 1 delivery with a packet id [MQTT-4.3.2-1]', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'a', 1, level)
        const pub = await publisher(broker, level)
        pub.send(publish('a', 'one', 1, 7))
        expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 7 })
        const delivered = (await sub.next()) as PublishPacket
        expect(delivered).to.deep.include({ type: 'publish', topic: 'a', qos: 1, dup: false, retain: false })
        expect(delivered.packetId).to.be.within(1, 65535)
        sub.send({ type: 'puback', packetId: delivered.packetId! })
      })

      it('forwards the received QoS 1 bytes to receivers at every level, each with its own packet id', async () => {
        const broker = makeBroker(teardown)
        const same = await subscriber(broker, 'f/#', 1, level, 'same')
        const other = await subscriber(broker, 'f/+', 1, level === 4 ? 5 : 4, 'other')
        // Move `same` to packet id 2 so that its id differs from the publisher's and from `other`'s.
        const pub = await publisher(broker, level)
        pub.send(publish('f/0', 'warm-up', 1, 40))
        expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 40 })
        for (const peer of [same, other]) {
          const p = (await peer.next()) as PublishPacket
          peer.send({ type: 'puback', packetId: p.packetId! })
        }
        pub.send(publish('f/1', 'payload', 1, 41))
        expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 41 })
        const a = (await same.next()) as PublishPacket
        const b = (await other.next()) as PublishPacket
        for (const p of [a, b]) expect(p).to.deep.include({ topic: 'f/1', qos: 1, dup: false, retain: false })
        expect(a.payload.toString()).to.equal('payload')
        expect(b.payload.toString()).to.equal('payload')
        expect(a.packetId).to.not.equal(41)
        expect(a.properties).to.equal(undefined)
        expect(b.properties).to.equal(undefined)
      })

      it('QoS 2 inbound: PUBREC, then PUBCOMP for PUBREL, delivered once [MQTT-4.3.3-2]', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'q2', 0, level)
        const pub = await publisher(broker, level)
        pub.send(publish('q2', 'x', 2, 9))
        expect(await pub.next()).to.deep.equal({ type: 'pubrec', packetId: 9 })
        // A resend before PUBREL is acknowledged again but not delivered again.
        pub.send(publish('q2', 'x', 2, 9, { dup: true }))
        expect(await pub.next()).to.deep.equal({ type: 'pubrec', packetId: 9 })
        pub.send({ type: 'pubrel', packetId: 9 })
        expect(await pub.next()).to.deep.equal({ type: 'pubcomp', packetId: 9 })
        const received = await beforePong(sub)
        expect(received).to.deep.equal([publish('q2', 'x')])
      })

      it('QoS 2 outbound: PUBLISH, PUBREC → PUBREL, PUBCOMP [MQTT-4.3.3-1]', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'q2', 2, level)
        const pub = await publisher(broker, level)
        pub.send(publish('q2', 'x', 2, 3))
        const delivered = (await sub.next()) as PublishPacket
        expect(delivered).to.deep.include({ qos: 2, topic: 'q2' })
        const id = delivered.packetId!
        sub.send({ type: 'pubrec', packetId: id })
        expect(await sub.next()).to.deep.equal({ type: 'pubrel', packetId: id })
        sub.send({ type: 'pubcomp', packetId: id })
        await pingPong(sub)
      })

      it('downgrades to the subscription QoS', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'd', 0, level)
        const pub = await publisher(broker, level)
        pub.send(publish('d', 'x', 2, 1))
        expect(await sub.next()).to.deep.equal(publish('d', 'x'))
      })

      it('preserves order of messages from one publisher (MQTT 4.6)', async () => {
        const broker = makeBroker(teardown)
        const sub = await subscriber(broker, 'o', 1, level)
        const pub = await publisher(broker, level)
        for (let i = 1; i <= 20; i++) pub.send(publish('o', String(i), 1, i))
        const payloads: string[] = []
        const ids = new Set<number>()
        while (payloads.length < 20) {
          const p = (await sub.next()) as PublishPacket
          payloads.push(p.payload.toString())
          ids.add(p.packetId!)
        }
        expect(payloads).to.deep.equal(Array.from({ length: 20 }, (_, i) => String(i + 1)))
        // Packet ids are never reused while in flight [MQTT-2.2.1-3].
        expect(ids.size).to.equal(20)
      })
    })
  }

  it('a QoS 1 PUBLISH with no matching subscriber: MQTT 5 PUBACK 0x10', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send(publish('nobody', 'x', 1, 4))
      .expect({ type: 'puback', packetId: 4, reasonCode: ReasonCode.NoMatchingSubscribers })
      .run()
  })

  it('MQTT 5: QoS above Maximum QoS gets DISCONNECT 0x9B (MQTT 5.0 3.2.2.3.4)', async () => {
    const broker = makeBroker(teardown, { maximumQoS: 1 })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect((p) => expect(p.type).to.equal('connack'))
      .send(publish('t', 'x', 2, 1))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.QoSNotSupported })
      .expectClose()
      .run()
  })

  it('MQTT 5: RETAIN when retain is not available gets DISCONNECT 0x9A (MQTT 5.0 3.2.2.3.5)', async () => {
    const broker = makeBroker(teardown, { retainAvailable: false })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect((p) => expect(p.type).to.equal('connack'))
      .send(publish('t', 'x', 0, undefined, { retain: true }))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.RetainNotSupported })
      .expectClose()
      .run()
  })

  it('MQTT 5: more unacknowledged QoS 2 PUBLISH than Receive Maximum gets DISCONNECT 0x93 (MQTT 5.0 4.9)', async () => {
    const broker = makeBroker(teardown, { receiveMaximum: 2 })
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { receiveMaximum: 2 } })
      .send(publish('t', 'x', 2, 1))
      .expect({ type: 'pubrec', packetId: 1, reasonCode: ReasonCode.NoMatchingSubscribers })
      .send(publish('t', 'x', 2, 2))
      .expect({ type: 'pubrec', packetId: 2, reasonCode: ReasonCode.NoMatchingSubscribers })
      .send(publish('t', 'x', 2, 3))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.ReceiveMaximumExceeded })
      .expectClose()
      .run()
  })

  it('MQTT 5: a topic alias while Topic Alias Maximum is 0 gets DISCONNECT 0x94', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send(publish('t', 'x', 0, undefined, { properties: { topicAlias: 1 } }))
      .expect({ type: 'disconnect', reasonCode: ReasonCode.TopicAliasInvalid })
      .expectClose()
      .run()
  })

  it('PUBREL for an unknown packet id: MQTT 5 PUBCOMP 0x92', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5 }))
      .expect(connack())
      .send({ type: 'pubrel', packetId: 44 })
      .expect({ type: 'pubcomp', packetId: 44, reasonCode: ReasonCode.PacketIdentifierNotFound })
      .run()
  })

  it('MQTT 5: forwards user properties and content type, with the subscription identifier [MQTT-3.3.4-3]', async () => {
    const broker = makeBroker(teardown)
    const sub = new Peer(broker)
    await sub.connect({ clientId: 's', protocolLevel: 5 })
    sub.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [{ topicFilter: 'p/#', qos: 0 }],
      properties: { subscriptionIdentifiers: [42] }
    })
    expect(await sub.next()).to.deep.equal({ type: 'suback', packetId: 1, reasonCodes: [0] })
    const pub = await publisher(broker, 5)
    pub.send(publish('p/1', 'x', 0, undefined, { properties: { contentType: 'text/plain', userProperties: [['k', 'v']] } }))
    const got = (await sub.next()) as Packet
    expect(got).to.deep.equal(
      publish('p/1', 'x', 0, undefined, {
        properties: { contentType: 'text/plain', userProperties: [['k', 'v']], subscriptionIdentifiers: [42] }
      })
    )
  })

  it('MQTT 5: a message whose expiry elapsed while queued is not delivered [MQTT-3.3.2-5]', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { clock })
    const sub = new Peer(broker)
    await sub.connect({ clientId: 'exp', protocolLevel: 5, clean: false, properties: { sessionExpiryInterval: 60 } })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'e', qos: 1 }] })
    await sub.next()
    sub.send({ type: 'disconnect' })
    await sub.waitClosed()
    const pub = await publisher(broker, 5)
    pub.send(publish('e', 'gone', 1, 1, { properties: { messageExpiryInterval: 1 } }))
    pub.send(publish('e', 'kept', 1, 2, { properties: { messageExpiryInterval: 100 } }))
    await pub.next()
    await pub.next()
    await clock.advance(1100)
    const back = new Peer(broker)
    await back.connect({ clientId: 'exp', protocolLevel: 5, clean: false, properties: { sessionExpiryInterval: 60 } })
    const got = (await back.next()) as PublishPacket
    expect(got.payload.toString()).to.equal('kept')
    // The remaining lifetime is forwarded, not the original one [MQTT-3.3.2-6].
    expect(got.properties?.messageExpiryInterval).to.equal(99)
    await pingPong(back)
  })
})
