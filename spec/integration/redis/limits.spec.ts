import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import { encodeMessage, encodeQueued } from '../../../lib/backend/keyv/codec.js'
import type { KeyvBackend, KeyvSession } from '../../../lib/backend/keyv/index.js'
import { TenantKeys } from '../../../lib/backend/keyv/keys.js'
import { retainedBytesKey } from '../../../lib/backend/keyv/retained.js'
import { connect, disconnect, useRedisNodes, waitFor } from './nodes.js'

const payload = (tag: string): string => tag.padEnd(1000, '.')
/** The bytes an offline queue item of `tag` on topic `t` counts for (as the Redis backend stores it). */
const queuedSize = (tag: string): number => encodeQueued({ message: message('t', payload(tag), 1), subscription: sub('t', 1) }).length
/** The bytes a retained message counts for. */
const retainedSize = (topic: string, tag: string): number => encodeMessage({ ...message(topic, payload(tag), 0), retain: true }).length

// The byte bounds of the Redis backend, enforced in Redis (Lua) and so cluster-wide: two nodes on
// one redis-server, messages coming from both.
describe('KeyvBackend – offline queue and retained store bounded in bytes, cluster-wide', function () {
  this.timeout(15_000)
  // Four 1000-byte messages fit; a fifth does not. Counts far above what is used.
  const queueBytes = queuedSize('m0') * 4 + 10
  const retainedBytes = retainedSize('r/1', 'v') * 3 - 10
  const redis = useRedisNodes(['node-a', 'node-b'], { maxQueuedMessages: 100, maxQueuedBytes: queueBytes, maxRetainedBytes: retainedBytes })
  let a: KeyvBackend
  let b: KeyvBackend

  beforeEach(() => {
    ;[a, b] = redis.nodes as [KeyvBackend, KeyvBackend]
  })

  const dropped = (): number => a.stats.queueDropped + b.stats.queueDropped

  it('refuses queued messages beyond maxQueuedBytes whichever node publishes, keeps the first ones', async () => {
    const first = await connect(a, 'q', { clean: false })
    await first.backend.subscribe(first.client, [sub('t', 1)])
    await disconnect(first)
    for (let i = 0; i < 8; i++) await (i % 2 === 0 ? a : b).publish(undefined, message('t', payload(`m${i}`), 1))
    assert.equal(dropped(), 4)
    const back = await connect(b, 'q', { clean: false })
    await waitFor(() => back.client.deliveries.length >= 4, 5000, 'queued deliveries')
    assert.deepEqual(
      back.client.payloads().map((p) => p.slice(0, 2)),
      ['m0', 'm1', 'm2', 'm3']
    )
    // Drained: room again for as many (the byte count follows the queue out).
    await disconnect(back)
    for (let i = 0; i < 5; i++) await (i % 2 === 0 ? b : a).publish(undefined, message('t', payload(`n${i}`), 1))
    assert.equal(dropped(), 5)
    const again = await connect(a, 'q', { clean: false })
    await waitFor(() => again.client.deliveries.length >= 4, 5000, 'queued deliveries')
    assert.deepEqual(
      again.client.payloads().map((p) => p.slice(0, 2)),
      ['n0', 'n1', 'n2', 'n3']
    )
  })

  it('when full in bytes, evicts the oldest QoS 0 messages first, else refuses the new one', async () => {
    const c = await connect(a, 'e', { clean: false, drain: false })
    const s = c.session
    assert.equal(await s.enqueue({ message: message('t', payload('z0'), 0), subscription: sub('t', 1) }), true)
    for (let i = 1; i < 4; i++) assert.equal(await s.enqueue({ message: message('t', payload(`o${i}`), 1), subscription: sub('t', 1) }), true)
    // Full in bytes: the QoS 0 message makes room.
    assert.equal(await s.enqueue({ message: message('t', payload('o4'), 1), subscription: sub('t', 1) }), true)
    // Full of QoS 1: refused.
    assert.equal(await s.enqueue({ message: message('t', payload('no'), 1), subscription: sub('t', 1) }), false)
    const drained = (await (s as KeyvSession).drainQueue()).map((q) => q.message.payload.toString().slice(0, 2))
    assert.deepEqual(drained, ['o1', 'o2', 'o3', 'o4'])
    assert.equal(a.stats.queueDropped, 2)
  })

  it('refuses a retained message beyond maxRetainedBytes (per tenant, from any node); replacing smaller and deleting make room', async () => {
    await a.storeRetained(undefined, message('r/1', payload('v1'), 0, { retain: true }))
    await b.storeRetained(undefined, message('r/2', payload('v2'), 0, { retain: true }))
    await a.storeRetained(undefined, message('r/3', payload('v3'), 0, { retain: true }))
    assert.equal(a.stats.retainedRefused, 1)
    // Another tenant has its own bound.
    await b.storeRetained(undefined, { ...message('r/3', payload('v3'), 0, { retain: true }), tenant: 'other' })
    assert.equal(b.stats.retainedRefused, 0)
    assert.deepEqual(
      (await b.listRetained(undefined, '#', 10)).map((m) => m.topic),
      ['r/1', 'r/2']
    )
    // Replacing with a larger one that does not fit: refused, the old one kept.
    await b.storeRetained(undefined, message('r/2', payload('v2').repeat(3), 0, { retain: true }))
    assert.equal(b.stats.retainedRefused, 1)
    assert.equal((await a.listRetained(undefined, 'r/2', 1))[0]?.payload.toString(), payload('v2'))
    // Deleting one makes room.
    await b.storeRetained(undefined, message('r/1', '', 0, { retain: true }))
    await a.storeRetained(undefined, message('r/3', payload('v3'), 0, { retain: true }))
    assert.equal(a.stats.retainedRefused, 1)
    assert.deepEqual(
      (await a.listRetained(undefined, '#', 10)).map((m) => m.topic),
      ['r/2', 'r/3']
    )
  })

  it('counts a retained store written before the byte count existed (the count is rebuilt once)', async () => {
    await a.storeRetained(undefined, message('r/1', payload('v1'), 0, { retain: true }))
    await a.storeRetained(undefined, message('r/2', payload('v2'), 0, { retain: true }))
    const key = retainedBytesKey(new TenantKeys(redis.root, 'default'))
    const cli = (...args: string[]): string => execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.server.port), ...args]).toString().trim()
    assert.equal(Number(cli('GET', key)), retainedSize('r/1', 'v1') + retainedSize('r/2', 'v2'))
    cli('DEL', key)
    await b.storeRetained(undefined, message('r/3', payload('v3'), 0, { retain: true }))
    assert.equal(b.stats.retainedRefused, 1)
    assert.equal(Number(cli('GET', key)), retainedSize('r/1', 'v1') + retainedSize('r/2', 'v2'))
  })
})
