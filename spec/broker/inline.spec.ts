import { expect } from 'chai'
import mqtt from 'mqtt'
import type { Subscription } from 'rxjs'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import type { InlineMessage } from '../../lib/broker/inline.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'

/** Resolves once `condition()` holds (checked every 10 ms); rejects after 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('broker – inline client (publish / subscribe without a socket)', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  async function tcpBroker(broker: Broker): Promise<number> {
    const address = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return address.port
  }

  it('publish reaches an MQTT.js subscriber with QoS, retain and MQTT 5 properties', async () => {
    const broker = makeBroker(teardown)
    const port = await tcpBroker(broker)
    const sub = teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, reconnectPeriod: 0 }), (c) => c.endAsync())
    await sub.subscribeAsync('inline/#', { qos: 1 })
    const got = new Promise<{ topic: string; payload: string; packet: mqtt.IPublishPacket }>((resolve) =>
      sub.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), packet }))
    )
    const matched = await broker.publish({
      topic: 'inline/a',
      payload: 'hello',
      qos: 1,
      properties: { contentType: 'text/plain', userProperties: { k: 'v' }, correlationData: Buffer.from('c1') }
    })
    expect(matched).to.equal(1)
    const { topic, payload, packet } = await got
    expect({ topic, payload, qos: packet.qos }).to.deep.equal({ topic: 'inline/a', payload: 'hello', qos: 1 })
    expect(packet.properties?.contentType).to.equal('text/plain')
    expect(packet.properties?.userProperties).to.deep.equal({ k: 'v' })
    expect(packet.properties?.correlationData?.toString()).to.equal('c1')
    // Retained: a later subscriber gets it at once.
    await broker.publish({ topic: 'inline/kept', payload: Buffer.from('r'), retain: true })
    const late = teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }), (c) => c.endAsync())
    const retained = new Promise<mqtt.IPublishPacket>((resolve) => late.once('message', (_t, _p, p) => resolve(p)))
    await late.subscribeAsync('inline/kept')
    expect((await retained).retain).to.equal(true)
  })

  it('rejects an invalid topic, QoS or payload with a TypeError and routes nothing', async () => {
    const broker = makeBroker(teardown)
    const backend = broker.backend as MemoryBackend
    for (const bad of [{ topic: 'a/+' }, { topic: '' }, { topic: 'a', qos: 3 }, { topic: 'a', payload: 42 }, null]) {
      let error: unknown
      try {
        await broker.publish(bad as never)
      } catch (e) {
        error = e
      }
      expect(error, JSON.stringify(bad)).to.be.instanceOf(TypeError)
    }
    expect(backend.stats.published).to.equal(0)
  })

  it('subscribe receives what an MQTT.js client publishes, retained first, at the lower QoS, and its session ends on unsubscribe', async () => {
    const broker = makeBroker(teardown)
    const backend = broker.backend as MemoryBackend
    const port = await tcpBroker(broker)
    await broker.publish({ topic: 'sensors/old', payload: 'r', retain: true, qos: 1 })
    const received: InlineMessage[] = []
    const sub: Subscription = broker.subscribe('sensors/#', { qos: 1 }).subscribe((m) => received.push(m))
    teardown.defer(() => sub.unsubscribe())
    const pub = teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }), (c) => c.endAsync())
    // Wait for the retained message: proof the subscription is in place.
    const deadline = Date.now() + 5000
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(backend.sessionCount).to.equal(2)
    await pub.publishAsync('sensors/t', 'v2', { qos: 2 })
    while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(received.map((m) => [m.topic, m.payload.toString(), m.qos, m.retain])).to.deep.equal([
      ['sensors/old', 'r', 1, true],
      ['sensors/t', 'v2', 1, false]
    ])
    sub.unsubscribe()
    await until(() => backend.sessionCount === 1)
  })

  it('errors for an invalid filter and completes when the broker closes', async () => {
    const broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger })
    let error: unknown
    broker.subscribe('a/#/b').subscribe({ error: (e: unknown) => (error = e) })
    expect(error).to.be.instanceOf(TypeError)
    const completed = new Promise<void>((resolve) => broker.subscribe('x').subscribe({ complete: resolve }))
    await broker.close()
    await completed
  })

  it("keeps tenants apart: a subscriber of one tenant gets only its tenant's messages", async () => {
    const broker = makeBroker(teardown, { backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain() })
    // A retained marker per tenant: its arrival proves the subscription is in place.
    await broker.publish({ topic: 'ready', payload: 'acme', retain: true, tenant: 'acme' })
    await broker.publish({ topic: 'ready', payload: 'beta', retain: true, tenant: 'beta' })
    const acme: InlineMessage[] = []
    const beta: InlineMessage[] = []
    const subs = [broker.subscribe('#', { tenant: 'acme' }).subscribe((m) => acme.push(m)), broker.subscribe('#', { tenant: 'beta' }).subscribe((m) => beta.push(m))]
    teardown.defer(() => subs.forEach((sub) => sub.unsubscribe()))
    await until(() => acme.length > 0 && beta.length > 0)
    await broker.publish({ topic: 't', payload: 'for-beta', tenant: 'beta' })
    await broker.publish({ topic: 't', payload: 'for-acme', tenant: 'acme' })
    await until(() => acme.length > 1 && beta.length > 1)
    expect(acme.map((m) => m.payload.toString())).to.deep.equal(['acme', 'for-acme'])
    expect(beta.map((m) => [m.payload.toString(), m.tenant])).to.deep.equal([['beta', 'beta'], ['for-beta', 'beta']])
  })

  describe('on Redis (KeyvBackend): cluster-wide', () => {
    let redis: RedisServer
    before(async () => {
      redis = await startRedisServer()
    })
    after(async () => {
      await redis.dispose()
    })

    it('a subscriber on one process gets what the inline client of another publishes', async () => {
      const root = randomRoot()
      const a = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
      const b = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
      const received: InlineMessage[] = []
      const sub = a.subscribe('cluster/+', { qos: 0 }).subscribe((m) => received.push(m))
      teardown.defer(() => sub.unsubscribe())
      const deadline = Date.now() + 10_000
      // Publish until the subscription is known to the other process (routes propagate asynchronously).
      while (received.length === 0 && Date.now() < deadline) {
        await b.publish({ topic: 'cluster/x', payload: 'hi' })
        await new Promise((r) => setTimeout(r, 50))
      }
      expect(received[0]?.payload.toString()).to.equal('hi')
      expect(received[0]?.topic).to.equal('cluster/x')
    })
  })
})
