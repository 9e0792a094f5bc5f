import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket, PublishProperties, QoS } from '../../lib/packet/types.js'
import type { TestBrokerOptions } from '../helpers/broker.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { pingPong } from '../helpers/events.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket> = {}, level: 4 | 5 = 5): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: level, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribe(p: Peer, topicFilter: string, qos: QoS = 0): Promise<void> {
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter, qos }] })
  expect(await p.next()).to.deep.include({ type: 'suback' })
}

function publish(topic: string, payload: string | Buffer, qos: QoS = 0, properties?: PublishProperties): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }
  if (qos > 0) packet.packetId = 1
  if (properties !== undefined) packet.properties = properties
  return packet
}

describe('MQTT 5 – request/response', () => {
  const teardown = useTeardown()

  it('Response Topic and Correlation Data reach the subscriber unchanged (MQTT 5.0 4.10)', async () => {
    const broker = makeBroker(teardown)
    const responder = await peer(broker, { clientId: 'responder' })
    await subscribe(responder, 'requests')
    const requester = await peer(broker, { clientId: 'requester' })
    await subscribe(requester, 'responses/requester')
    const properties = { responseTopic: 'responses/requester', correlationData: Buffer.from([1, 2, 3]) }
    requester.send(publish('requests', 'ping', 0, properties))
    const request = (await responder.next()) as PublishPacket
    expect(request.properties).to.deep.equal(properties)
    responder.send(publish(request.properties!.responseTopic!, 'pong', 0, { correlationData: request.properties!.correlationData! }))
    expect(await requester.next()).to.deep.equal(publish('responses/requester', 'pong', 0, { correlationData: Buffer.from([1, 2, 3]) }))
  })

  it('Request Response Information 1 gets the backend Response Information in CONNACK', async () => {
    const broker = makeBroker(teardown, { memory: { responseInformation: (client) => `responses/${client.clientId}` } })
    await flow(broker)
      .send(connect({ protocolLevel: 5, clientId: 'a', properties: { requestResponseInformation: true } }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { responseInformation: 'responses/a' } })
      .run()
  })

  it('without the request no Response Information is sent [MQTT-3.1.2-28]', async () => {
    const broker = makeBroker(teardown, { memory: { responseInformation: () => 'responses/x' } })
    await flow(broker)
      .send(connect({ protocolLevel: 5, clientId: 'a', properties: { requestResponseInformation: false } }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .run()
  })

  it('a backend without the hook sends none', async () => {
    const broker = makeBroker(teardown)
    await flow(broker)
      .send(connect({ protocolLevel: 5, clientId: 'a', properties: { requestResponseInformation: true } }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .run()
  })
})

describe('MQTT 5 – user properties and payload format', () => {
  const teardown = useTeardown()

  it('forwards User Properties in order, repeats included, with payload format and content type [MQTT-3.3.2-17] [MQTT-3.3.2-18]', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't')
    const pub = await peer(broker, { clientId: 'p' })
    const properties: PublishProperties = {
      payloadFormatIndicator: true,
      contentType: 'text/plain; charset=utf-8',
      userProperties: [
        ['b', '1'],
        ['a', '2'],
        ['b', '3']
      ]
    }
    pub.send(publish('t', 'héllo', 0, properties))
    expect(await sub.next()).to.deep.equal(publish('t', 'héllo', 0, properties))
  })

  const invalidUtf8 = Buffer.from([0xc3, 0x28])

  it('validatePayloadFormat: invalid UTF-8 with Payload Format Indicator 1 gets PUBACK 0x99 and is not routed', async () => {
    const broker = makeBroker(teardown, { validatePayloadFormat: true })
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't')
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', invalidUtf8, 1, { payloadFormatIndicator: true }))
    expect(await pub.next()).to.deep.equal({
      type: 'puback',
      packetId: 1,
      reasonCode: ReasonCode.PayloadFormatInvalid,
      properties: { reasonString: 'payload is not valid UTF-8' }
    })
    pub.send(publish('t', invalidUtf8, 0, { payloadFormatIndicator: false }))
    expect(await sub.next()).to.deep.include({ payload: invalidUtf8 })
    await pingPong(sub)
  })

  it('validatePayloadFormat: QoS 0 with invalid UTF-8 is DISCONNECT 0x99', async () => {
    const broker = makeBroker(teardown, { validatePayloadFormat: true })
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', invalidUtf8, 0, { payloadFormatIndicator: true }))
    expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.PayloadFormatInvalid })
  })

  it('without validatePayloadFormat the payload is forwarded as it is', async () => {
    const broker = makeBroker(teardown)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 't')
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('t', invalidUtf8, 0, { payloadFormatIndicator: true }))
    expect(await sub.next()).to.deep.equal(publish('t', invalidUtf8, 0, { payloadFormatIndicator: true }))
  })
})

describe('MQTT 5 – reason codes from the backend', () => {
  const teardown = useTeardown()

  it('PUBACK 0x10 when no subscription matched; 0x00 otherwise', async () => {
    const broker = makeBroker(teardown)
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('nobody', 'x', 1))
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1, reasonCode: ReasonCode.NoMatchingSubscribers })
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, 'somebody')
    pub.send(publish('somebody', 'x', 1))
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
  })

  const refusing: TestBrokerOptions = {
    memory: {
      authorizePublish: (_client, message) => (message.topic.startsWith('secret') ? false : message.topic === 'full' ? ReasonCode.QuotaExceeded : true),
      authorizeSubscribe: (_client, subscription) => !subscription.topicFilter.startsWith('secret')
    }
  }

  it('authorizePublish: refused QoS 1/2 get PUBACK/PUBREC 0x87 (or the backend code) and are not routed', async () => {
    const broker = makeBroker(teardown, refusing)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, '#')
    const pub = await peer(broker, { clientId: 'p' })
    pub.send(publish('secret/a', 'x', 1))
    expect(await pub.next()).to.deep.include({ type: 'puback', reasonCode: ReasonCode.NotAuthorized })
    pub.send(publish('secret/a', 'x', 2))
    expect(await pub.next()).to.deep.include({ type: 'pubrec', reasonCode: ReasonCode.NotAuthorized })
    pub.send(publish('full', 'x', 1))
    expect(await pub.next()).to.deep.include({ type: 'puback', reasonCode: ReasonCode.QuotaExceeded })
    pub.send(publish('secret/b', 'x', 0))
    pub.send(publish('open', 'ok', 0))
    expect(await sub.next()).to.deep.equal(publish('open', 'ok'))
    await pingPong(sub)
  })

  it('authorizePublish at 3.1.1: acknowledged as usual, not routed', async () => {
    const broker = makeBroker(teardown, refusing)
    const sub = await peer(broker, { clientId: 's' })
    await subscribe(sub, '#')
    const pub = await peer(broker, { clientId: 'p' }, 4)
    pub.send(publish('secret/a', 'x', 1))
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
    pub.send(publish('secret/a', 'x', 2))
    expect(await pub.next()).to.deep.equal({ type: 'pubrec', packetId: 1 })
    pub.send({ type: 'pubrel', packetId: 1 })
    expect(await pub.next()).to.deep.equal({ type: 'pubcomp', packetId: 1 })
    await pingPong(sub)
  })

  it('authorizeSubscribe: SUBACK 0x87 at MQTT 5, 0x80 at 3.1.1; an asynchronous answer works too', async () => {
    const broker = makeBroker(teardown, {
      memory: { authorizeSubscribe: async (_client, subscription) => Promise.resolve(!subscription.topicFilter.startsWith('secret')) }
    })
    await flow(broker)
      .send(connect({ protocolLevel: 5, clientId: 'a' }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'secret/#', qos: 0 }, { topicFilter: 'open', qos: 1 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [ReasonCode.NotAuthorized, 1] })
      .run()
    await flow(broker)
      .send(connect({ protocolLevel: 4, clientId: 'b' }))
      .expect({ type: 'connack', sessionPresent: false, reasonCode: 0 })
      .send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'open', qos: 0 }, { topicFilter: 'secret', qos: 0 }] })
      .expect({ type: 'suback', packetId: 1, reasonCodes: [0, 0x80] })
      .run()
  })

  it('Request Problem Information 0: no Reason String on acknowledgements [MQTT-3.1.2-29]; DISCONNECT keeps it', async () => {
    const broker = makeBroker(teardown, refusing)
    const pub = await peer(broker, { clientId: 'p', properties: { requestProblemInformation: false } })
    pub.send(publish('secret', 'x', 1))
    expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1, reasonCode: ReasonCode.NotAuthorized })
    broker.disconnect('p', ReasonCode.AdministrativeAction, 'bye')
    expect(await pub.next()).to.deep.equal({
      type: 'disconnect',
      reasonCode: ReasonCode.AdministrativeAction,
      properties: { reasonString: 'bye' }
    })
  })
})
