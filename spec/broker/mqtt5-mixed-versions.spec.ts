import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import type { ConnectPacket, PublishPacket, PublishProperties, QoS } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { pingPong } from '../helpers/events.js'

async function peer(broker: Broker, level: 3 | 4 | 5, fields: Partial<ConnectPacket> = {}): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: level, clientId: `c${Math.random().toString(36).slice(2, 8)}`, ...fields })).to.include({
    type: 'connack',
    reasonCode: 0
  })
  return p
}

async function subscribe(p: Peer, topicFilter: string, qos: QoS = 0, identifier?: number): Promise<void> {
  p.send({
    type: 'subscribe',
    packetId: 1,
    subscriptions: [{ topicFilter, qos }],
    ...(identifier === undefined ? {} : { properties: { subscriptionIdentifiers: [identifier] } })
  })
  expect(await p.next()).to.deep.include({ type: 'suback' })
}

function publish(topic: string, payload: string, qos: QoS = 0, properties?: PublishProperties, retain = false): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain, dup: false }
  if (qos > 0) packet.packetId = 1
  if (properties !== undefined) packet.properties = properties
  return packet
}

const everything: PublishProperties = {
  payloadFormatIndicator: true,
  messageExpiryInterval: 60,
  contentType: 'text/plain',
  responseTopic: 'reply',
  correlationData: Buffer.from('id'),
  userProperties: [['k', 'v']]
}

describe('MQTT 5 mixed with 3.1 / 3.1.1 clients', () => {
  const teardown = useTeardown()

  for (const level of [3, 4] as const) {
    it(`a level ${level} subscriber gets v5 messages without any property (aliases resolved)`, async () => {
      const broker = makeBroker(teardown, { topicAliasMaximum: 4 })
      const old = await peer(broker, level)
      await subscribe(old, 't/#', 1)
      const v5 = await peer(broker, 5)
      v5.send(publish('t/a', 'one', 1, { ...everything, topicAlias: 1 }))
      v5.send({ ...publish('', 'two', 0, { topicAlias: 1 }) })
      const first = (await old.next()) as PublishPacket
      expect(first).to.deep.include({ topic: 't/a', qos: 1, payload: Buffer.from('one') })
      expect(first.properties).to.equal(undefined)
      old.send({ type: 'puback', packetId: first.packetId! })
      expect(await old.next()).to.deep.equal(publish('t/a', 'two'))
    })
  }

  it('a v5 subscriber gets 3.1.1 messages, with its subscription identifier and no other property', async () => {
    const broker = makeBroker(teardown)
    const v5 = await peer(broker, 5)
    await subscribe(v5, 't', 0, 5)
    const old = await peer(broker, 4)
    old.send(publish('t', 'from v4'))
    expect(await v5.next()).to.deep.equal(publish('t', 'from v4', 0, { subscriptionIdentifiers: [5] }))
  })

  it('a 3.1.1 publisher gets plain acknowledgements: no reason codes even with no subscriber', async () => {
    const broker = makeBroker(teardown)
    const old = await peer(broker, 4)
    old.send(publish('nobody', 'x', 1))
    expect(await old.next()).to.deep.equal({ type: 'puback', packetId: 1 })
  })

  it('retained v5 messages reach a 3.1.1 subscriber without properties, and the v5 one with them', async () => {
    const broker = makeBroker(teardown)
    const v5pub = await peer(broker, 5)
    v5pub.send(publish('r', 'kept', 0, everything, true))
    await pingPong(v5pub)
    const old = await peer(broker, 4)
    await subscribe(old, 'r')
    expect(await old.next()).to.deep.equal(publish('r', 'kept', 0, undefined, true))
    const v5 = await peer(broker, 5)
    await subscribe(v5, 'r')
    const got = (await v5.next()) as PublishPacket
    expect(got.properties).to.deep.include({ contentType: 'text/plain', responseTopic: 'reply', userProperties: [['k', 'v']] })
  })

  it('a v5 will with properties reaches a 3.1.1 subscriber as a plain message', async () => {
    const broker = makeBroker(teardown)
    const old = await peer(broker, 4)
    await subscribe(old, 'will')
    const v5 = await peer(broker, 5, {
      will: { topic: 'will', payload: Buffer.from('bye'), qos: 0, retain: false, properties: { contentType: 'text/plain', userProperties: [['a', 'b']] } }
    })
    v5.destroy()
    expect(await old.next()).to.deep.equal(publish('will', 'bye'))
  })

  it('a 3.1.1 subscriber with a v5 topic-alias-capable publisher and a v5 aliasing subscriber side by side', async () => {
    const broker = makeBroker(teardown)
    const old = await peer(broker, 4)
    await subscribe(old, 'x')
    const aliasing = await peer(broker, 5, { properties: { topicAliasMaximum: 3 } })
    await subscribe(aliasing, 'x')
    const pub = await peer(broker, 5)
    pub.send(publish('x', '1'))
    pub.send(publish('x', '2'))
    expect(await old.next()).to.deep.equal(publish('x', '1'))
    expect(await old.next()).to.deep.equal(publish('x', '2'))
    expect(await aliasing.next()).to.deep.equal(publish('x', '1', 0, { topicAlias: 1 }))
    expect(await aliasing.next()).to.deep.equal(publish('', '2', 0, { topicAlias: 1 }))
  })
})
