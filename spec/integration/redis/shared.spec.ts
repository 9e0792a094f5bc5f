import assert from 'node:assert/strict'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { TenantClient, connect, disconnect, sleep, subscribe, useRedisNodes, waitFor } from './nodes.js'
import type { TestConnection } from './nodes.js'

async function member(backend: KeyvBackend, clientId: string, filter: string, options: { clean?: boolean; autoAck?: boolean } = {}): Promise<TestConnection> {
  const clean = options.clean ?? true
  const client = new TenantClient(clientId, undefined)
  client.autoAck = options.autoAck ?? true
  const { session, present } = await backend.setup(client, clean, clean ? 0 : 0xffff_ffff)
  client.session = session
  await backend.queueOffline(client)
  const c = { client, session, present, backend }
  assert.deepEqual(await subscribe(c, sub(filter, 1)), [1])
  return c
}

function payloads(...connections: TestConnection[]): string[] {
  return connections.flatMap((c) => c.client.payloads())
}

// MQTT 5 shared subscriptions across KeyvBackend nodes: one stream + consumer group per share group.
describe('KeyvBackend – shared subscriptions across nodes', function () {
  this.timeout(20_000)
  const redis = useRedisNodes(['node-a', 'node-b', 'node-c'], { heartbeatInterval: 200 })
  let nodes: KeyvBackend[]

  beforeEach(() => {
    nodes = redis.nodes
  })

  it('delivers each message once per group cluster-wide, with exact publish counts [MQTT-4.8.2-3]', async () => {
    const [a, b, c] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const g = [await member(a, 'g-a', '$share/g/jobs/+'), await member(b, 'g-b', '$share/g/jobs/+'), await member(c, 'g-c', '$share/g/jobs/+')]
    const h = [await member(b, 'h-b', '$share/h/jobs/#'), await member(c, 'h-c', '$share/h/jobs/#')]
    const plain = await connect(c, 'plain')
    await subscribe(plain, sub('jobs/#', 1))
    // No settling delay: counts and deliveries are exact from the SUBACKs on.
    const n = 90
    const expected: string[] = []
    for (let i = 0; i < n; i++) {
      expected.push(`m${i}`)
      // group g, group h, the plain subscription: a group counts once.
      assert.equal(await nodes[i % 3]?.publish(undefined, message('jobs/x', `m${i}`, (i % 2) as 0 | 1)), 3)
    }
    await waitFor(() => payloads(...g).length >= n && payloads(...h).length >= n && plain.client.deliveries.length >= n, 8000, 'deliveries')
    await sleep(300)
    assert.deepEqual(payloads(...g).sort(), [...expected].sort())
    assert.deepEqual(payloads(...h).sort(), [...expected].sort())
    // Publishers on different nodes are not ordered with each other (only each publisher's stream is).
    assert.deepEqual(plain.client.payloads().sort(), [...expected].sort())
    // Shared messages are never retained-flag deliveries, and each went through the group's members only.
    for (const c of [...g, ...h]) for (const d of c.client.deliveries) assert.equal(d.isRetained, false)
  })

  it('does not match $-topics with a leading wildcard in a shared filter [MQTT-4.7.2-1]', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const m = await member(a, 'm', '$share/g/#')
    assert.equal(await b.publish(undefined, message('$SYS/x', 'sys', 1)), 0)
    assert.equal(await b.publish(undefined, message('x', 'plain', 1)), 1)
    await waitFor(() => m.client.deliveries.length >= 1, 3000, 'delivery')
    await sleep(200)
    assert.deepEqual(m.client.payloads(), ['plain'])
  })

  it('keeps messages for an away persistent member and delivers them when it is back', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const first = await member(a, 'durable', '$share/g/q/+', { clean: false })
    await disconnect(first)
    for (let i = 0; i < 10; i++) assert.equal(await b.publish(undefined, message('q/1', `m${i}`, 1)), 1)
    const back = new TenantClient('durable', undefined)
    const { session, present } = await b.setup(back, false, 0xffff_ffff)
    assert.equal(present, true)
    back.session = session
    await b.queueOffline(back)
    await waitFor(() => back.deliveries.length >= 10, 5000, 'the kept messages')
    const expected = Array.from({ length: 10 }, (_, i) => `m${i}`)
    // Node a may still have been reading the stream when its member left: an entry it read then
    // went back to the end of the stream (counted as passed on), which reorders that one entry.
    if (a.stats.sharedPassed === 0) assert.deepEqual(back.payloads(), expected)
    else assert.deepEqual([...back.payloads()].sort(), [...expected].sort())
  })

  it("gives a member's unacknowledged messages to another member when it leaves (MQTT 5.0 4.8.2)", async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const slow = await member(a, 'slow', '$share/g/w', { autoAck: false })
    const n = 20
    for (let i = 0; i < n; i++) await b.publish(undefined, message('w', `m${i}`, 1))
    await waitFor(() => slow.client.deliveries.length >= n, 5000, 'deliveries to the slow member')
    const fast = await member(b, 'fast', '$share/g/w')
    // The slow member acknowledges the first 5, then disconnects: the other 15 go to `fast`.
    for (const packetId of slow.client.unacked.slice(0, 5)) await slow.session.deleteOutgoing(packetId)
    await disconnect(slow)
    await waitFor(() => fast.client.deliveries.length >= n - 5, 5000, 'redelivery')
    await sleep(300)
    assert.deepEqual(fast.client.payloads().sort(), Array.from({ length: n - 5 }, (_, i) => `m${i + 5}`).sort())
  })

  it('redelivers what a node closed mid-stream left unacknowledged, once, to a live member', async () => {
    const [a, b, c] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const onA = await member(a, 'on-a', '$share/g/s')
    const onC = await member(c, 'on-c', '$share/g/s', { autoAck: false })
    const n = 60
    const publishing = (async () => {
      for (let i = 0; i < n; i++) {
        await b.publish(undefined, message('s', `m${i}`, 1))
        if (i === 20) await c.close() // node c goes away with unacknowledged deliveries
      }
    })()
    await publishing
    // What on-c received and never acknowledged reaches on-a; nothing is lost.
    await waitFor(() => new Set(payloads(onA)).size === n, 8000, 'every message at the live member')
    await sleep(500)
    const got = payloads(onA)
    assert.equal(got.length, n, 'each message once at the live member')
    assert.ok(onC.client.deliveries.length > 0, 'node c took part before it closed')
    assert.ok(a.stats.sharedClaimed > 0 || b.stats.sharedClaimed > 0)
  })

  it('unsubscribing the last member removes the group: publishes count 0', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const m = await member(a, 'm', '$share/g/u')
    assert.equal(await b.publish(undefined, message('u', 'one', 1)), 1)
    await waitFor(() => m.client.deliveries.length >= 1, 3000, 'first delivery')
    assert.deepEqual(await a.unsubscribe(m.client, ['$share/g/u']), [0])
    await sleep(100)
    assert.equal(await b.publish(undefined, message('u', 'two', 1)), 0)
    await sleep(200)
    assert.deepEqual(m.client.payloads(), ['one'])
  })
})
