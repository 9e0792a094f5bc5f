/**
 * `mqtt-broker --config FILE` with `backend.type: redis` and tenancy on, two processes on one real
 * redis-server: the HTTP API and the metrics of one process list a tenant whose clients are
 * connected only to the other (the KeyvBackend's tenant directory), until its last session is gone.
 */
import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { listeningOn, portOf, startBroker, waitForOutput } from '../../helpers/broker-process.js'
import type { BrokerProcess } from '../../helpers/broker-process.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { sample, until } from '../../http/helpers.js'
import { randomRoot } from './nodes.js'

interface TenantRow {
  tenant: string | null
  connections: number
  sessions?: number
}

describe('bin/mqtt-broker – Redis backend with tenancy: the tenants of every process', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-redis-tenants-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  /** One process from a config file; answers its MQTT port and HTTP base URL. */
  async function start(name: string, prefix: string): Promise<{ run: BrokerProcess; port: number; http: string }> {
    const file = join(dir, `${name}.yaml`)
    await writeFile(
      file,
      [
        'listeners:',
        '  - { name: mqtt, kind: tcp, host: 127.0.0.1, port: 0 }',
        'backend:',
        '  type: redis',
        `  redis: { url: "${redis.url}", prefix: ${prefix}, node_id: ${name}, heartbeat_interval: 500 }`,
        'tenancy: { by: client_id, required: false }',
        'http: { host: 127.0.0.1, port: 0 }',
        ''
      ].join('\n')
    )
    const run = startBroker(['--config', file, '--log-level', 'warn'], { teardown })
    const [url] = await listeningOn(run, 1)
    const http = (await waitForOutput(run, /mqtt-broker HTTP on (http:\/\/127\.0\.0\.1:\d+)/))[1]!
    return { run, port: portOf(url!), http }
  }

  const tenants = async (http: string): Promise<TenantRow[]> => {
    const response = await fetch(`${http}/api/v1/tenants`)
    expect(response.status).to.equal(200)
    return ((await response.json()) as { items: TenantRow[] }).items
  }

  it('GET /api/v1/tenants and /metrics of one process list a tenant connected only to the other, until its last session is gone', async () => {
    const prefix = randomRoot()
    const a = await start('a', prefix)
    const b = await start('b', prefix)
    const bravo = teardown.add(
      await mqtt.connectAsync(`mqtt://127.0.0.1:${a.port}`, { clientId: 'globex:bravo', reconnectPeriod: 0, protocolVersion: 5 }),
      (c) => c.endAsync(true)
    )
    const rows = await tenants(b.http)
    expect(rows.map((row) => row.tenant)).to.have.members([null, 'globex'])
    expect(rows.find((row) => row.tenant === 'globex')).to.deep.include({ connections: 0, sessions: 1 })
    const metrics = await (await fetch(`${b.http}/metrics`)).text()
    expect(sample(metrics, 'mqtt_sessions{tenant="globex"}')).to.equal(1)
    await bravo.endAsync()
    await until(async () => (await tenants(b.http)).every((row) => row.tenant !== 'globex'))
    // Another cluster on the same Redis (another prefix) never saw it.
    const other = await start('c', randomRoot())
    await mqtt.connectAsync(`mqtt://127.0.0.1:${a.port}`, { clientId: 'acme:alpha', reconnectPeriod: 0 }).then((c) => teardown.add(c, (x) => x.endAsync(true)))
    expect((await tenants(b.http)).map((row) => row.tenant)).to.have.members([null, 'acme'])
    expect((await tenants(other.http)).map((row) => row.tenant)).to.deep.equal([null])
    for (const run of [a.run, b.run, other.run]) run.child.kill('SIGTERM')
    expect(await Promise.all([a.run.exit, b.run.exit, other.run.exit])).to.deep.equal([0, 0, 0])
  })
})
