import assert from 'node:assert/strict'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import type { KeyvBackend, KeyvSession } from '../../../lib/backend/keyv/index.js'
import { SessionTakenOverError } from '../../../lib/packet/errors.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { TenantClient, connect, disconnect, sleep, startNode, subscribe, useRedisNodes, waitFor } from './nodes.js'

// Two KeyvBackend instances ("nodes") on one redis-server, in this process.
describe('KeyvBackend – two nodes on one Redis', function () {
  this.timeout(15_000)
  const redis = useRedisNodes(['node-a', 'node-b'])
  let server: RedisServer
  let root: string
  let a: KeyvBackend
  let b: KeyvBackend

  beforeEach(() => {
    ;({ server, root } = redis)
    ;[a, b] = redis.nodes as [KeyvBackend, KeyvBackend]
  })

  it('fans out across nodes with exact counts, no duplicate between the live and the queue path', async () => {
    const cleanA = await connect(a, 'clean-a')
    await subscribe(cleanA, sub('news/+', 1))
    const cleanB = await connect(b, 'clean-b')
    await subscribe(cleanB, sub('news/#', 0))
    // Persistent subscribers: QoS 1 travels through their queue, QoS 0 live.
    const durableA = await connect(a, 'durable-a', { clean: false })
    await subscribe(durableA, sub('news/+', 1), sub('news/#', 0))
    const qos0B = await connect(b, 'qos0-b', { clean: false })
    await subscribe(qos0B, sub('news/sport', 0))
    const n = 40
    for (let i = 0; i < n; i++) {
      const count = await b.publish(undefined, message('news/sport', `m${i}`, (i % 2) as 0 | 1))
      // news/+ (clean-a), news/# (clean-b), news/+ and news/# (durable-a), news/sport (qos0-b)
      assert.equal(count, 5)
    }
    const all = [cleanA, cleanB, durableA, qos0B]
    await waitFor(() => all.every((c) => c.client.deliveries.length >= n), 5000, 'all deliveries')
    await sleep(200)
    const expected = Array.from({ length: n }, (_, i) => `m${i}`)
    for (const c of [cleanA, cleanB, qos0B]) assert.deepEqual(c.client.payloads(), expected, c.client.clientId)
    // The persistent session gets each message once; QoS 1 (queue) and QoS 0 (live) are each in
    // order, but may interleave differently (docs/redis-backend.md, "ordering").
    const got = durableA.client.payloads()
    assert.deepEqual([...got].sort(), [...expected].sort())
    assert.deepEqual(
      got.filter((p) => Number(p.slice(1)) % 2 === 1),
      expected.filter((_, i) => i % 2 === 1)
    )
    assert.deepEqual(
      got.filter((p) => Number(p.slice(1)) % 2 === 0),
      expected.filter((_, i) => i % 2 === 0)
    )
    // The persistent session's overlapping subscriptions were merged: QoS 1 where the message had it.
    assert.deepEqual(
      durableA.client.deliveries.map((d) => d.subscription.qos),
      expected.map(() => 1)
    )
  })

  it('takes a session over across nodes: the old connection is closed with 0x8E and fenced', async () => {
    const first = await connect(a, 'x', { clean: false })
    await subscribe(first, sub('t/1', 1))
    const second = await connect(b, 'x', { clean: false })
    // Closed before setup resolved [MQTT-3.1.4-3].
    assert.equal(first.client.closes.length, 1)
    assert.equal(first.client.closes[0]?.reasonCode, ReasonCode.SessionTakenOver)
    assert.equal(second.present, true)
    assert.deepEqual(
      (await second.session.listSubscriptions()).map((s) => s.topicFilter),
      ['t/1']
    )
    // The stale node's writes are refused.
    await assert.rejects(
      Promise.resolve(first.session.saveOutgoing({ kind: 'publish', packetId: 9, message: message('t/1', 'stale', 1) })),
      SessionTakenOverError
    )
    await assert.rejects(Promise.resolve(first.session.saveWill({ topic: 'w', payload: Buffer.from('w'), qos: 0, retain: false })), SessionTakenOverError)
    await assert.rejects(Promise.resolve((first.session as KeyvSession).drainQueue()), SessionTakenOverError)
    // Its terminate is a no-op: the session lives on in the new connection.
    await disconnect(first)
    assert.equal(await (second.session as KeyvSession).getWill(), undefined)
    assert.equal(await second.session.getOutgoing(9), undefined)
    await a.publish(undefined, message('t/1', 'after', 1))
    await waitFor(() => second.client.deliveries.length === 1)
    await sleep(50)
    assert.deepEqual(second.client.payloads(), ['after'])
    assert.equal(first.client.deliveries.length + first.client.late.length, 0)
  })

  it('connecting the same client id twice at once (two nodes, or one): exactly one connection survives', async () => {
    for (let round = 0; round < 6; round++) {
      const [x, y] = round % 3 === 0 ? [a, b] : round % 3 === 1 ? [b, a] : [a, a]
      const results = await Promise.allSettled([connect(x, `dup${round}`, { clean: false }), connect(y, `dup${round}`, { clean: false })])
      const live = results.flatMap((r) => (r.status === 'fulfilled' && r.value.client.connected ? [r.value] : []))
      await sleep(100)
      const stillLive = live.filter((c) => c.client.connected)
      assert.equal(stillLive.length, 1, `round ${round}`)
      const survivor = stillLive[0]!
      await survivor.session.saveIncoming(1)
      assert.equal(await survivor.session.hasIncoming(1), true)
      for (const r of results) {
        if (r.status === 'fulfilled' && r.value !== survivor) {
          await assert.rejects(Promise.resolve(r.value.session.saveIncoming(2)), SessionTakenOverError)
        }
      }
    }
  })

  it('keeps an offline queue across nodes: queued on one node, delivered on the other, in order', async () => {
    const first = await connect(a, 'q', { clean: false })
    await subscribe(first, sub('q/#', 2))
    await disconnect(first)
    for (let i = 0; i < 20; i++) await b.publish(undefined, message(`q/${i % 3}`, `m${i}`, 1))
    const second = await connect(b, 'q', { clean: false })
    assert.equal(second.present, true)
    await waitFor(() => second.client.deliveries.length >= 20)
    assert.deepEqual(
      second.client.payloads(),
      Array.from({ length: 20 }, (_, i) => `m${i}`)
    )
    await disconnect(second)
    for (let i = 20; i < 25; i++) await a.publish(undefined, message('q/x', `m${i}`, 2))
    const third = await connect(a, 'q', { clean: false })
    await waitFor(() => third.client.deliveries.length >= 5)
    await sleep(50)
    assert.deepEqual(third.client.payloads(), ['m20', 'm21', 'm22', 'm23', 'm24'])
    assert.equal(first.client.late.length + second.client.late.length, 0)
  })

  it('a wildcard subscription made on one node routes queued messages published on the other', async () => {
    const c = await connect(a, 'w', { clean: false })
    await subscribe(c, sub('dev/+/temp', 1))
    await disconnect(c)
    // Node b learns the new wildcard filter through the route log.
    await sleep(50)
    await b.publish(undefined, message('dev/7/temp', '21.5', 1))
    await b.publish(undefined, message('dev/7/hum', 'no', 1))
    const again = await connect(b, 'w', { clean: false })
    await waitFor(() => again.client.deliveries.length >= 1)
    await sleep(50)
    assert.deepEqual(again.client.payloads(), ['21.5'])
  })

  it('resends the inflight of a session taken over by another node', async () => {
    const first = await connect(a, 'r', { clean: false })
    await first.session.saveOutgoing({ kind: 'publish', packetId: 5, message: message('t', 'five', 1) })
    await first.session.saveOutgoing({ kind: 'pubrel', packetId: 6 })
    const second = await connect(b, 'r', { clean: false })
    assert.deepEqual(
      (await second.session.listOutgoing()).map((r) => [r.packetId, r.kind]),
      [
        [5, 'publish'],
        [6, 'pubrel']
      ]
    )
    // Packet ids in flight are not handed out again [MQTT-2.2.1-3].
    for (let i = 0; i < 10; i++) assert.ok(![5, 6].includes(second.session.nextPacketId()))
  })

  it('expires an away session after its Session Expiry Interval and forgets its subscriptions', async () => {
    const s = await connect(a, 'exp', { clean: false, expiry: 1 })
    await subscribe(s, sub('e/#', 1))
    await disconnect(s)
    assert.equal(await b.publish(undefined, message('e/1', 'x', 1)), 1)
    await waitFor(() => a.stats.sessionsExpired + b.stats.sessionsExpired === 1, 4000, 'the sweep')
    assert.equal(await b.publish(undefined, message('e/1', 'y', 1)), 0)
    const again = await connect(b, 'exp', { clean: false })
    assert.equal(again.present, false)
    assert.deepEqual(await again.session.listSubscriptions(), [])
  })

  it('releases the sessions of a node that stopped heart-beating (reaper)', async () => {
    const c = await startNode(server.url, root, { nodeId: 'node-c', heartbeatInterval: 200 })
    try {
      const p = await connect(c, 'orphan-p', { clean: false, expiry: 600 })
      await subscribe(p, sub('or/#', 1))
      const q = await connect(c, 'orphan-clean')
      await subscribe(q, sub('or/#', 0))
      assert.equal(await a.publish(undefined, message('or/1', 'live', 0)), 2)
      // A crash: node-c's command connection is gone, it stops heart-beating.
      ;(c.keyv.store as { client: { destroy(): void } }).client.destroy()
      await waitFor(() => a.stats.nodesReaped + b.stats.nodesReaped === 1, 6000, 'the reaper')
      // The clean session was deleted with its subscription; the persistent one is away and queues.
      assert.equal(await a.publish(undefined, message('or/1', 'queued', 1)), 1)
      const back = await connect(b, 'orphan-p', { clean: false })
      assert.equal(back.present, true)
      await waitFor(() => back.client.deliveries.length >= 1)
      assert.deepEqual(back.client.payloads(), ['queued'])
      // The dead node's writes are fenced.
      await assert.rejects(Promise.resolve(p.session.saveIncoming(1)), Error)
    } finally {
      await c.close()
    }
  })

  it('closes the connections of a node that finds it was released while alive (a long pause), which then connect anew', async () => {
    // Heart-beats rarely: the others reap it before it notices.
    const c = await startNode(server.url, root, { nodeId: 'node-c', heartbeatInterval: 1500 })
    try {
      const victim = await connect(c, 'victim', { clean: false })
      await subscribe(victim, sub('paused/#', 1))
      const raw = (a.keyv.store as { client: { sendCommand(args: string[]): Promise<unknown> } }).client
      // As if node-c had been silent for long: its heartbeat is old.
      await raw.sendCommand(['ZADD', `${root}:_:nodes`, '1', 'node-c'])
      await waitFor(() => a.stats.nodesReaped + b.stats.nodesReaped === 1, 3000, 'the reaper')
      await waitFor(() => c.stats.nodeReleased === 1, 4000, 'node-c noticing')
      // 0x00: the reaper published (or scheduled) the will already; the engine publishes none again.
      assert.deepEqual(victim.client.closes, [{ reasonCode: ReasonCode.NormalDisconnection, reasonString: 'the broker process lost its sessions; connect again' }])
      // Its session was made away by the reaper: the client finds it on reconnecting (here: to node-c again).
      assert.equal(await a.publish(undefined, message('paused/1', 'kept', 1)), 1)
      const back = await connect(c, 'victim', { clean: false })
      assert.equal(back.present, true)
      await waitFor(() => back.client.deliveries.length === 1)
      assert.deepEqual(back.client.payloads(), ['kept'])
    } finally {
      await c.close()
    }
  })

  it('puts queued messages back when the connection closes in the middle of a drain', async () => {
    const first = await connect(a, 'half', { clean: false })
    await subscribe(first, sub('h', 1))
    await disconnect(first)
    for (let i = 0; i < 4; i++) await b.publish(undefined, message('h', `m${i}`, 1))
    // A connection that goes away right after its first delivery.
    const client = new TenantClient('half', undefined)
    const deliver = client.deliver.bind(client)
    client.deliver = (m, s, r) => {
      const result = deliver(m, s, r)
      client.connected = false
      return result
    }
    const { session } = await a.setup(client, false, 0xffff_ffff)
    client.session = session
    await a.queueOffline(client)
    assert.deepEqual(client.payloads(), ['m0'])
    await a.terminate(client)
    const again = await connect(b, 'half', { clean: false })
    await waitFor(() => again.client.deliveries.length >= 3)
    await sleep(50)
    assert.deepEqual(again.client.payloads(), ['m1', 'm2', 'm3'])
  })

  it('ends the sessions of connections still open when a node closes', async () => {
    const c = await startNode(server.url, root, { nodeId: 'node-c' })
    const open = await connect(c, 'left-open', { clean: false })
    await subscribe(open, sub('lo', 1))
    const clean = await connect(c, 'clean-open')
    await subscribe(clean, sub('lo', 0))
    await c.close()
    // The clean session is gone with its subscription; the persistent one is away and queues.
    assert.equal(await a.publish(undefined, message('lo', 'queued', 1)), 1)
    const back = await connect(b, 'left-open', { clean: false })
    assert.equal(back.present, true)
    await waitFor(() => back.client.deliveries.length >= 1)
    assert.deepEqual(back.client.payloads(), ['queued'])
  })
})
