import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import type { Broker } from '../../lib/broker/broker.js'
import { KeyvBackend } from '../../lib/backend/keyv/index.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Packet } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import type { TestBrokerOptions } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

const open = openTcpPeer

const retained = (topic: string, payload: string, qos: 0 | 1 | 2, packetId?: number): Packet =>
  publish(topic, payload, qos, packetId, { retain: true })

describe('broker – a retained PUBLISH refused by the retained store limit', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  async function start(options: TestBrokerOptions): Promise<{ broker: Broker; port: number }> {
    const broker = makeBroker(teardown, options)
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return { broker, port }
  }

  /** A connected peer subscribed to `#` (to see what is routed), and a publisher at `level`. */
  async function pair(port: number, level: 4 | 5): Promise<{ watcher: Peer; publisher: Peer }> {
    const watcher = await open(teardown, port)
    await watcher.connect({ protocolLevel: 5, clientId: `watch${level}` })
    watcher.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'r/#', qos: 0 }] })
    expect((await watcher.next()).type).to.equal('suback')
    const publisher = await open(teardown, port)
    expect(await publisher.connect({ protocolLevel: level, clientId: `pub${level}` })).to.deep.include({ reasonCode: 0 })
    return { watcher, publisher }
  }

  function behaves(name: string, options: () => TestBrokerOptions): void {
    describe(name, () => {
      it('MQTT 5 QoS 1 gets PUBACK 0x97 and QoS 2 PUBREC 0x97, neither routed; replacing the stored topic still works', async () => {
        const { broker, port } = await start(options())
        const { watcher, publisher } = await pair(port, 5)
        publisher.send(retained('r/1', 'first', 1, 1))
        expect(await publisher.next()).to.deep.include({ type: 'puback', packetId: 1 })
        expect(await watcher.next()).to.deep.include({ type: 'publish', topic: 'r/1' })
        publisher.send(retained('r/2', 'over', 1, 2))
        expect(await publisher.next()).to.deep.include({ type: 'puback', packetId: 2, reasonCode: ReasonCode.QuotaExceeded })
        publisher.send(retained('r/3', 'over', 2, 3))
        expect(await publisher.next()).to.deep.include({ type: 'pubrec', packetId: 3, reasonCode: ReasonCode.QuotaExceeded })
        // The exchange is over: the same packet id starts a new one, routed (the stored topic is replaced).
        publisher.send(retained('r/1', 'second', 2, 3))
        expect(await publisher.next()).to.deep.include({ type: 'pubrec', packetId: 3 })
        publisher.send({ type: 'pubrel', packetId: 3, reasonCode: 0 })
        expect(await publisher.next()).to.deep.include({ type: 'pubcomp', packetId: 3 })
        const seen = await watcher.next()
        expect(seen).to.deep.include({ type: 'publish', topic: 'r/1' })
        expect(Buffer.from((seen as { payload: Uint8Array }).payload).toString()).to.equal('second')
        expect(await watcher.drain(200)).to.deep.equal([])
        expect(broker.stats.retainedLimitHits).to.equal(2)
      })

      it('QoS 0 and 3.1.1 publishers (nothing to tell) are still routed, and counted', async () => {
        const { broker, port } = await start(options())
        const { watcher, publisher } = await pair(port, 4)
        publisher.send(retained('r/1', 'first', 0))
        publisher.send(retained('r/2', 'zero', 0))
        publisher.send(retained('r/3', 'one', 1, 1))
        expect(await publisher.next()).to.deep.equal({ type: 'puback', packetId: 1 })
        const topics = [(await watcher.next()) as { topic: string }, (await watcher.next()) as { topic: string }, (await watcher.next()) as { topic: string }].map((p) => p.topic)
        expect(topics).to.deep.equal(['r/1', 'r/2', 'r/3'])
        expect(broker.stats.retainedLimitHits).to.equal(2)
        // Only the first is stored.
        const late = await open(teardown, port)
        await late.connect({ protocolLevel: 5, clientId: 'late' })
        late.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'r/#', qos: 0 }] })
        expect((await late.next()).type).to.equal('suback')
        expect(await late.next()).to.deep.include({ type: 'publish', topic: 'r/1', retain: true })
        expect(await late.drain(200)).to.deep.equal([])
      })
    })
  }

  behaves('MemoryBackend (maxRetainedMessages 1)', () => ({ memory: { maxRetainedMessages: 1 } }))

  describe('KeyvBackend on a real redis-server', () => {
    let server: RedisServer | undefined
    before(async () => {
      server = await startRedisServer()
    })
    after(async () => {
      await server?.dispose()
    })
    behaves('KeyvBackend (maxRetainedMessages 1)', () => {
      const backend = new KeyvBackend({ url: server!.url, prefix: `r${randomBytes(4).toString('hex')}`, maxRetainedMessages: 1, log: () => undefined })
      teardown.add(backend, (b) => b.close())
      return { backend }
    })
  })

  it('MQTT.js sees the 0x97 of its QoS 1 retained publish', async () => {
    const { port } = await start({ memory: { maxRetainedBytes: 10 } })
    const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, clientId: 'mqttjs', reconnectPeriod: 0 })
    teardown.add(client, (c) => c.end(true))
    await new Promise((resolve) => client.once('connect', resolve))
    const error = await new Promise<(Error & { code?: number }) | undefined>((resolve) => {
      client.publish('r/big', 'more than ten bytes', { qos: 1, retain: true }, (e) => resolve(e as (Error & { code?: number }) | undefined))
    })
    expect(error?.code).to.equal(ReasonCode.QuotaExceeded)
  })
})
