/**
 * `KeyvBackend.listTenants` on one real redis-server: one `KeyvBackend` serves every tenant (as
 * the command's Redis mode does with tenancy on), and lists the tenants of the whole cluster from
 * the tenant directory in its key space (`<prefix>:_:tenants`): a tenant connected only to another
 * node is listed (HTTP API, metrics), and leaves with its last session; another cluster on the
 * same Redis (another prefix) sees none of them.
 */
import { expect } from 'chai'
import { createClient } from '@redis/client'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { listenHttp } from '../../../lib/http/listen.js'
import { byClientIdPrefix } from '../../../lib/tenancy/resolvers.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { sample, until } from '../../http/helpers.js'
import { randomRoot } from './nodes.js'

interface Node {
  broker: Broker
  backend: KeyvBackend
  port: number
}

interface TenantRow {
  tenant: string | null
  connections: number
  sessions?: number
}

describe('KeyvBackend – the tenants of every node of the cluster (tenant directory)', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  async function node(root: string, url = redis.url): Promise<Node> {
    const backend = new KeyvBackend({ url, prefix: root, heartbeatInterval: 500, log: () => undefined })
    const broker = teardown.add(new Broker({ backend, logger: silentLogger, tenantResolver: byClientIdPrefix({ required: false }) }), async (b) => {
      await b.close()
      await backend.close()
    })
    await backend.ready()
    const port = (await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port
    return { broker, backend, port }
  }

  async function connect(port: number, clientId: string, options: IClientOptions = {}): Promise<MqttClient> {
    return teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, protocolVersion: 5, ...options }), (c) => c.endAsync(true))
  }

  async function directory(root: string): Promise<Record<string, string>> {
    const raw = teardown.add(await createClient({ url: redis.url }).connect(), (c) => c.close())
    // A plain object: mocha cannot report a failed comparison of a null-prototype one.
    return { ...(await raw.hGetAll(`${root}:_:tenants`)) }
  }

  it('lists a tenant connected only to the other node, until its last session is gone', async () => {
    const root = randomRoot()
    const a = await node(root)
    const b = await node(root)
    expect(await b.backend.listTenants()).to.deep.equal([undefined])
    const alpha = await connect(a.port, 'acme:alpha')
    const bravo = await connect(a.port, 'globex:bravo', { clean: false, properties: { sessionExpiryInterval: 300 } })
    // Listed as soon as the CONNACK came: the record precedes it.
    expect(await b.backend.listTenants()).to.deep.equal([undefined, 'acme', 'globex'])
    await alpha.endAsync()
    await until(async () => !(await b.backend.listTenants()).includes('acme'))
    // globex keeps its persistent session while away: still listed.
    await bravo.endAsync()
    expect(await b.backend.listTenants()).to.deep.equal([undefined, 'globex'])
    expect(await b.backend.deleteSession('globex', 'bravo')).to.equal(true)
    expect(await b.backend.listTenants()).to.deep.equal([undefined])
    // Forgotten from the directory, not only hidden.
    expect(await directory(root)).to.deep.equal({})
    // A tenant comes back: listed again.
    await connect(a.port, 'acme:alpha')
    expect(await b.backend.listTenants()).to.deep.equal([undefined, 'acme'])
  })

  it('records one HINCRBY per CONNECT of a named tenant, nothing for the default tenant or a publish', async () => {
    const root = randomRoot()
    const a = await node(root)
    const first = await connect(a.port, 'acme:one')
    await connect(a.port, 'acme:two')
    await connect(a.port, 'plain')
    await first.publishAsync('t', 'x', { qos: 1 })
    await first.publishAsync('t', 'y', { qos: 0 })
    await first.endAsync()
    await connect(a.port, 'acme:one')
    expect(await directory(root)).to.deep.equal({ acme: '3' })
  })

  it('the HTTP API and the metrics of one node list and count a tenant connected only to the other', async () => {
    const root = randomRoot()
    const a = await node(root)
    const b = await node(root)
    const http = teardown.add(await listenHttp(b.broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    const bravo = await connect(a.port, 'globex:bravo')
    const rows = async (): Promise<TenantRow[]> => {
      const response = await fetch(`${http.url}/api/v1/tenants`)
      expect(response.status).to.equal(200)
      return ((await response.json()) as { items: TenantRow[] }).items
    }
    const items = await rows()
    expect(items.map((row) => row.tenant)).to.have.members([null, 'globex'])
    expect(items.find((row) => row.tenant === 'globex')).to.deep.include({ connections: 0, sessions: 1 })
    const metrics = await (await fetch(`${http.url}/metrics`)).text()
    expect(sample(metrics, 'mqtt_sessions{tenant="globex"}')).to.equal(1)
    await bravo.endAsync()
    await until(async () => (await rows()).every((row) => row.tenant !== 'globex'))
  })

  it('another cluster on the same Redis (another prefix) does not see the tenants', async () => {
    const a = await node(randomRoot())
    const other = await node(randomRoot())
    await connect(a.port, 'acme:alpha')
    expect(await a.backend.listTenants()).to.deep.equal([undefined, 'acme'])
    expect(await other.backend.listTenants()).to.deep.equal([undefined])
  })

  it('accepts a session whose tenant cannot be recorded, and records it once the directory is writable again', async () => {
    const root = randomRoot()
    // A Redis user that may use every key of the cluster but the tenant directory (no key of the
    // node level but `<root>:_:tenants` starts with `t`).
    const admin = teardown.add(await createClient({ url: redis.url }).connect(), (c) => c.close())
    const user = `u${root}`
    await admin.sendCommand(['ACL', 'SETUSER', user, 'on', '>secret', '+@all', '&*', `~${root}:[^_]*`, `~${root}:_:[^t]*`])
    teardown.defer(() => admin.sendCommand(['ACL', 'DELUSER', user]))
    const limited = await node(root, redis.url.replace('redis://', `redis://${user}:secret@`))
    const b = await node(root)
    // Accepted although the record fails (NOPERM).
    const alpha = await connect(limited.port, 'acme:alpha')
    expect(alpha.connected).to.equal(true)
    expect(await b.backend.listTenants()).to.deep.equal([undefined])
    // The directory cannot be read either: the listing of this node rejects, the broker lives on.
    const refused = await limited.backend.listTenants().then(
      () => 'listed',
      (error: unknown) => String(error)
    )
    expect(refused).to.match(/NOPERM/)
    await admin.sendCommand(['ACL', 'SETUSER', user, `~${root}:_:tenants`])
    // The next connection records its own tenant, and the one that failed aside.
    await connect(limited.port, 'globex:bravo')
    await until(async () => (await b.backend.listTenants()).includes('acme'))
    expect(await b.backend.listTenants()).to.deep.equal([undefined, 'acme', 'globex'])
    expect(await limited.backend.listTenants()).to.deep.equal([undefined, 'acme', 'globex'])
  })
})
