/**
 * The access-control decorator hands the optional backend members the engine and the HTTP API use
 * to the wrapped backend: `authenticationMethods` (plus SCRAM-SHA-256 when it does SCRAM),
 * `available`, `stats` and the `BackendInspection` methods.
 */
import { expect } from 'chai'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { withAccessControl } from '../../lib/auth/access-backend.js'
import { PasswordFile } from '../../lib/auth/password-file.js'
import type { Backend, ClientHandle } from '../../lib/backend/backend.js'
import { FakeClient } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { listenHttp } from '../../lib/http/index.js'
import { useTeardown } from '../helpers/teardown.js'

describe('access control – optional backend members passed through', function () {
  this.timeout(20000)
  const teardown = useTeardown()

  it('the REST API, /readyz and the metrics see the wrapped MemoryBackend (not 501)', async () => {
    const backend = withAccessControl(new MemoryBackend(), { acl: [{ filter: '#', access: 'readwrite' }] })
    const broker = teardown.add(new Broker({ backend, logger: silentLogger }), (b) => b.close())
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const http = teardown.add(await listenHttp(broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'kept', clean: false, reconnectPeriod: 0 })
    teardown.defer(() => client.endAsync(true))
    await client.subscribeAsync('a/b', { qos: 1 })
    const sessions = await fetch(`${http.url}/api/v1/sessions`)
    expect(sessions.status).to.equal(200)
    expect(JSON.stringify(await sessions.json())).to.include('kept')
    const one = await fetch(`${http.url}/api/v1/sessions/kept/subscriptions`)
    expect(one.status).to.equal(200)
    expect(JSON.stringify(await one.json())).to.include('a/b')
    expect((await fetch(`${http.url}/readyz`)).status).to.equal(200)
    const metrics = await (await fetch(`${http.url}/metrics`)).text()
    expect(metrics).to.match(/^mqtt_subscriptions(\{[^}]*\})? 1$/m)
    expect(metrics).to.match(/^mqtt_backend_events_total\{event="published"\} \d+$/m)
  })

  it('inspection methods only where the wrapped backend has them; available and stats follow it', async () => {
    const plain = new MemoryBackend()
    const bare: Backend & { available?: boolean } = {
      authenticate: (c, cr) => plain.authenticate(c, cr),
      setup: (c, clean, e) => plain.setup(c, clean, e),
      queueOffline: (c) => plain.queueOffline(c),
      subscribe: (c, subs) => plain.subscribe(c, subs),
      unsubscribe: (c, f) => plain.unsubscribe(c, f),
      storeRetained: (c, m) => plain.storeRetained(c, m),
      queueRetained: (c, s) => plain.queueRetained(c, s),
      publish: (c, m) => plain.publish(c, m),
      terminate: (c) => plain.terminate(c),
      close: () => plain.close(),
      available: false
    }
    const wrapped = withAccessControl(bare)
    expect(wrapped.listSessions).to.equal(undefined)
    expect(wrapped.counts).to.equal(undefined)
    expect(wrapped.available).to.equal(false)
    expect(wrapped.stats).to.equal(undefined)
    bare.available = true
    expect(wrapped.available).to.equal(true)
    const memory = withAccessControl(new MemoryBackend())
    expect(memory.counts).to.be.a('function')
    expect(memory.stats).to.have.property('published')
    await Promise.all([wrapped.close(), memory.close()])
  })

  it('authenticationMethods: the wrapped backend\'s, and SCRAM-SHA-256 when the access control does SCRAM', async () => {
    const client = new FakeClient('c') as unknown as ClientHandle
    const inner = new MemoryBackend({ authenticationMethods: ['X-TOKEN'] })
    const plain = withAccessControl(inner, { scram: false })
    expect(plain.authenticationMethods(client)).to.deep.equal(['X-TOKEN'])
    const dir = await mkdtemp(join(tmpdir(), 'acl-scram-'))
    teardown.defer(() => rm(dir, { recursive: true, force: true }))
    await writeFile(join(dir, 'users'), '')
    const scram = withAccessControl(new MemoryBackend(), { authenticators: [new PasswordFile(join(dir, 'users'))] })
    expect(scram.authenticationMethods(client)).to.deep.equal(['SCRAM-SHA-256'])
    await Promise.all([plain.close(), scram.close()])
  })
})
