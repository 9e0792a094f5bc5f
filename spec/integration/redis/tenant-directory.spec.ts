/**
 * `TenantBackend({ shared: true, directory })` over `KeyvBackend`s on one real redis-server, two
 * broker processes' worth of backends (each its own Redis connections and node id): one lists the
 * tenants, and the clients, of tenants connected only to the other, with one key prefix for every
 * tenant and with a prefix per tenant; a tenant leaves the list with its last session.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { createClient } from '@redis/client'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { TenantBackend } from '../../../lib/backend/tenant-backend.js'
import { MemoryBackend } from '../../../lib/backend/memory-backend.js'
import { listenHttp } from '../../../lib/http/listen.js'
import { byClientIdPrefix } from '../../../lib/tenancy/resolvers.js'
import { RedisTenantDirectory } from '../../../lib/tenancy/redis-directory.js'
import { startRedisServer, useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { sample, until } from '../../http/helpers.js'
import { randomRoot } from './nodes.js'

type Layout = 'one prefix' | 'a prefix per tenant'

/** A broker process of its own (TenantBackend with a directory over KeyvBackends). */
const FIXTURE = fileURLToPath(new URL('./fixtures/tenant-broker.ts', import.meta.url))

interface Node {
  broker: Broker
  tenants: TenantBackend
  port: number
}

describe('TenantBackend (shared) – the tenants of every process of the cluster (directory)', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  function directory(root: string): RedisTenantDirectory {
    return new RedisTenantDirectory({ url: redis.url, key: `${root}:_:tenants` })
  }

  async function node(root: string, layout: Layout): Promise<Node> {
    const tenants = new TenantBackend({
      factory: (tenant) =>
        layout === 'one prefix'
          ? new KeyvBackend({ url: redis.url, prefix: root, namespace: tenant ?? 'default', heartbeatInterval: 500, log: () => undefined })
          : new KeyvBackend({ url: redis.url, prefix: `${root}-${tenant ?? 'default'}`, heartbeatInterval: 500, log: () => undefined }),
      shared: true,
      directory: directory(root)
    })
    const broker = teardown.add(new Broker({ backend: tenants, logger: silentLogger, tenantResolver: byClientIdPrefix({ required: false }) }), async (b) => {
      await b.close()
      await tenants.close()
    })
    const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    return { broker, tenants, port }
  }

  async function connect(port: number, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
    return teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, protocolVersion: 5, ...options }), (c) => c.endAsync(true))
  }

  /** The tenants `tenants` lists, as given (the default tenant first, then by id). */
  const listed = async (tenants: TenantBackend): Promise<(string | undefined)[]> => await tenants.listTenants()

  for (const layout of ['one prefix', 'a prefix per tenant'] as const) {
    describe(layout, () => {
      it('lists a tenant connected only to the other process, until its last session is gone', async () => {
        const root = randomRoot()
        const a = await node(root, layout)
        const b = await node(root, layout)
        const alpha = await connect(a.port, 'acme:alpha')
        const bravo = await connect(a.port, 'globex:bravo', { clean: false, properties: { sessionExpiryInterval: 300 } })
        // b never saw either tenant.
        expect(b.tenants.tenants).to.deep.equal([])
        expect(await listed(b.tenants)).to.deep.equal(['acme', 'globex'])

        // acme's only session (expiry 0) ends with its connection: acme leaves the list.
        await alpha.endAsync()
        await until(async () => !(await listed(b.tenants)).includes('acme'))
        // globex's session stays while its client is away: still listed.
        await bravo.endAsync()
        await until(async () => (await b.tenants.findClient('globex', 'bravo')) === undefined)
        expect(await listed(b.tenants)).to.deep.equal(['globex'])
        // Deleted by an operator: gone as well.
        expect(await b.tenants.deleteSession('globex', 'bravo')).to.equal(true)
        expect(await listed(b.tenants)).to.deep.equal([])
        expect(await listed(a.tenants)).to.deep.equal([])

        // A new session brings the tenant back, on any process; the default tenant is listed too.
        await connect(b.port, 'acme:again')
        await connect(a.port, 'plain')
        expect(await listed(a.tenants)).to.deep.equal([undefined, 'acme'])
      })

      it('lists the clients of every tenant, also those connected only to the other process', async () => {
        const root = randomRoot()
        const a = await node(root, layout)
        const b = await node(root, layout)
        await connect(a.port, 'acme:alpha')
        await connect(a.port, 'globex:bravo')
        await connect(b.port, 'acme:charlie')
        expect(b.tenants.tenants).to.deep.equal(['acme'])
        const all = await b.tenants.listClients({})
        expect([all.total, all.items.map((c) => `${c.tenant ?? '-'}/${c.clientId}`)]).to.deep.equal([3, ['acme/alpha', 'globex/bravo', 'acme/charlie']])
      })
    })
  }

  /** Spawns fixtures/tenant-broker.ts on `root`; teardown stops it (SIGTERM, SIGKILL after 5 s). */
  async function spawnNode(root: string, layout: Layout): Promise<number> {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: { ...process.env, REDIS_URL: redis.url, KEY_PREFIX: root, DIRECTORY_KEY: `${root}:_:tenants`, LAYOUT: layout === 'one prefix' ? 'one' : 'per-tenant' },
      stdio: ['pipe', 'pipe', 'pipe']
    })
    const exited = new Promise((resolve) => child.once('exit', resolve))
    teardown.defer(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the broker process did not start: ${stderr}`)), 30_000)
      child.stdout.on('data', () => {
        const match = /listening (\d+)/.exec(stdout)
        if (match === null) return
        clearTimeout(timer)
        resolve(Number(match[1]))
      })
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`the broker process exited with ${String(code)}: ${stderr}`))
      })
    })
  }

  for (const layout of ['one prefix', 'a prefix per tenant'] as const) {
    it(`lists a tenant connected only to another broker process (${layout})`, async () => {
      const root = randomRoot()
      const other = await spawnNode(root, layout)
      const here = await node(root, layout)
      const bravo = await connect(other, 'globex:bravo')
      expect(await listed(here.tenants)).to.deep.equal(['globex'])
      expect((await here.tenants.listClients({})).items.map((c) => `${c.tenant ?? '-'}/${c.clientId}`)).to.deep.equal(['globex/bravo'])
      await bravo.endAsync()
      await until(async () => (await listed(here.tenants)).length === 0)
    })
  }

  it('the HTTP API and the metrics of one process list and count a tenant connected only to the other', async () => {
    const root = randomRoot()
    const a = await node(root, 'a prefix per tenant')
    const b = await node(root, 'a prefix per tenant')
    const http = teardown.add(await listenHttp(b.broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    await connect(a.port, 'globex:bravo')
    const response = await fetch(`${http.url}/api/v1/tenants`)
    expect(response.status).to.equal(200)
    const { items } = (await response.json()) as { items: { tenant: string | null; connections: number; sessions?: number }[] }
    expect(items.map((row) => row.tenant)).to.have.members([null, 'globex'])
    expect(items.find((row) => row.tenant === 'globex')).to.deep.include({ connections: 0, sessions: 1 })
    const metrics = await (await fetch(`${http.url}/metrics`)).text()
    expect(sample(metrics, 'mqtt_sessions{tenant="globex"}')).to.equal(1)
  })

  it('forgets a tenant only if nobody recorded it since it was read, and skips fields that are no tenant', async () => {
    const root = randomRoot()
    const dir = teardown.add(directory(root), (d) => d.close())
    await dir.record('acme')
    await dir.record(undefined)
    const first = (await dir.entries()).get('acme') as string
    // A session set up meanwhile records the tenant again: the stale generation forgets nothing.
    await dir.record('acme')
    expect(await dir.forget('acme', first)).to.equal(false)
    const second = (await dir.entries()).get('acme') as string
    expect(await dir.forget('acme', second)).to.equal(true)
    const raw = teardown.add(await createClient({ url: redis.url }).connect(), (c) => c.close())
    await raw.hSet(dir.key, 'Not Valid!', '1')
    expect([...(await dir.entries()).keys()]).to.deep.equal([undefined])
  })

  it('accepts sessions while the directory is away, and records their tenants once it is back', async () => {
    // AOF on: the restarted server keeps what was recorded before the outage.
    const own = teardown.add(await startRedisServer({ appendonly: true }), (server) => server.dispose())
    const tenants = teardown.add(
      new TenantBackend({ factory: () => new MemoryBackend(), shared: true, directory: new RedisTenantDirectory({ url: own.url, key: 'outage:tenants', timeout: 2000 }) }),
      (t) => t.close()
    )
    const broker = teardown.add(new Broker({ backend: tenants, logger: silentLogger, tenantResolver: byClientIdPrefix({ required: false }) }), (b) => b.close())
    const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    await connect(port, 'acme:alpha')
    await own.stop()
    // The session is set up even though its tenant cannot be recorded; the listing says why it cannot answer.
    await connect(port, 'globex:bravo')
    let failure: unknown
    await Promise.resolve(tenants.listTenants()).catch((error: unknown) => (failure = error))
    expect(failure).to.be.instanceOf(Error)
    await own.restart()
    expect(await listed(tenants)).to.deep.equal(['acme', 'globex'])
    const check = new RedisTenantDirectory({ url: own.url, key: 'outage:tenants' })
    teardown.add(check, (d) => d.close())
    expect([...(await check.entries()).keys()].sort()).to.deep.equal(['acme', 'globex'])
  })

  it('sends its commands on a borrowed client, and refuses bad options', async () => {
    const raw = teardown.add(await createClient({ url: redis.url }).connect(), (c) => c.close())
    const key = `${randomRoot()}:tenants`
    const dir = new RedisTenantDirectory({ client: raw, key })
    await dir.record('acme')
    await dir.close()
    // The borrowed client stays open.
    expect(await raw.hGetAll(key)).to.deep.equal({ acme: '1' })
    expect(() => new RedisTenantDirectory({})).to.throw(TypeError, /url or a client/)
    expect(() => new RedisTenantDirectory({ url: redis.url, key: '' })).to.throw(TypeError, /key/)
    expect(() => new RedisTenantDirectory({ url: redis.url, timeout: 0 })).to.throw(TypeError, /timeout/)
  })

  it('answers a command on a closed directory with an error, and refuses a directory without shared', async () => {
    const dir = directory(randomRoot())
    await dir.close()
    let failure: unknown
    await Promise.resolve(dir.entries()).catch((error: unknown) => (failure = error))
    expect(String(failure)).to.match(/closed/)
    expect(() => new TenantBackend({ factory: () => new MemoryBackend(), directory: new RedisTenantDirectory({ url: redis.url }) })).to.throw(TypeError, /shared/)
  })
})
