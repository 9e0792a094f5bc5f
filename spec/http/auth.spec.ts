import { expect } from 'chai'
import type { IncomingMessage } from 'node:http'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { get as httpsGet } from 'node:https'
import { readFileSync } from 'node:fs'
import { Ajv } from 'ajv'
import { HttpAuthenticator, hashHttpPassword } from '../../lib/http/auth.js'
import { listenHttp } from '../../lib/http/listen.js'
import { httpConfigSchema, httpOptionsFromConfig } from '../../lib/http/options.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { TOKEN, setup } from './helpers.js'

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('http – authentication and configuration', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  it('refuses the API and metrics without valid credentials (401, JSON body, challenge); probes stay public', async () => {
    const hash = hashHttpPassword('s3cret')
    const s = await setup(teardown, { http: { auth: { tokens: [TOKEN], users: [{ username: 'ops', password: hash }, { username: 'plain', password: 'pw' }] } } })
    for (const path of ['/api/v1/clients', '/metrics']) {
      const none = await s.call(path, { headers: { authorization: '' } })
      expect(none.status, path).to.equal(401)
      expect(none.headers.get('www-authenticate')).to.match(/^Bearer/)
      expect(none.body).to.deep.equal({ error: { status: 401, code: 'unauthorized', message: 'credentials required (Authorization: Bearer or Basic)' } })
      for (const wrong of ['Bearer nope', `Bearer ${TOKEN}x`, basic('ops', 'wrong'), basic('nobody', 's3cret'), 'Digest abc', 'Basic !!!']) {
        expect((await s.call(path, { headers: { authorization: wrong } })).status, wrong).to.equal(401)
      }
      expect((await s.call(path)).status).to.equal(200)
      expect((await s.call(path, { headers: { authorization: basic('ops', 's3cret') } })).status).to.equal(200)
      expect((await s.call(path, { headers: { authorization: basic('plain', 'pw') } })).status).to.equal(200)
    }
    expect((await s.call('/healthz', { headers: { authorization: '' } })).status).to.equal(200)
    expect((await s.call('/readyz', { headers: { authorization: '' } })).status).to.equal(200)
    // The dashboard's static files carry no data; the page asks for credentials itself.
    const page = await s.call('/', { headers: { authorization: '' } })
    expect(page.status).to.equal(200)
    expect(page.text).to.contain('<title>MQTT broker</title>')
  })

  it('can protect the probes and open the metrics', async () => {
    const s = await setup(teardown, { http: { publicHealth: false, publicMetrics: true } })
    expect((await s.call('/healthz', { headers: { authorization: '' } })).status).to.equal(401)
    expect((await s.call('/metrics', { headers: { authorization: '' } })).status).to.equal(200)
  })

  it('without credentials serves loopback peers only, and refuses to listen beyond loopback', async () => {
    const s = await setup(teardown, { http: { auth: {} } })
    expect((await s.call('/api/v1/clients', { headers: { authorization: '' } })).status).to.equal(200)
    const auth = new HttpAuthenticator(undefined, false)
    const from = (remoteAddress: string): IncomingMessage => ({ socket: { remoteAddress }, headers: {} }) as unknown as IncomingMessage
    expect(await auth.check(from('127.0.0.1'))).to.equal('ok')
    expect(await auth.check(from('::1'))).to.equal('ok')
    expect(await auth.check(from('::ffff:127.0.0.1'))).to.equal('ok')
    expect(await auth.check(from('10.0.0.7'))).to.equal('remote')
    expect(await new HttpAuthenticator(undefined, true).check(from('10.0.0.7'))).to.equal('ok')
    const broker = makeBroker(teardown)
    let error: unknown
    try {
      await listenHttp(broker, { host: '0.0.0.0', port: 0 })
    } catch (e) {
      error = e
    }
    expect(String(error)).to.match(/refusing to serve the HTTP API on 0\.0\.0\.0 without credentials.*allow_anonymous/)
    // Deliberately opened, or with credentials, it listens.
    const open = teardown.add(await listenHttp(broker, { host: '0.0.0.0', port: 0, allowAnonymous: true, defaultMetrics: false }), (h) => h.close())
    expect(open.port).to.be.greaterThan(0)
  })

  it('serves HTTPS with the TLS options of the configuration (certificate made by openssl)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-tls-'))
    teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
    const config = { host: '127.0.0.1', port: 0, tls: { key: join(dir, 'key.pem'), cert: join(dir, 'cert.pem') }, auth: { tokens: [TOKEN] }, default_metrics: false }
    const ajv = new Ajv({ useDefaults: false })
    expect(ajv.validate(httpConfigSchema, config), JSON.stringify(ajv.errors)).to.equal(true)
    const broker = makeBroker(teardown)
    await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const https = teardown.add(await listenHttp(broker, httpOptionsFromConfig(config)), (h) => h.close())
    expect(https.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/)
    const ca = readFileSync(join(dir, 'cert.pem'))
    const status = (path: string, headers: Record<string, string> = {}): Promise<number | undefined> =>
      new Promise((resolve, reject) => {
        httpsGet(`${https.url}${path}`, { ca, headers }, (response) => {
          response.resume()
          resolve(response.statusCode)
        }).on('error', reject)
      })
    expect(await status('/readyz')).to.equal(200)
    expect(await status('/api/v1/clients')).to.equal(401)
    expect(await status('/api/v1/clients', { authorization: `Bearer ${TOKEN}` })).to.equal(200)
  })

  it('validates the http: configuration section with ajv (unknown keys and bad values refused)', () => {
    const ajv = new Ajv()
    const validate = ajv.compile(httpConfigSchema)
    expect(validate({ port: 8081, auth: { tokens: ['a-long-enough-token-here'] }, metrics_tenant_limit: 10 })).to.equal(true)
    expect(validate({ prot: 8081 })).to.equal(false)
    expect(validate({ port: 70000 })).to.equal(false)
    expect(validate({ auth: { tokens: ['short'] } })).to.equal(false)
    expect(validate({ auth: { users: [{ username: 'a:b', password: 'x' }] } })).to.equal(false)
    expect(validate({ tls: { key: 'k.pem' } })).to.equal(false)
    expect(validate({ base_path: 'admin' })).to.equal(false)
    const options = httpOptionsFromConfig({ port: 9000, allow_anonymous: true, metrics_tenant_limit: 5, base_path: '/admin', public_metrics: true })
    expect(options).to.deep.equal({ port: 9000, allowAnonymous: true, metricsTenantLimit: 5, basePath: '/admin', publicMetrics: true })
  })

  it('mounts under a base path on a shared server', async () => {
    const s = await setup(teardown, { http: { basePath: '/admin' } })
    expect((await s.call('/admin/healthz')).status).to.equal(200)
    expect((await s.call('/admin/api/v1/clients')).status).to.equal(200)
    expect((await s.call('/api/v1/clients')).status).to.equal(404)
  })
})
