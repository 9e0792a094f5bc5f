import { expect } from 'chai'
import type { BrokerEvent } from '../../lib/broker/events.js'
import type { Broker } from '../../lib/broker/broker.js'
import { encode } from '../../lib/packet/index.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket, QoS } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { beforePong, ended, pingPong } from '../helpers/events.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket> = {}): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: 5, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribe(p: Peer, topicFilter: string, qos: QoS): Promise<void> {
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter, qos }] })
  expect(await p.next()).to.deep.include({ type: 'suback' })
}

function publish(topic: string, payload: string | Buffer, qos: QoS = 0, packetId?: number): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }
  if (packetId !== undefined) packet.packetId = packetId
  return packet
}

describe('MQTT 5 – flow control', () => {
  const teardown = useTeardown()

  it('never more unacknowledged QoS 2 PUBLISH than the client Receive Maximum, PUBREL included [MQTT-3.3.4-9]', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's', properties: { receiveMaximum: 2 } })
    await subscribe(sub, 't', 2)
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 1; i <= 4; i++) pub.send(publish('t', `m${i}`, 2, i))
    const first = [(await sub.next()) as PublishPacket, (await sub.next()) as PublishPacket]
    expect((await beforePong(pub)).map((p) => p.type)).to.deep.equal(['pubrec', 'pubrec', 'pubrec', 'pubrec'])
    await pingPong(sub)
    // PUBREC does not free the slot: the exchange goes on until PUBCOMP (MQTT 5.0 4.9).
    sub.send({ type: 'pubrec', packetId: first[0]!.packetId! })
    expect(await sub.next()).to.deep.equal({ type: 'pubrel', packetId: first[0]!.packetId! })
    await pingPong(sub)
    sub.send({ type: 'pubcomp', packetId: first[0]!.packetId! })
    expect(await sub.next()).to.deep.include({ type: 'publish', payload: Buffer.from('m3') })
    await pingPong(sub)
  })

  it('resent PUBLISHes of a resumed session respect the new Receive Maximum too', async () => {
    const broker = makeBroker(teardown)
    const persistent = { clientId: 's', clean: false, properties: { sessionExpiryInterval: 60, receiveMaximum: 5 } }
    const sub = await peer(broker, persistent)
    await subscribe(sub, 't', 1)
    const pub = await peer(broker, { clientId: 'p' })
    for (let i = 1; i <= 3; i++) pub.send(publish('t', `m${i}`, 1, i))
    for (let i = 1; i <= 3; i++) expect(await sub.next()).to.deep.include({ type: 'publish', dup: false })
    const done = ended(broker, 's')
    sub.destroy()
    await done
    const back = await peer(broker, { ...persistent, properties: { sessionExpiryInterval: 60, receiveMaximum: 1 } })
    const payloads: string[] = []
    for (let i = 0; i < 3; i++) {
      const p = (await back.next()) as PublishPacket
      expect(p.dup).to.equal(true)
      payloads.push(p.payload.toString())
      await pingPong(back)
      back.send({ type: 'puback', packetId: p.packetId! })
    }
    expect(payloads).to.deep.equal(['m1', 'm2', 'm3'])
  })

  it('a client exceeding the server Receive Maximum gets DISCONNECT 0x93 [MQTT-3.3.4-7] (MQTT 5.0 4.9)', async () => {
    const broker = makeBroker(teardown, { receiveMaximum: 2 })
    const p = new Peer(broker)
    expect(await p.connect({ protocolLevel: 5, clientId: 'p' })).to.deep.equal({
      type: 'connack',
      sessionPresent: false,
      reasonCode: 0,
      properties: { receiveMaximum: 2 }
    })
    for (let i = 1; i <= 3; i++) p.send(publish('t', 'x', 2, i))
    // No subscriber: 0x10 No matching subscribers.
    expect(await p.next()).to.deep.equal({ type: 'pubrec', packetId: 1, reasonCode: ReasonCode.NoMatchingSubscribers })
    expect(await p.next()).to.deep.equal({ type: 'pubrec', packetId: 2, reasonCode: ReasonCode.NoMatchingSubscribers })
    expect(await p.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ReceiveMaximumExceeded })
    await p.waitClosed()
  })

  it('completed exchanges free the server Receive Maximum', async () => {
    const broker = makeBroker(teardown, { receiveMaximum: 1 })
    const p = await peer(broker, { clientId: 'p' })
    for (let i = 1; i <= 5; i++) {
      p.send(publish('t', 'x', 1, i))
      expect(await p.next()).to.deep.include({ type: 'puback', packetId: i })
    }
  })
})

describe('MQTT 5 – Maximum Packet Size', () => {
  const teardown = useTeardown()

  it('a packet above the server maximum is DISCONNECT 0x95 [MQTT-3.2.2-15]', async () => {
    const broker = makeBroker(teardown, { maximumPacketSize: 64 })
    const p = new Peer(broker)
    expect(await p.connect({ protocolLevel: 5, clientId: 'p' })).to.deep.include({ properties: { maximumPacketSize: 64 } })
    p.send(publish('t', Buffer.alloc(100)))
    expect(await p.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.PacketTooLarge })
    await p.waitClosed()
  })

  it('a message larger than the client maximum is not sent [MQTT-3.1.2-24], counted, and QoS 1 is settled as delivered [MQTT-3.1.2-25]', async () => {
    const broker = makeBroker(teardown)
    const events: BrokerEvent[] = []
    const subscription = broker.events$.subscribe((e) => events.push(e))
    teardown.defer(() => subscription.unsubscribe())
    const sub = await peer(broker, { clientId: 's', properties: { maximumPacketSize: 40, receiveMaximum: 1 } })
    await subscribe(sub, 't', 1)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', Buffer.alloc(100), 1, 1))
    // The publisher's exchange completes normally.
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
    pub.send(publish('t', 'small', 1, 2))
    await pub.next()
    // The window (Receive Maximum 1) was not taken by the message that could not be sent.
    const got = (await sub.next()) as PublishPacket
    expect(got.payload.toString()).to.equal('small')
    expect(encode(got, 5).length).to.be.at.most(40)
    expect(broker.stats.deliveriesDropped).to.equal(1)
    expect(events.some((e) => e.type === 'dropped' && e.reason === 'too-large')).to.equal(true)
  })

  it('drops the Reason String from a DISCONNECT that would not fit otherwise [MQTT-3.14.2-3]', async () => {
    const broker = makeBroker(teardown)
    const p = await peer(broker, { clientId: 'small', properties: { maximumPacketSize: 16 } })
    const long = await peer(broker, { clientId: 'large' })
    broker.disconnect('small', ReasonCode.AdministrativeAction, 'a reason string far longer than sixteen bytes')
    broker.disconnect('large', ReasonCode.AdministrativeAction, 'a reason string far longer than sixteen bytes')
    expect(await p.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.AdministrativeAction })
    expect(await long.next()).to.deep.equal({
      type: 'disconnect',
      reasonCode: ReasonCode.AdministrativeAction,
      properties: { reasonString: 'a reason string far longer than sixteen bytes' }
    })
  })

  it('drops the Reason String from a PUBACK that would not fit otherwise [MQTT-3.4.2-2]', async () => {
    const broker = makeBroker(teardown, { memory: { authorizePublish: () => false } })
    const small = await peer(broker, { clientId: 'small', properties: { maximumPacketSize: 10 } })
    small.send(publish('t', 'x', 1, 1))
    expect(await small.next()).to.deep.equal({ type: 'puback', packetId: 1, reasonCode: ReasonCode.NotAuthorized })
    const large = await peer(broker, { clientId: 'large' })
    large.send(publish('t', 'x', 1, 1))
    expect(await large.next()).to.deep.equal({
      type: 'puback',
      packetId: 1,
      reasonCode: ReasonCode.NotAuthorized,
      properties: { reasonString: 'not authorized' }
    })
  })
})
