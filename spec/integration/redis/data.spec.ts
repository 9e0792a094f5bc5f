import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import { KeyvBackend, validateTenant } from '../../../lib/backend/keyv/index.js'
import type { KeyvSession } from '../../../lib/backend/keyv/index.js'
import { parseSessionId, sessionId } from '../../../lib/backend/keyv/keys.js'
import type { Message } from '../../../lib/session/session.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { connect, disconnect, sleep, subscribe, useRedisNodes, waitFor } from './nodes.js'

/** Every byte value, twice, in a scrambled order (invalid UTF-8 included). */
const ALL_BYTES = Buffer.concat([
  Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
  Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 167 + 13) % 256))
])

function binary(topic: string, payload: Buffer, qos: 0 | 1 | 2 = 1): Message {
  return {
    topic,
    payload,
    qos,
    retain: false,
    receivedAt: Date.now(),
    properties: { correlationData: Buffer.from([0, 0xff, 0xc3, 0x28]), userProperties: [['k', 'v']], contentType: 'bin' }
  }
}

describe('KeyvBackend – stored data across nodes', function () {
  this.timeout(20_000)
  const redis = useRedisNodes(['node-a', 'node-b'])
  let server: RedisServer
  let root: string
  let a: KeyvBackend
  let b: KeyvBackend

  beforeEach(() => {
    ;({ server, root } = redis)
    ;[a, b] = redis.nodes as [KeyvBackend, KeyvBackend]
  })

  describe('binary fidelity', () => {
    const large = randomBytes(256 * 1024)

    it('keeps payloads byte-exact through the live path (all 256 byte values, 256 KiB, empty)', async () => {
      const c = await connect(a, 'live')
      await subscribe(c, sub('bin/#', 1))
      await b.publish(undefined, binary('bin/all', ALL_BYTES))
      await b.publish(undefined, binary('bin/large', large))
      await b.publish(undefined, binary('bin/empty', Buffer.alloc(0)))
      await waitFor(() => c.client.deliveries.length >= 3)
      const [all, big, empty] = c.client.deliveries.map((d) => d.message)
      assert.ok(all?.payload.equals(ALL_BYTES))
      assert.ok(big?.payload.equals(large))
      assert.equal(empty?.payload.length, 0)
      assert.ok(all?.properties?.correlationData?.equals(Buffer.from([0, 0xff, 0xc3, 0x28])))
      assert.deepEqual(all?.properties?.userProperties, [['k', 'v']])
    })

    it('keeps payloads byte-exact through the offline queue', async () => {
      const first = await connect(a, 'queued', { clean: false })
      await subscribe(first, sub('bin/+', 2))
      await disconnect(first)
      await b.publish(undefined, binary('bin/all', ALL_BYTES, 2))
      await b.publish(undefined, binary('bin/large', large, 1))
      const again = await connect(b, 'queued', { clean: false })
      await waitFor(() => again.client.deliveries.length >= 2)
      assert.ok(again.client.deliveries[0]?.message.payload.equals(ALL_BYTES))
      assert.ok(again.client.deliveries[1]?.message.payload.equals(large))
      assert.ok(again.client.deliveries[0]?.message.properties?.correlationData?.equals(Buffer.from([0, 0xff, 0xc3, 0x28])))
    })

    it('keeps payloads byte-exact in retained messages, inflight records and wills', async () => {
      await a.storeRetained(undefined, { ...binary('bin/ret', ALL_BYTES), retain: true })
      const c = await connect(b, 'records', { clean: false })
      await b.queueRetained(c.client, sub('bin/+', 1))
      assert.ok(c.client.deliveries[0]?.message.payload.equals(ALL_BYTES))
      assert.equal(c.client.deliveries[0]?.isRetained, true)
      await c.session.saveOutgoing({ kind: 'publish', packetId: 1, message: binary('bin/out', large) })
      await c.session.saveWill({ topic: 'bin/will', payload: ALL_BYTES, qos: 1, retain: false })
      // Read back from Redis (a takeover on another node moves the old connection's will to its
      // node's old wills, for the reaper: the new connection stores its own).
      assert.ok((await (c.session as KeyvSession).getWill())?.payload.equals(ALL_BYTES))
      const other = await connect(a, 'records', { clean: false })
      const [record] = await other.session.listOutgoing()
      assert.ok(record?.kind === 'publish' && record.message.payload.equals(large))
    })
  })

  describe('retained messages', () => {
    it('finds retained messages by wildcard on another node, unicode and $ topics included [MQTT-4.7.2-1]', async () => {
      const topics = ['site42/a/temp', 'site42/é/temp', 'site42/日本/temp', 'site42/a/hum', 'site42', 'site420/a/temp', '$SYS/site42/x']
      for (const topic of topics) await a.storeRetained(undefined, message(topic, topic, 0, { retain: true }))
      for (let i = 0; i < 300; i++) await a.storeRetained(undefined, message(`other/${i}`, 'x', 0, { retain: true }))
      const c = await connect(b, 'ret')
      const lookup = async (filter: string): Promise<string[]> => {
        const before = c.client.deliveries.length
        await b.queueRetained(c.client, sub(filter))
        return c.client.deliveries
          .slice(before)
          .map((d) => d.message.topic)
          .sort()
      }
      assert.deepEqual(await lookup('site42/+/temp'), ['site42/a/temp', 'site42/é/temp', 'site42/日本/temp'])
      assert.deepEqual(await lookup('site42/#'), ['site42', 'site42/a/hum', 'site42/a/temp', 'site42/é/temp', 'site42/日本/temp'])
      assert.deepEqual(await lookup('+/a/temp'), ['site42/a/temp', 'site420/a/temp'])
      assert.equal((await lookup('#')).length, 6 + 300)
      assert.deepEqual(await lookup('$SYS/#'), ['$SYS/site42/x'])
      assert.deepEqual(await lookup('site42/日本/temp'), ['site42/日本/temp'])
    })
  })

  describe('tenants', () => {
    it('isolates tenants: same client ids, topics and retained messages, nothing crosses', async () => {
      const t1 = await connect(a, 'same', { tenant: 't1', clean: false })
      const t2 = await connect(b, 'same', { tenant: 't2', clean: false })
      // Same client id in two tenants: no takeover.
      assert.equal(t1.client.closes.length + t2.client.closes.length, 0)
      await subscribe(t1, sub('x/#', 1))
      await subscribe(t2, sub('x/#', 0))
      await a.storeRetained(t1.client, message('x/r', 'r1', 0, { retain: true }))
      await b.storeRetained(t2.client, message('x/r', 'r2', 0, { retain: true }))
      assert.equal(await a.publish(t1.client, message('x/1', 'from-t1', 0)), 1)
      assert.equal(await a.publish(t2.client, message('x/1', 'from-t2', 0)), 1)
      await waitFor(() => t1.client.deliveries.length >= 1 && t2.client.deliveries.length >= 1)
      await sleep(100)
      assert.deepEqual(t1.client.payloads(), ['from-t1'])
      assert.deepEqual(t2.client.payloads(), ['from-t2'])
      await b.queueRetained(t1.client, sub('x/#'))
      await a.queueRetained(t2.client, sub('x/#'))
      assert.deepEqual(t1.client.payloads(), ['from-t1', 'r1'])
      assert.deepEqual(t2.client.payloads(), ['from-t2', 'r2'])
      // Sessions are per tenant too.
      await disconnect(t1)
      const t2again = await connect(a, 'same', { tenant: 't2', clean: false })
      assert.deepEqual(
        (await t2again.session.listSubscriptions()).map((s) => [s.topicFilter, s.qos]),
        [['x/#', 0]]
      )
    })

    it('rejects tenant ids that could reach other keys (glob, separator, braces)', async () => {
      for (const bad of ['ten*', 'a:b', 'a::b', '{t}', 'T1', '', '-t', 'x'.repeat(64), 't?', 't[1]']) {
        assert.throws(() => validateTenant(bad), TypeError, bad)
        await assert.rejects(connect(a, 'c', { tenant: bad }), TypeError, bad)
      }
      assert.throws(() => new KeyvBackend({ url: server.url, namespace: 'a*' }), TypeError)
      assert.throws(() => new KeyvBackend({ url: server.url, prefix: 'mq:x' }), TypeError)
      assert.equal(validateTenant('acme-01_x'), 'acme-01_x')
    })

    it('records a session in the session set of its node by its session id (tenant|client id), a | in the client id too', async () => {
      const raw = (a.keyv.store as { client: { sendCommand(args: string[]): Promise<string[]> } }).client
      const members = async (node: string): Promise<string[]> => (await raw.sendCommand(['SMEMBERS', `${root}:_:sessions:${node}`])).sort()
      const id = sessionId('acme', 'x|y')
      assert.equal(id, 'acme|x|y')
      assert.deepEqual(parseSessionId(id), { tenant: 'acme', clientId: 'x|y' })
      const first = await connect(a, 'x|y', { tenant: 'acme', clean: false })
      assert.deepEqual(await members('node-a'), [id])
      // Taken over by node b: the session moves from a's set to b's.
      const second = await connect(b, 'x|y', { tenant: 'acme', clean: false })
      assert.equal(first.client.closes.length, 1)
      assert.deepEqual(await members('node-a'), [])
      assert.deepEqual(await members('node-b'), [id])
      await disconnect(second)
      assert.deepEqual(await members('node-b'), [])
    })

    it('keeps every key of a tenant under <root>:<tenant>:', async () => {
      const c = await connect(a, 'k', { tenant: 'acme', clean: false })
      await subscribe(c, sub('k/+', 1))
      await a.storeRetained(c.client, message('k/1', 'v', 1, { retain: true }))
      await disconnect(c)
      await a.publish(c.client, message('k/1', 'q', 1))
      const raw = (a.keyv.store as { client: { sendCommand(args: string[]): Promise<string[]> } }).client
      const keys = await raw.sendCommand(['KEYS', `${root}:*`])
      assert.ok(keys.length > 0)
      for (const key of keys) assert.ok(key.startsWith(`${root}:acme:`) || key.startsWith(`${root}:_:`), key)
      assert.ok(keys.some((k) => k.startsWith(`${root}:acme:s:{k}`)))
    })
  })
})
