import { expect } from 'chai'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { listenHttp } from '../../lib/http/listen.js'
import { useRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'
import { sample, until } from './helpers.js'

describe('http – health and readiness', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  async function status(url: string): Promise<{ status: number; body: { status: string; checks: Record<string, { ok: boolean; detail: string }> } }> {
    const response = await fetch(url)
    return { status: response.status, body: (await response.json()) as never }
  }

  it('/readyz is 503 until a listener is bound, 200 after, and 503 once the broker closes; /healthz answers while serving', async () => {
    const broker = new Broker({ backend: await startNode(redis.url, randomRoot()), logger: silentLogger })
    teardown.add(broker, (b) => b.close())
    const http = teardown.add(await listenHttp(broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    const before = await status(`${http.url}/readyz`)
    expect(before.status).to.equal(503)
    expect(before.body.status).to.equal('unavailable')
    expect(before.body.checks.listeners).to.include({ ok: false })
    expect(before.body.checks.backend).to.deep.equal({ ok: true, detail: 'reachable' })
    await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    expect((await status(`${http.url}/readyz`)).status).to.equal(200)
    expect(await status(`${http.url}/healthz`)).to.deep.equal({ status: 200, body: { status: 'ok' } })
    await broker.close()
    expect((await status(`${http.url}/readyz`)).status).to.equal(503)
    expect((await status(`${http.url}/healthz`)).status).to.equal(503)
  })

  it("/readyz is 503 while the spec's redis-server is stopped and 200 again after it restarts (mqtt_backend_up follows)", async () => {
    const broker = new Broker({ backend: await startNode(redis.url, randomRoot()), logger: silentLogger })
    teardown.add(broker, (b) => b.close())
    await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const http = teardown.add(await listenHttp(broker, { port: 0, defaultMetrics: false, publicMetrics: true }), (h) => h.close())
    const up = async (): Promise<number | undefined> => sample(await (await fetch(`${http.url}/metrics`)).text(), 'mqtt_backend_up')
    expect((await status(`${http.url}/readyz`)).status).to.equal(200)
    expect(await up()).to.equal(1)
    await redis.stop()
    await until(async () => (await status(`${http.url}/readyz`)).status === 503, 20_000)
    const down = await status(`${http.url}/readyz`)
    expect(down.body.checks.backend).to.deep.equal({ ok: false, detail: 'unreachable' })
    expect(await up()).to.equal(0)
    // The API answers while Redis is away: what needs it says 503, the rest works.
    const overview = await fetch(`${http.url}/api/v1/overview`)
    expect(overview.status).to.equal(200)
    expect(((await overview.json()) as { backend_up: boolean }).backend_up).to.equal(false)
    const publish = await fetch(`${http.url}/api/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"t","qos":1}' })
    expect(publish.status).to.equal(503)
    await redis.restart()
    await until(async () => (await status(`${http.url}/readyz`)).status === 200, 20_000)
    expect(await up()).to.equal(1)
  })
})
