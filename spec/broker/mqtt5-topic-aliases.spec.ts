import { expect } from 'chai'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, PublishPacket, QoS } from '../../lib/packet/types.js'
import type { Broker } from '../../lib/broker/broker.js'
import { makeBroker } from '../helpers/broker.js'
import { connect, flow, Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'

async function peer(broker: Broker, fields: Partial<ConnectPacket>, level: 4 | 5 = 5): Promise<Peer> {
  const p = new Peer(broker)
  expect(await p.connect({ protocolLevel: level, ...fields })).to.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribe(p: Peer, topicFilter: string, qos: QoS = 0): Promise<void> {
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter, qos }] })
  expect(await p.next()).to.deep.include({ type: 'suback' })
}

function publish(topic: string, payload: string, alias?: number): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: false, dup: false }
  if (alias !== undefined) packet.properties = { topicAlias: alias }
  return packet
}

describe('MQTT 5 – topic aliases', () => {
  const teardown = useTeardown()

  describe('from the client', () => {
    it('the Topic Alias Maximum is told in CONNACK (3.2.2.3.8)', async () => {
      const broker = makeBroker(teardown, { topicAliasMaximum: 5 })
      await flow(broker)
        .send(connect({ protocolLevel: 5 }))
        .expect({ type: 'connack', sessionPresent: false, reasonCode: 0, properties: { topicAliasMaximum: 5 } })
        .run()
    })

    it('binds an alias with a topic and resolves it with an empty topic; it can be rebound [MQTT-3.3.2-12]', async () => {
      const broker = makeBroker(teardown, { topicAliasMaximum: 5 })
      const sub = await peer(broker, { clientId: 's' })
      await subscribe(sub, '#')
      const pub = await peer(broker, { clientId: 'p' })
      pub.send(publish('a/b', '1', 3))
      pub.send(publish('', '2', 3))
      pub.send(publish('c', '3', 3))
      pub.send(publish('', '4', 3))
      const got = [await sub.next(), await sub.next(), await sub.next(), await sub.next()] as PublishPacket[]
      expect(got.map((p) => [p.topic, p.payload.toString()])).to.deep.equal([
        ['a/b', '1'],
        ['a/b', '2'],
        ['c', '3'],
        ['c', '4']
      ])
      // The alias is the publisher's, never forwarded [MQTT-3.3.2-7].
      for (const p of got) expect(p.properties).to.equal(undefined)
    })

    for (const [title, max, alias] of [
      ['alias 0', 5, 0],
      ['an alias above the maximum', 5, 6],
      ['any alias when the maximum is 0', 0, 1]
    ] as const) {
      it(`${title} is DISCONNECT 0x94 [MQTT-3.3.2-8] [MQTT-3.3.2-9]`, async () => {
        const broker = makeBroker(teardown, { topicAliasMaximum: max })
        const pub = await peer(broker, { clientId: 'p' })
        pub.send(publish('t', 'x', alias))
        expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.TopicAliasInvalid })
        await pub.waitClosed()
      })
    }

    it('an empty topic with an alias never bound is a protocol error 0x82', async () => {
      const broker = makeBroker(teardown, { topicAliasMaximum: 5 })
      const pub = await peer(broker, { clientId: 'p' })
      pub.send(publish('', 'x', 2))
      expect(await pub.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
    })

    it('aliases are per connection [MQTT-3.3.2-7]', async () => {
      const broker = makeBroker(teardown, { topicAliasMaximum: 5 })
      const first = await peer(broker, { clientId: 'p1' })
      first.send(publish('t', 'x', 1))
      const second = await peer(broker, { clientId: 'p2' })
      second.send(publish('', 'y', 1))
      expect(await second.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.ProtocolError })
    })
  })

  describe('to the client', () => {
    it('uses aliases within the client maximum, least recently used replaced first [MQTT-3.3.2-11] [MQTT-3.1.2-26]', async () => {
      const broker = makeBroker(teardown)
      const sub = await peer(broker, { clientId: 's', properties: { topicAliasMaximum: 2 } })
      await subscribe(sub, 'x/#')
      const pub = await peer(broker, { clientId: 'p' })
      for (const topic of ['x/1', 'x/1', 'x/2', 'x/3', 'x/2', 'x/1']) pub.send(publish(topic, topic))
      const got: [string, number | undefined, string][] = []
      for (let i = 0; i < 6; i++) {
        const p = (await sub.next()) as PublishPacket
        got.push([p.topic, p.properties?.topicAlias, p.payload.toString()])
      }
      expect(got).to.deep.equal([
        ['x/1', 1, 'x/1'],
        ['', 1, 'x/1'],
        ['x/2', 2, 'x/2'],
        ['x/3', 1, 'x/3'], // x/1 was least recently used
        ['', 2, 'x/2'],
        ['x/1', 1, 'x/1'] // x/3 was least recently used now
      ])
      for (const [, alias] of got) expect(alias).to.be.within(1, 2)
    })

    it('sends no alias to a client that allows none [MQTT-3.1.2-27], nor to 3.1.1 clients', async () => {
      const broker = makeBroker(teardown)
      const plain = await peer(broker, { clientId: 's5' })
      await subscribe(plain, 't')
      const old = await peer(broker, { clientId: 's4' }, 4)
      await subscribe(old, 't')
      const pub = await peer(broker, { clientId: 'p', properties: { topicAliasMaximum: 10 } })
      pub.send(publish('t', 'a'))
      pub.send(publish('t', 'b'))
      for (const sub of [plain, old]) {
        for (const payload of ['a', 'b']) {
          expect(await sub.next()).to.deep.equal(publish('t', payload))
        }
      }
    })

    it('a fresh connection starts with no aliases', async () => {
      const broker = makeBroker(teardown)
      const first = await peer(broker, { clientId: 's', properties: { topicAliasMaximum: 4 } })
      await subscribe(first, 't')
      const pub = await peer(broker, { clientId: 'p' })
      pub.send(publish('t', 'a'))
      expect(await first.next()).to.deep.include({ topic: 't', properties: { topicAlias: 1 } })
      first.destroy()
      await first.closed
      const second = await peer(broker, { clientId: 's', properties: { topicAliasMaximum: 4 } })
      await subscribe(second, 't')
      pub.send(publish('t', 'b'))
      expect(await second.next()).to.deep.include({ topic: 't', properties: { topicAlias: 1 } })
    })
  })
})
