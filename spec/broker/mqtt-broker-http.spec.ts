import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { listeningOn, portOf, startBroker, waitForOutput } from '../helpers/broker-process.js'
import type { BrokerProcess } from '../helpers/broker-process.js'
import { useTeardown } from '../helpers/teardown.js'

const TOKEN = 'spec-token-0123456789abcdef'

/** `mqtt-broker --config FILE` with an `http:` section: health, metrics, API and dashboard, with a token. */
describe('bin/mqtt-broker – http: section', function () {
  this.timeout(30000)
  const teardown = useTeardown()
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-http-cli-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  async function run(yaml: string, args: string[] = []): Promise<BrokerProcess> {
    const file = join(dir, `broker-${Math.random().toString(36).slice(2)}.yaml`)
    await writeFile(file, yaml)
    return startBroker(['--config', file, '--log-level', 'warn', ...args], { teardown })
  }

  const get = (url: string, token?: string): Promise<Response> =>
    fetch(url, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } })

  it('serves /healthz, /readyz, /metrics and the dashboard on its own port, protected by a token; closed on SIGTERM', async () => {
    const broker = await run(`listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: 0\n  auth: { tokens: ["${TOKEN}"] }\n`)
    const [mqttUrl] = await listeningOn(broker, 1)
    const base = (await waitForOutput(broker, /mqtt-broker HTTP on (http:\/\/127\.0\.0\.1:\d+)/))[1]!
    expect((await get(`${base}/healthz`)).status).to.equal(200)
    const ready = await get(`${base}/readyz`)
    expect(ready.status).to.equal(200)
    expect((await get(`${base}/metrics`)).status).to.equal(401)
    expect((await get(`${base}/metrics`, 'wrong-token-0123456789')).status).to.equal(401)
    expect((await get(`${base}/api/v1/clients`)).status).to.equal(401)
    // A client connects: the metrics and the API see it.
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${portOf(mqttUrl!)}`, { clientId: 'seen-by-http', reconnectPeriod: 0 })
    teardown.defer(() => client.endAsync())
    const metrics = await get(`${base}/metrics`, TOKEN)
    expect(metrics.status).to.equal(200)
    expect(await metrics.text()).to.match(/^mqtt_connections(\{[^}]*\})? 1$/m)
    const clients = (await (await get(`${base}/api/v1/clients`, TOKEN)).json()) as { items?: { clientId: string }[] }
    expect(JSON.stringify(clients)).to.include('seen-by-http')
    const page = await get(`${base}/`)
    expect(page.status).to.equal(200)
    expect(page.headers.get('content-type')).to.match(/text\/html/)
    expect(await page.text()).to.match(/<html/i)
    expect((await get(`${base}/dashboard/uplot.js`)).status).to.equal(200)
    await client.endAsync()
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
    const after = await get(`${base}/healthz`).then(
      () => 'served',
      () => 'refused'
    )
    expect(after).to.equal('refused')
  })

  it('mounts on a ws listener (http.listener) under base_path, next to MQTT over WebSocket', async () => {
    const broker = await run(
      `listeners:\n  - { name: web, kind: ws, port: 0, path: /mqtt }\nhttp:\n  listener: web\n  base_path: /admin\n  auth: { tokens: ["${TOKEN}"] }\n`
    )
    const [wsUrl] = await listeningOn(broker, 1)
    const port = portOf(wsUrl!)
    await waitForOutput(broker, /mqtt-broker HTTP on http:\/\/127\.0\.0\.1:\d+\/admin\/ \(on ws listener "web"\)/)
    expect((await get(`http://127.0.0.1:${port}/admin/healthz`)).status).to.equal(200)
    expect((await get(`http://127.0.0.1:${port}/admin/metrics`)).status).to.equal(401)
    expect((await get(`http://127.0.0.1:${port}/admin/metrics`, TOKEN)).status).to.equal(200)
    expect((await get(`http://127.0.0.1:${port}/admin/`)).headers.get('content-type')).to.match(/text\/html/)
    const client = await mqtt.connectAsync(`ws://127.0.0.1:${port}/mqtt`, { clientId: 'over-ws', reconnectPeriod: 0 })
    await client.endAsync()
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
  })

  it('all or none: an HTTP port in use stops the start with exit 1 and no MQTT listener stays', async () => {
    const blocker: Server = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    teardown.defer(() => new Promise((resolve) => blocker.close(resolve)))
    const busy = (blocker.address() as { port: number }).port
    const broker = await run(`listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: ${busy}\n`)
    expect(await broker.exit).to.equal(1)
    expect(broker.stderr).to.match(/cannot start, nothing was started: .*EADDRINUSE/)
    expect(broker.stdout).to.not.match(/listening on/)
  })

  it('--print-config masks the tokens and passwords of http.auth; HTTP beyond loopback without them exits 2', async () => {
    const broker = await run(
      `http:\n  port: 0\n  auth:\n    tokens: ["${TOKEN}"]\n    users: [{ username: ops, password: plain-secret }]\n`,
      ['--print-config']
    )
    expect(await broker.exit).to.equal(0)
    expect(broker.stdout).to.include('username: ops')
    expect(broker.stdout).to.not.include(TOKEN)
    expect(broker.stdout).to.not.include('plain-secret')
    const open = await run('allow_anonymous: true\nhttp:\n  host: 0.0.0.0\n  port: 0\n')
    expect(await open.exit).to.equal(2)
    expect(open.stderr).to.match(/http\.host: the HTTP endpoints .* without credentials/)
  })
})
