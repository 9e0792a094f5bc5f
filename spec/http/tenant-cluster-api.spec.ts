import { expect } from 'chai'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { KeyvBackend } from '../../lib/backend/keyv/index.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { listenHttp } from '../../lib/http/listen.js'
import type { HttpListener } from '../../lib/http/listen.js'
import { byUsernameDomain } from '../../lib/tenancy/resolvers.js'
import { useRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot } from '../integration/redis/nodes.js'
import { until } from './helpers.js'

interface ClientItem {
  client_id: string
  tenant: string | null
  username: string | null
  node: string | null
}
interface ClientPage {
  items: ClientItem[]
  total: number
  scope: string
}

/**
 * Two brokers, each with a `TenantBackend` that makes one `KeyvBackend` per tenant (its own key
 * prefix) on one real redis-server: the management API of one shows and kicks the clients of every
 * tenant connected to the other (MQTT.js clients, tenants from `user@tenant`).
 */
describe('http – management API across a Redis cluster through a TenantBackend', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  /** A broker over TenantBackend(KeyvBackend per tenant), listening on TCP. */
  async function node(root: string, name: string): Promise<{ broker: Broker; tenants: TenantBackend; port: number }> {
    const tenants = new TenantBackend({
      factory: (tenant) =>
        new KeyvBackend({ url: redis.url, prefix: `${root}-${tenant ?? 'default'}`, heartbeatInterval: 500, log: () => undefined }),
      shared: true
    })
    const broker = teardown.add(new Broker({ backend: tenants, logger: silentLogger, tenantResolver: byUsernameDomain() }), async (b) => {
      await b.close()
      await tenants.close()
    })
    const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: name })).port
    return { broker, tenants, port }
  }

  async function connect(port: number, options: IClientOptions): Promise<MqttClient> {
    return teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...options }), (c) => c.endAsync(true))
  }

  async function call(http: HttpListener, path: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${http.url}/api/v1${path}`, init)
    return { status: response.status, body: await response.json() }
  }

  const nodeOf = (tenants: TenantBackend, tenant: string): string => (tenants.backendOf(tenant) as KeyvBackend).nodeId

  it('lists, shows and kicks the clients of every tenant connected to another process', async () => {
    const root = randomRoot()
    const a = await node(root, 'tcp-a')
    const b = await node(root, 'tcp-b')
    const http = teardown.add(await listenHttp(b.broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    await connect(a.port, { clientId: 'alpha', username: 'alice@acme' })
    const bravo = await connect(a.port, { clientId: 'bravo', username: 'bob@globex' })
    await connect(b.port, { clientId: 'charlie', username: 'carol@acme' })

    // acme has a backend on both processes; globex only on A: B makes its own on request.
    const acme = (await call(http, '/clients?tenant=acme')).body as ClientPage
    expect(acme.scope).to.equal('cluster')
    expect(acme.items.map((i) => [i.client_id, i.tenant, i.username, i.node])).to.deep.equal([
      ['alpha', 'acme', 'alice', nodeOf(a.tenants, 'acme')],
      ['charlie', 'acme', 'carol', nodeOf(b.tenants, 'acme')]
    ])
    const globex = (await call(http, '/clients?tenant=globex')).body as ClientPage
    expect(globex.items.map((i) => [i.client_id, i.node])).to.deep.equal([['bravo', nodeOf(a.tenants, 'globex')]])

    // Every tenant, merged and paged.
    const all = (await call(http, '/clients')).body as ClientPage
    expect([all.scope, all.total, all.items.map((i) => `${i.tenant ?? ''}/${i.client_id}`)]).to.deep.equal(['cluster', 3, ['acme/alpha', 'globex/bravo', 'acme/charlie']])
    const page = (await call(http, '/clients?offset=1&limit=1')).body as ClientPage
    expect([page.total, page.items.map((i) => i.client_id)]).to.deep.equal([3, ['bravo']])

    const details = await call(http, '/clients/alpha?tenant=acme')
    expect(details.status).to.equal(200)
    expect(details.body).to.deep.include({ client_id: 'alpha', tenant: 'acme', node: nodeOf(a.tenants, 'acme') })
    expect((await call(http, '/clients/alpha?tenant=globex')).status).to.equal(404)

    const reason = new Promise<number | undefined>((resolve) => bravo.once('disconnect', (packet) => resolve(packet.reasonCode)))
    const kicked = await call(http, '/clients/bravo?tenant=globex', { method: 'DELETE' })
    expect(kicked).to.deep.equal({ status: 200, body: { client_id: 'bravo', tenant: 'globex', disconnected: true } })
    expect(await reason).to.equal(0x98)
    await until(async () => ((await call(http, '/clients')).body as ClientPage).total === 2)
    expect((await call(http, '/clients/bravo?tenant=globex', { method: 'DELETE' })).status).to.equal(404)
  })

  it('makes no backend for an invalid tenant id and answers 400', async () => {
    const b = await node(randomRoot(), 'tcp-b')
    const http = teardown.add(await listenHttp(b.broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    expect((await call(http, '/clients?tenant=Not%20Valid')).status).to.equal(400)
    expect(b.tenants.tenants).to.deep.equal([])
  })
})
