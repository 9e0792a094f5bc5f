import assert from 'node:assert/strict'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { connect, disconnect, sleep, startNode, subscribe, useRedisNodes, waitFor } from './nodes.js'

type Raw = { sendCommand<T>(args: string[]): Promise<T> }

// Routed fan-out: a published message goes only to the streams of the nodes with a live
// subscription that matches (the route table P:t:nr:<filter>), never to the others.
describe('KeyvBackend – routed fan-out between nodes', function () {
  this.timeout(20_000)
  const redis = useRedisNodes(['node-a', 'node-b', 'node-c'])
  let server: RedisServer
  let root: string
  let nodes: KeyvBackend[]
  let raw: Raw

  beforeEach(() => {
    ;({ server, root, nodes } = redis)
    raw = (nodes[0]!.keyv.store as { client: Raw }).client
  })

  const routesOf = async (filter: string, tenant = 'default'): Promise<string[]> =>
    (await raw.sendCommand<string[]>(['HKEYS', `${root}:${tenant}:nr:${filter}`])).sort()
  const streamLength = async (node: string): Promise<number> => await raw.sendCommand<number>(['XLEN', `${root}:_:bus:${node}`])

  it('sends each message to the nodes with a matching live subscription only, once per node', async () => {
    const [a, b, c] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    // Two subscribers on node b whose filters overlap, none on a or c.
    const s1 = await connect(b, 's1')
    await subscribe(s1, sub('r/+', 1))
    const s2 = await connect(b, 's2')
    await subscribe(s2, sub('r/#', 0), sub('r/1', 0))
    for (let i = 0; i < 20; i++) assert.equal(await a.publish(undefined, message('r/1', `a${i}`, 1)), 3)
    for (let i = 0; i < 20; i++) assert.equal(await b.publish(undefined, message('r/1', `b${i}`, 0)), 3)
    // A topic no one subscribed to goes nowhere.
    assert.equal(await c.publish(undefined, message('q/1', 'none', 1)), 0)
    await waitFor(() => s1.client.deliveries.length >= 40 && s2.client.deliveries.length >= 40, 5000, 'deliveries')
    await sleep(100)
    // Node b got a's messages once each (three matching filters, one entry); its own it delivered itself.
    assert.equal(b.stats.busReceived, 20)
    assert.equal(a.stats.busReceived, 0)
    assert.equal(c.stats.busReceived, 0)
    assert.deepEqual([await streamLength('node-a'), await streamLength('node-b'), await streamLength('node-c')], [0, 20, 0])
    const expected = [...Array.from({ length: 20 }, (_, i) => `a${i}`), ...Array.from({ length: 20 }, (_, i) => `b${i}`)]
    assert.deepEqual(s1.client.payloads(), expected)
    assert.deepEqual(s2.client.payloads(), expected)
  })

  it('sends the messages of one batch to a node as one stream entry, in order, reading each route once', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const s1 = await connect(b, 'batch-1')
    await subscribe(s1, sub('bt/+', 0))
    const s2 = await connect(b, 'batch-2', { tenant: 'other' })
    await subscribe(s2, sub('bt/x', 1))
    // Node a must know both tenants (their filter mirrors) to route them in one turn.
    await connect(a, 'batch-here')
    await connect(a, 'batch-there', { tenant: 'other' })
    const hkeys = async (): Promise<number> => {
      const text = await raw.sendCommand<string>(['INFO', 'commandstats'])
      return Number(/cmdstat_hkeys:calls=(\d+)/.exec(text)?.[1] ?? '0')
    }
    const entriesBefore = await streamLength('node-b')
    const receivedBefore = b.stats.busReceived
    const hkeysBefore = await hkeys()
    // 60 publishes in one event-loop turn, the two tenants interleaved: one PUBLISH_BATCH call.
    const published: Promise<number | undefined>[] = []
    for (let i = 0; i < 60; i++) {
      const m = message('bt/x', `m${i}`, i % 2 === 0 ? 0 : 1)
      if (i % 3 === 0) m.tenant = 'other'
      published.push(Promise.resolve(a.publish(undefined, m)))
    }
    const counts = await Promise.all(published)
    assert.deepEqual(counts, Array.from({ length: 60 }, () => 1))
    await waitFor(() => s1.client.deliveries.length === 40 && s2.client.deliveries.length === 20, 5000, 'deliveries')
    assert.equal(b.stats.busReceived - receivedBefore, 60)
    assert.equal((await streamLength('node-b')) - entriesBefore, 1)
    // Three route keys (default: bt/x and bt/+; other: bt/x), read once each, not per message (100).
    assert.equal((await hkeys()) - hkeysBefore, 3)
    const ids = Array.from({ length: 60 }, (_, i) => i)
    assert.deepEqual(s1.client.payloads(), ids.filter((i) => i % 3 !== 0).map((i) => `m${i}`))
    assert.deepEqual(s2.client.payloads(), ids.filter((i) => i % 3 === 0).map((i) => `m${i}`))
  })

  it('passes the messages of one batch to Redis as one argument, and delivers them byte-exact, in order', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const s = await connect(b, 'bytes-1')
    await subscribe(s, sub('by/+', 1))
    await connect(a, 'bytes-here')
    // Payloads of every length class, with bytes that are no UTF-8 (a lossy string would change them).
    const payloads = [Buffer.alloc(0), Buffer.from([0xff]), Buffer.from([0, 0xc3, 0x28, 0xfe, 0x0d, 0x0a]), Buffer.alloc(70_000, 0xa5)]
    for (let i = 0; i < 20; i++) payloads.push(Buffer.from(Array.from({ length: i * 7 }, (_, j) => (i * 31 + j * 17) % 256)))
    // Every command is logged (with its first arguments): the batched call's are readable below.
    await raw.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '0'])
    await raw.sendCommand(['SLOWLOG', 'RESET'])
    try {
      const published = payloads.map((payload, i) => {
        const m = message(`by/${i % 3}`, '', i % 2 === 0 ? 0 : 1)
        m.payload = payload
        return Promise.resolve(a.publish(undefined, m))
      })
      assert.deepEqual(await Promise.all(published), payloads.map(() => 1))
      const log = await raw.sendCommand<[number, number, number, string[]][]>(['SLOWLOG', 'GET', '1000'])
      // EVALSHA sha 1 <nodes> <bus prefix> <max> <node> <count> <bytes> …: the count, then ONE
      // argument with every message (tiny ones would be shorter than the 70,000-byte payload alone).
      const call = log.map((entry) => entry[3]).find((args) => args[0]?.toUpperCase() === 'EVALSHA' && args[7] === String(payloads.length))
      assert.ok(call !== undefined, 'one batched call for all the publishes')
      const more = /\.\.\. \((\d+) more bytes\)$/.exec(call[8] ?? '')
      assert.ok(more !== null, `the argument after the count is long (got ${String(call[8]).slice(0, 40)}…)`)
      assert.ok(Number(more[1]) > payloads.reduce((n, p) => n + p.length, 0), 'it holds every encoded message')
    } finally {
      await raw.sendCommand(['CONFIG', 'SET', 'slowlog-log-slower-than', '10000'])
    }
    await waitFor(() => s.client.deliveries.length === payloads.length, 5000, 'deliveries')
    assert.deepEqual(s.client.deliveries.map((d) => d.message.payload.toString('hex')), payloads.map((p) => p.toString('hex')))
  })

  it('routes a message published on another node right after the subscribe resolved (no settling delay)', async () => {
    const [a, b, c] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    for (let i = 0; i < 25; i++) {
      const s = await connect(b, `quick-${i}`)
      await subscribe(s, sub(i % 2 === 0 ? `quick/${i}` : `quick/${i}/+`, 0))
      const topic = i % 2 === 0 ? `quick/${i}` : `quick/${i}/x`
      assert.equal(await (i % 3 === 0 ? c : a).publish(undefined, message(topic, `m${i}`, 0)), 1)
      await waitFor(() => s.client.deliveries.length === 1, 3000, `delivery ${i}`)
    }
  })

  it('sends to every node, and completes the queue path later, while its wildcard filters are behind', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    // a serves the tenant (its filter mirror is loaded), c does not.
    await connect(a, 'here')
    // Two away persistent sessions made on node b: p subscribed to late/+ (which a has read from the
    // route log), q to something else.
    const p = await connect(b, 'p', { clean: false })
    await subscribe(p, sub('late/+', 1))
    await disconnect(p)
    const q = await connect(b, 'q', { clean: false })
    await subscribe(q, sub('other', 1))
    await disconnect(q)
    await sleep(50)
    // As if another node had just indexed q's new wildcard filter late/#, and a had not read the
    // route log entry yet: the filter's count, its persistent subscriber and the version bump.
    const tp = `${root}:default:`
    await raw.sendCommand(['HINCRBY', `${tp}fc`, 'late/#', '1'])
    await raw.sendCommand(['HSET', `${tp}ps:late/#`, 'q', JSON.stringify({ topicFilter: 'late/#', qos: 1 })])
    const version = await raw.sendCommand<number>(['INCR', `${tp}wv`])
    const published = a.publish(undefined, message('late/x', 'behind', 1))
    await sleep(100)
    // The entry reaches a's reader now: a completes the queue path with late/#.
    await raw.sendCommand(['XADD', `${root}:_:rt`, '*', 't', 'default', 'f', 'late/#', 'c', '1', 'v', String(version)])
    assert.equal(await published, 2)
    // The live path went to every other node (c has no route at all).
    assert.equal(await streamLength('node-c'), 1)
    const backP = await connect(b, 'p', { clean: false })
    const backQ = await connect(nodes[2]!, 'q', { clean: false })
    await waitFor(() => backP.client.deliveries.length === 1 && backQ.client.deliveries.length === 1, 3000, 'queued deliveries')
    await sleep(50)
    assert.deepEqual(backP.client.payloads(), ['behind'])
    assert.deepEqual(backQ.client.payloads(), ['behind'])
    // Up to date again: the next message goes to the interested nodes only.
    assert.equal(await a.publish(undefined, message('late/y', 'current', 0)), 2)
    await sleep(50)
    assert.equal(await streamLength('node-c'), 1)
  })

  it('completes the shared path later too: a group new to the publishing node gets its entry', async () => {
    const [a, , c] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    await connect(a, 'here')
    await sleep(50)
    // As if a member on another node had just made group h, and a had not read the route log yet.
    const tp = `${root}:default:`
    const filter = '$share/h/sh/#'
    await raw.sendCommand(['XGROUP', 'CREATE', `${tp}sh:${filter}`, 'g', '0', 'MKSTREAM'])
    await raw.sendCommand(['HINCRBY', `${tp}fc`, filter, '1'])
    const version = await raw.sendCommand<number>(['INCR', `${tp}wv`])
    const published = a.publish(undefined, message('sh/x', 'to the group', 1))
    await sleep(100)
    await raw.sendCommand(['XADD', `${root}:_:rt`, '*', 't', 'default', 'f', filter, 'c', '1', 'v', String(version)])
    assert.equal(await published, 1)
    // A member that joins the group now finds the entry in the group's stream.
    const member = await connect(c, 'member')
    await subscribe(member, sub(filter, 1))
    await waitFor(() => member.client.deliveries.length === 1, 5000, 'the shared delivery')
    assert.deepEqual(member.client.payloads(), ['to the group'])
  })

  it('keeps a node in the route table while it has a live subscription to the filter, and only then', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const x1 = await connect(b, 'x1')
    const x2 = await connect(b, 'x2')
    await subscribe(x1, sub('k/+', 0))
    await subscribe(x2, sub('k/+', 1))
    // A replaced subscription (same filter, other options) keeps its one route.
    await subscribe(x2, sub('k/+', 0))
    assert.deepEqual(await routesOf('k/+'), ['node-b'])
    await b.unsubscribe(x1.client, ['k/+'])
    assert.deepEqual(await routesOf('k/+'), ['node-b'])
    await disconnect(x2)
    await sleep(50) // removals are not awaited by anyone
    assert.deepEqual(await routesOf('k/+'), [])
    // A persistent session taken over by another node moves its routes there.
    const p = await connect(a, 'p', { clean: false })
    await subscribe(p, sub('k/p', 1))
    assert.deepEqual(await routesOf('k/p'), ['node-a'])
    const again = await connect(b, 'p', { clean: false })
    assert.equal(again.present, true)
    await sleep(50)
    assert.deepEqual(await routesOf('k/p'), ['node-b'])
    assert.equal(await a.publish(undefined, message('k/p', 'live', 0)), 1)
    await waitFor(() => again.client.deliveries.length === 1)
    // An away persistent session has no route (its QoS 1/2 messages go to its queue).
    await disconnect(again)
    await sleep(50)
    assert.deepEqual(await routesOf('k/p'), [])
    assert.deepEqual(await raw.sendCommand<string[]>(['SMEMBERS', `${root}:_:routes:node-b`]), [])
  })

  it('keeps tenants apart in the route table', async () => {
    const [a, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const t1 = await connect(b, 'same', { tenant: 'one' })
    await subscribe(t1, sub('t/x', 0))
    const t2 = await connect(a, 'same', { tenant: 'two' })
    await subscribe(t2, sub('t/x', 0))
    assert.deepEqual(await routesOf('t/x', 'one'), ['node-b'])
    assert.deepEqual(await routesOf('t/x', 'two'), ['node-a'])
    // A broker-made message (no client) carries its tenant.
    assert.equal(await a.publish(undefined, { ...message('t/x', 'for-one', 0), tenant: 'one' }), 1)
    await waitFor(() => t1.client.deliveries.length === 1)
    await sleep(100)
    assert.deepEqual(t2.client.payloads(), [])
  })

  it('removes the routes of a node that stopped heart-beating, and stale ones of an earlier process with the same id', async () => {
    const [a] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const d = await startNode(server.url, root, { nodeId: 'node-d', heartbeatInterval: 200 })
    try {
      const s = await connect(d, 'on-d')
      await subscribe(s, sub('dead/#', 0))
      assert.deepEqual(await routesOf('dead/#'), ['node-d'])
      ;(d.keyv.store as { client: { destroy(): void } }).client.destroy()
      await waitFor(() => nodes.some((n) => n.stats.nodesReaped > 0), 8000, 'the reaper')
      assert.deepEqual(await routesOf('dead/#'), [])
      assert.equal(await raw.sendCommand<number>(['EXISTS', `${root}:_:routes:node-d`, `${root}:_:bus:node-d`]), 0)
      assert.equal(await a.publish(undefined, message('dead/1', 'nobody', 0)), 0)
    } finally {
      await d.close()
    }
    // A process that died with routes and comes back under its node id before any reaper ran.
    await raw.sendCommand(['HSET', `${root}:default:nr:ghost/#`, 'node-e', '1'])
    await raw.sendCommand(['SADD', `${root}:_:routes:node-e`, `${root}:default:nr:ghost/#`])
    const e = await startNode(server.url, root, { nodeId: 'node-e' })
    try {
      assert.deepEqual(await routesOf('ghost/#'), [])
    } finally {
      await e.close()
    }
  })

  it('leaves no route, stream or route set behind when a node closes', async () => {
    const [, b] = nodes as [KeyvBackend, KeyvBackend, KeyvBackend]
    const s = await connect(b, 'leaver')
    await subscribe(s, sub('bye/+', 0), sub('bye/x', 0))
    // One delivery: the client's matching subscriptions are merged.
    assert.equal(await nodes[0]!.publish(undefined, message('bye/x', 'one', 0)), 2)
    await waitFor(() => s.client.deliveries.length === 1)
    await b.close()
    assert.deepEqual(await routesOf('bye/+'), [])
    assert.deepEqual(await routesOf('bye/x'), [])
    assert.equal(await raw.sendCommand<number>(['EXISTS', `${root}:_:routes:node-b`, `${root}:_:bus:node-b`]), 0)
  })
})
