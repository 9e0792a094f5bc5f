import assert from 'node:assert/strict'
import { createClient } from '@redis/client'
import { sub } from '../../../lib/backend/conformance/index.js'
import { BackendUnavailableError } from '../../../lib/backend/errors.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { SessionTakenOverError } from '../../../lib/packet/errors.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'
import type { StoredWill } from '../../../lib/session/session.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { TenantClient, connect, randomRoot, startNode, subscribe, waitFor } from './nodes.js'
import type { TestConnection } from './nodes.js'

/** A crash: the node's command connection is gone, it stops heart-beating (and answers nothing). */
function crash(node: KeyvBackend): void {
  ;(node.keyv.store as { client: { destroy(): void } }).client.destroy()
}

const will = (topic: string, payload: string, willDelayInterval?: number): StoredWill => ({
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: false,
  ...(willDelayInterval === undefined ? {} : { properties: { willDelayInterval } })
})

/**
 * A node that stops heart-beating in the middle of a CONNECT (its process stalls, or dies): the
 * dead-node reaper of another node publishes the will it stored exactly once, and a node that the
 * cluster released (or is releasing) cannot take a session that nobody would ever release again.
 */
describe('KeyvBackend – a node dying during a connection setup vs the dead-node reaper', function () {
  this.timeout(20_000)
  let server: RedisServer
  let nodes: KeyvBackend[] = []
  let redis: ReturnType<typeof createClient>
  let root = ''

  before(async () => {
    server = await startRedisServer()
    redis = createClient({ url: server.url })
    await redis.connect()
  })
  after(async () => {
    await redis.quit()
    await server.dispose()
  })
  beforeEach(() => {
    root = randomRoot()
    nodes = []
  })
  afterEach(async () => {
    await Promise.all(nodes.map((n) => n.close()))
  })

  async function node(nodeId: string, heartbeatInterval: number, takeoverTimeout?: number): Promise<KeyvBackend> {
    const started = await startNode(server.url, root, { nodeId, heartbeatInterval, ...(takeoverTimeout === undefined ? {} : { takeoverTimeout }) })
    nodes.push(started)
    return started
  }

  async function watcher(at: KeyvBackend, id: string, filter: string): Promise<TestConnection> {
    const w = await connect(at, id)
    await subscribe(w, sub(filter, 1))
    return w
  }

  /** Resolves once `id` has beaten `n` more times (its score in the node registry moved on): n more sweeps. */
  async function sweeps(id: string, n: number, interval: number): Promise<void> {
    const from = Number(await redis.zScore(`${root}:_:nodes`, id))
    const deadline = Date.now() + 10_000
    while (Number(await redis.zScore(`${root}:_:nodes`, id)) < from + n * interval) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} heartbeats of ${id}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  const owner = async (clientId: string): Promise<string | null> => (await redis.hGet(`${root}:default:s:{${clientId}}`, 'node')) ?? null

  it('refuses a setup on a node the cluster released while it was silent, until it beat again (no session left that nobody releases)', async () => {
    const a = await node('node-a', 100) // dead after 300 ms of silence, by a's count
    const slow = await node('node-slow', 8000) // silent for 8 s after its start-up beat
    await waitFor(() => a.stats.nodesReaped === 1, 6000, 'the reaper to release the silent node')
    // The silent node goes on with a CONNECT it was in the middle of: its setup must not take the
    // session, since the reaper already read (and deleted) its session set and registration.
    const client = new TenantClient('late-setup', undefined)
    const outcome = await slow.setup(client, false, 600).then(
      () => 'resolved',
      (error: unknown) => error
    )
    assert.ok(outcome instanceof BackendUnavailableError, `the setup was refused (got ${String(outcome)})`)
    assert.equal(await owner('late-setup'), null, 'no session owned by the released node')
    // The refusal makes it beat at once (not 8 s later): registered again, setups work again.
    await waitFor(() => slow.stats.nodeReleased === 1, 4000, 'the released node to beat and notice')
    const again = await connect(slow, 'late-setup', { clean: false, expiry: 600 })
    assert.equal(await owner('late-setup'), 'node-slow')
    assert.equal(again.present, false)
  })

  it('refuses a setup on a node another node is reaping right now (its claim is set)', async () => {
    const a = await node('node-a', 150)
    const b = await node('node-b', 150)
    // A reaper on another node has claimed node-b and is releasing its sessions (SET reap:n NX).
    await redis.set(`${root}:_:reap:node-b`, 'node-a', { PX: 60_000 })
    const outcome = await b.setup(new TenantClient('during-reap', undefined), true, 0).then(
      () => 'resolved',
      (error: unknown) => error
    )
    assert.ok(outcome instanceof BackendUnavailableError, `the setup was refused (got ${String(outcome)})`)
    assert.equal(await owner('during-reap'), null)
    // Any other node takes the session as usual.
    await connect(a, 'during-reap')
    assert.equal(await owner('during-reap'), 'node-a')
  })

  it('publishes once the will a node stored before it died in the middle of the CONNECT (no CONNACK yet), at once or when its delay is due', async () => {
    // Dead after 1.2 s of silence; a takeover waits at most 100 ms for a silent node's acknowledgement.
    const a = await node('node-a', 400, 100)
    const b = await node('node-b', 400, 100)
    const dying = await node('node-dying', 400, 100)
    const wa = await watcher(a, 'watch-a', 'will/#')
    const wb = await watcher(b, 'watch-b', 'will/#')
    // Session set up and will stored (the engine's storeWill step); CONNACK and queueOffline never come.
    const now = await connect(dying, 'dev-now', { clean: false, expiry: 600, drain: false })
    await now.session.saveWill(will('will/now', 'gone-now'))
    const later = await connect(dying, 'dev-later', { drain: false })
    await later.session.saveWill(will('will/later', 'gone-later', 1))
    crash(dying)
    await waitFor(() => wa.client.deliveries.length >= 2 && wb.client.deliveries.length >= 2, 8000, 'both wills')
    // Several more reaper and will sweeps on both survivors: nothing more.
    await sweeps('node-a', 5, 150)
    for (const w of [wa, wb]) assert.deepEqual(w.client.payloads().sort(), ['gone-later', 'gone-now'])
    assert.equal(a.stats.willsPublished + b.stats.willsPublished, 2)
  })

  it('publishes no will when the reaper released the session between its setup and the will being stored (the CONNECT is refused)', async () => {
    const a = await node('node-a', 100)
    const slow = await node('node-slow', 3000)
    const w = await watcher(a, 'watch', 'will/#')
    // Set up while the node still counts as alive...
    const c = await connect(slow, 'dev-slow', { clean: false, expiry: 600, drain: false })
    // ...then it stalls: the reaper releases its session (no will stored yet).
    await waitFor(() => a.stats.nodesReaped === 1, 6000, 'the reaper')
    await assert.rejects(Promise.resolve(c.session.saveWill(will('will/slow', 'never'))), SessionTakenOverError)
    await sweeps('node-a', 5, 100)
    assert.deepEqual(w.client.payloads(), [])
    assert.equal(a.stats.willsPublished, 0)
  })
  it('publishes no will that was settled before the node died: cleared by a DISCONNECT, or a delayed will cancelled by an accepted connection', async () => {
    const a = await node('node-a', 150)
    const dying = await node('node-dying', 150)
    const w = await watcher(a, 'watch', 'will/#')
    // Cleared: the engine's DISCONNECT handling (clearWill) before the node died.
    const cleared = await connect(dying, 'dev-cleared', { clean: false, expiry: 600 })
    await cleared.session.saveWill(will('will/cleared', 'discarded'))
    await cleared.session.clearWill()
    // Delayed will of an ended connection, cancelled by the next accepted connection (queueOffline).
    const before = await connect(dying, 'dev-back', { clean: false, expiry: 600 })
    const dueAt = Date.now() + 300
    await dying.delayWill(before.client, will('will/back', 'cancelled', 1), dueAt)
    before.client.connected = false
    await dying.terminate(before.client)
    await connect(dying, 'dev-back', { clean: false, expiry: 600 })
    // A sentinel: a will that is due, so that "nothing else" is seen after a positive event.
    const last = await connect(dying, 'dev-last', { clean: false, expiry: 600, drain: false })
    await last.session.saveWill(will('will/last', 'sentinel'))
    crash(dying)
    await waitFor(() => w.client.deliveries.length >= 1, 8000, 'the sentinel will')
    await sweeps('node-a', 3, 150)
    assert.ok(Date.now() > dueAt + 300, 'past the cancelled will\'s due time, several sweeps later')
    assert.deepEqual(w.client.payloads(), ['sentinel'])
    assert.equal(a.stats.willsPublished, 1)
  })

  it('publishes once the will of a dead node\'s connection that another node took over before the reaper ran; a delayed one is cancelled [MQTT-3.1.3-9]', async () => {
    // Dead after 1.2 s of silence; a takeover waits at most 100 ms for a silent node's acknowledgement.
    const a = await node('node-a', 400, 100)
    const b = await node('node-b', 400, 100)
    const dying = await node('node-dying', 400, 100)
    const wa = await watcher(a, 'watch-a', 'will/#')
    const wb = await watcher(b, 'watch-b', 'will/#')
    const resumed = await connect(dying, 'dev-resumed', { clean: false, expiry: 600 })
    await resumed.session.saveWill(will('will/resumed', 'gone-resumed'))
    const fresh = await connect(dying, 'dev-fresh', { clean: false, expiry: 600 })
    await fresh.session.saveWill(will('will/fresh', 'gone-fresh'))
    const delayed = await connect(dying, 'dev-delayed', { clean: false, expiry: 600 })
    await delayed.session.saveWill(will('will/delayed', 'cancelled', 1))
    crash(dying)
    // The clients come back on node-b at once, long before the reaper runs (each waits for the dead
    // node's acknowledgement up to takeoverTimeout): resumed with a will of its own, clean, resumed.
    const again = await connect(b, 'dev-resumed', { clean: false, expiry: 600 })
    await again.session.saveWill(will('will/resumed', 'second-will'))
    await connect(b, 'dev-fresh', { clean: true })
    await connect(b, 'dev-delayed', { clean: false, expiry: 600 })
    await waitFor(() => wa.client.deliveries.length >= 2 && wb.client.deliveries.length >= 2, 10_000, 'the wills of the dead node\'s connections')
    assert.equal(a.stats.nodesReaped + b.stats.nodesReaped, 1, 'the takeovers came before the reaper')
    await sweeps('node-a', 5, 400) // past the cancelled will's delay, more reaper rounds: nothing more
    for (const w of [wa, wb]) assert.deepEqual(w.client.payloads().sort(), ['gone-fresh', 'gone-resumed'])
    assert.equal(a.stats.willsPublished + b.stats.willsPublished, 2)
  })
  it('leaves the will of a connection taken over from a live node to that node (its engine publishes it): the reaper publishes nothing later', async () => {
    const a = await node('node-a', 150)
    const b = await node('node-b', 150)
    const w = await watcher(a, 'watch', 'will/#')
    const old = await connect(b, 'dev', { clean: false, expiry: 600 })
    await old.session.saveWill(will('will/dev', 'published-by-node-b'))
    // node-b is alive: the setup on node-a returns once node-b closed its connection (0x8E) and said so.
    await connect(a, 'dev', { clean: false, expiry: 600 })
    assert.deepEqual(
      old.client.closes.map((c) => c.reasonCode),
      [ReasonCode.SessionTakenOver]
    )
    assert.equal(await redis.hLen(`${root}:_:owills:node-b`), 0)
    crash(b)
    await waitFor(() => a.stats.nodesReaped === 1, 6000, 'the reaper')
    await sweeps('node-a', 3, 150)
    assert.deepEqual(w.client.payloads(), [])
    assert.equal(a.stats.willsPublished, 0)
  })
})
