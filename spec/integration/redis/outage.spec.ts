import assert from 'node:assert/strict'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import { BackendUnavailableError, KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { KeyvBackendEvent } from '../../../lib/backend/keyv/index.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'
import { freePort, startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { connect, disconnect, randomRoot, sleep, startNode, subscribe, waitFor } from './nodes.js'

// Redis goes away and comes back while two nodes run: no crash, no unhandled rejection, one
// 'unavailable' report per outage, operations refused meanwhile (never acknowledged), recovery.
// The server runs with AOF (appendfsync everysec), so its data survives a restart and a SIGKILL.
describe('KeyvBackend – Redis stopped and restarted', function () {
  this.timeout(25_000)
  let server: RedisServer
  let a: KeyvBackend
  let b: KeyvBackend
  let root: string
  const events: Record<string, KeyvBackendEvent['type'][]> = { a: [], b: [] }
  const logs: string[] = []
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason)
  }

  before(async () => {
    process.on('unhandledRejection', onUnhandled)
    server = await startRedisServer({ appendonly: true })
    root = randomRoot()
    a = await startNode(server.url, root, { nodeId: 'node-a', commandTimeout: 1000, logs })
    b = await startNode(server.url, root, { nodeId: 'node-b', commandTimeout: 1000, logs })
    a.events$.subscribe((e) => events.a?.push(e.type))
    b.events$.subscribe((e) => events.b?.push(e.type))
  })

  after(async () => {
    await Promise.all([a?.close(), b?.close()])
    await server?.dispose()
    process.off('unhandledRejection', onUnhandled)
  })

  it('refuses operations while Redis is down, reports it once, and recovers', async () => {
    const live = await connect(a, 'live')
    await subscribe(live, sub('o/#', 1))
    const away = await connect(a, 'away', { clean: false })
    await subscribe(away, sub('p', 1))
    await disconnect(away)
    const leaver = await connect(a, 'leaver', { clean: false, expiry: 300 })
    await b.publish(undefined, message('o/1', 'before', 1))
    await waitFor(() => live.client.deliveries.length === 1)

    await server.stop()
    await waitFor(() => events.a?.length === 1 && events.b?.length === 1, 5000, 'unavailable events')
    const error = await Promise.resolve(b.publish(undefined, message('o/1', 'during', 1))).then(
      () => undefined,
      (e: unknown) => e
    )
    assert.ok(error instanceof BackendUnavailableError)
    assert.equal(error.reasonCode, ReasonCode.ServerUnavailable)
    await assert.rejects(connect(a, 'newcomer'), BackendUnavailableError)
    await assert.rejects(Promise.resolve(a.subscribe(live.client, [sub('x', 0)])), BackendUnavailableError)
    await assert.rejects(Promise.resolve(a.storeRetained(undefined, message('r', 'v', 0, { retain: true }))), BackendUnavailableError)
    // A connection that ends meanwhile: its session is marked away once Redis is back.
    await assert.rejects(disconnect(leaver), BackendUnavailableError)
    // Reported once per outage, however many operations failed.
    assert.deepEqual(events, { a: ['unavailable'], b: ['unavailable'] })
    assert.equal(logs.filter((l) => l.includes('Redis unavailable')).length, 2)

    await server.restart()
    await waitFor(() => events.a?.length === 2 && events.b?.length === 2, 10_000, 'available events')
    assert.deepEqual(events, { a: ['unavailable', 'available'], b: ['unavailable', 'available'] })
    // The broadcast reader resumed; sessions and subscriptions survived (AOF).
    await b.publish(undefined, message('o/2', 'after', 1))
    await waitFor(() => live.client.deliveries.length === 2, 5000, 'delivery after recovery')
    assert.deepEqual(live.client.payloads(), ['before', 'after'])
    const newcomer = await connect(b, 'newcomer')
    await subscribe(newcomer, sub('n', 0))
    await a.publish(undefined, message('n', 'hello', 0))
    await waitFor(() => newcomer.client.deliveries.length === 1)
    const raw = (a.keyv.store as { client: { sendCommand(args: string[]): Promise<string | null> } }).client
    const online = async (): Promise<string | null> => await raw.sendCommand(['HGET', `${root}:default:s:{leaver}`, 'online'])
    for (let i = 0; i < 100 && (await online()) !== '0'; i++) await sleep(20)
    assert.equal(await online(), '0')
    // The Keyv surface still works on the shared command connection (never subscribed, never blocked).
    await a.keyv.set('probe', { value: [1, 'two'] })
    assert.deepEqual(await a.keyv.get('probe'), { value: [1, 'two'] })
    assert.equal(unhandled.length, 0)
  })

  it('keeps acknowledged queued messages through a SIGKILL of Redis (AOF)', async () => {
    for (let i = 0; i < 10; i++) await b.publish(undefined, message('p', `m${i}`, 1))
    const before = events.a?.length ?? 0
    await server.kill()
    await waitFor(() => events.a?.length === before + 1, 5000, 'unavailable event')
    await server.restart()
    await waitFor(() => events.a?.length === before + 2 && events.b?.length === before + 2, 10_000, 'available events')
    const away = await connect(b, 'away', { clean: false })
    assert.equal(away.present, true)
    await waitFor(() => away.client.deliveries.length >= 10, 5000, 'queued messages')
    assert.deepEqual(
      away.client.payloads(),
      Array.from({ length: 10 }, (_, i) => `m${i}`)
    )
    assert.equal(unhandled.length, 0)
  })

  it('fails the start-up cleanly when Redis cannot be reached: ready() and methods reject, close() resolves', async () => {
    const port = await freePort()
    const lines: string[] = []
    const backend = new KeyvBackend({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300, log: (_l, m) => lines.push(m) })
    await assert.rejects(backend.ready(), BackendUnavailableError)
    await assert.rejects(Promise.resolve(backend.publish(undefined, message('t', 'x', 1))), BackendUnavailableError)
    await backend.close()
    assert.equal(lines.length, 1)
    // Closing while still connecting also ends the attempt.
    const early = new KeyvBackend({ url: `redis://127.0.0.1:${port}`, connectTimeout: 60_000, log: () => undefined })
    await early.close()
    await assert.rejects(early.ready(), BackendUnavailableError)
    assert.equal(unhandled.length, 0)
  })
})

// Redis without persistence restarts empty: every node finds it is no longer registered and
// closes its connections (their sessions are gone), and the cluster works again for new ones.
describe('KeyvBackend – Redis restarted without its data', function () {
  this.timeout(25_000)
  let server: RedisServer
  let a: KeyvBackend
  let b: KeyvBackend

  before(async () => {
    server = await startRedisServer()
    const root = randomRoot()
    a = await startNode(server.url, root, { nodeId: 'node-a', commandTimeout: 1000 })
    b = await startNode(server.url, root, { nodeId: 'node-b', commandTimeout: 1000 })
  })

  after(async () => {
    await Promise.all([a?.close(), b?.close()])
    await server?.dispose()
  })

  it('closes the connections whose sessions were lost, then serves new ones across nodes', async () => {
    const onA = await connect(a, 'on-a')
    await subscribe(onA, sub('e/#', 0))
    const onB = await connect(b, 'on-b', { clean: false })
    await subscribe(onB, sub('e/#', 1))
    await server.restart()
    await waitFor(() => a.stats.nodeReleased === 1 && b.stats.nodeReleased === 1, 10_000, 'both nodes noticing')
    for (const c of [onA, onB]) assert.deepEqual(c.client.closes.map((x) => x.reasonCode), [ReasonCode.UnspecifiedError])
    const again = await connect(a, 'on-b', { clean: false })
    assert.equal(again.present, false)
    await subscribe(again, sub('e/#', 1))
    assert.equal(await b.publish(undefined, message('e/1', 'fresh', 1)), 1)
    await waitFor(() => again.client.deliveries.length === 1)
    assert.deepEqual(again.client.payloads(), ['fresh'])
  })
})
