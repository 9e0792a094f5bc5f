/**
 * `TenantBackend({ shared: true })` over one `KeyvBackend` per tenant on one key space (the tenant
 * as `namespace`, one `prefix`): a process lists the clients of every tenant connected anywhere in
 * the cluster, including tenants that never had a backend in this process (MQTT.js clients over
 * TCP, tenants from `tenant:client` ids).
 */
import { expect } from 'chai'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { TenantBackend } from '../../../lib/backend/tenant-backend.js'
import { byClientIdPrefix } from '../../../lib/tenancy/resolvers.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { randomRoot } from './nodes.js'

describe('TenantBackend (shared) – the clients of every tenant of the cluster', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  async function node(root: string): Promise<{ tenants: TenantBackend; port: number }> {
    const tenants = new TenantBackend({
      factory: (tenant) => new KeyvBackend({ url: redis.url, prefix: root, namespace: tenant ?? 'default', heartbeatInterval: 500, log: () => undefined }),
      shared: true
    })
    const broker = teardown.add(new Broker({ backend: tenants, logger: silentLogger, tenantResolver: byClientIdPrefix({ required: false }) }), async (b) => {
      await b.close()
      await tenants.close()
    })
    const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    return { tenants, port }
  }

  async function connect(port: number, clientId: string): Promise<MqttClient> {
    return teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, protocolVersion: 5 }), (c) => c.endAsync(true))
  }

  const names = (items: { tenant?: string | undefined; clientId: string }[]): string[] => items.map((c) => `${c.tenant ?? '-'}/${c.clientId}`)

  /** Two processes on one key space; `clientIds` connected to the first. */
  async function cluster(...clientIds: string[]): Promise<[{ tenants: TenantBackend; port: number }, { tenants: TenantBackend; port: number }]> {
    const root = randomRoot()
    const a = await node(root)
    const b = await node(root)
    for (const clientId of clientIds) await connect(a.port, clientId)
    return [a, b]
  }

  it('lists, counts and finds clients of tenants connected only to another process', async () => {
    const [, b] = await cluster('acme:alpha', 'globex:bravo')
    await connect(b.port, 'acme:charlie')
    // globex never connected to b: b has no backend for it.
    expect(b.tenants.tenants).to.deep.equal(['acme'])
    const all = await b.tenants.listClients({})
    expect([all.total, names(all.items)]).to.deep.equal([3, ['acme/alpha', 'globex/bravo', 'acme/charlie']])
    const page = await b.tenants.listClients({ offset: 1, limit: 1 })
    expect([page.total, names(page.items)]).to.deep.equal([3, ['globex/bravo']])
    // Named tenants: made on request (shared).
    expect(names((await b.tenants.listClients({ filterTenant: true, tenant: 'globex' })).items)).to.deep.equal(['globex/bravo'])
    expect(await b.tenants.connectedCount('globex')).to.equal(1)
    expect(await b.tenants.findClient('globex', 'bravo')).to.deep.include({ clientId: 'bravo', tenant: 'globex' })
  })

  it('a process with no tenant backend yet lists the cluster too', async () => {
    const [, b] = await cluster('acme:alpha', 'beta')
    expect(b.tenants.tenants).to.deep.equal([])
    const all = await b.tenants.listClients({})
    expect(names(all.items)).to.deep.equal(['acme/alpha', '-/beta'])
  })
})
