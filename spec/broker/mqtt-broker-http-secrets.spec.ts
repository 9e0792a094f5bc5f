import { expect } from 'chai'
import { X509Certificate } from 'node:crypto'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { issueServer, makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { startBroker, waitForOutput } from '../helpers/broker-process.js'
import type { BrokerProcess } from '../helpers/broker-process.js'
import { useTeardown } from '../helpers/teardown.js'

/**
 * `mqtt-broker --config FILE` with an `http:` section: the HTTPS certificate of its own port is
 * re-read on SIGHUP and when its files change, like the MQTT listeners'; bearer tokens and a basic
 * user can come from the environment instead of the file.
 */
describe('bin/mqtt-broker – http: certificates and credentials', function () {
  this.timeout(120000)
  const teardown = useTeardown()
  let dir: string
  let certs: TestCerts
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mqtt-http-secrets-'))
    certs = await makeCerts()
  })
  after(async () => {
    await certs?.remove()
    await rm(dir, { recursive: true, force: true })
  })

  async function run(yaml: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<BrokerProcess> {
    const file = join(dir, `broker-${Math.random().toString(36).slice(2)}.yaml`)
    await writeFile(file, yaml)
    return startBroker(['--config', file, ...args], { teardown, env })
  }

  /** A TLS connection to the HTTPS port, trusting the spec's CA. */
  const open = (port: number): Promise<TLSSocket> =>
    new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca.cert, servername: 'localhost' }, () => resolve(socket))
      socket.once('error', reject)
    })

  /** The SHA-256 fingerprint of the certificate a new connection gets. */
  async function fingerprint(port: number): Promise<string> {
    const socket = await open(port)
    const value = socket.getPeerX509Certificate()!.fingerprint256
    socket.destroy()
    return value
  }

  /** GET `path` over an open TLS socket (HTTP/1.1 keep-alive); resolves with the status line. */
  const get = (socket: TLSSocket, path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      let text = ''
      const onData = (chunk: Buffer): void => {
        text += chunk.toString('latin1')
        if (text.includes('\r\n\r\n')) {
          socket.off('data', onData)
          resolve(text.split('\r\n')[0]!)
        }
      }
      socket.on('data', onData)
      socket.once('error', reject)
      socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
    })

  async function httpsBroker(watch: boolean): Promise<{ broker: BrokerProcess; port: number; keyFile: string; certFile: string }> {
    const keyFile = join(dir, `http-${watch}.key`)
    const certFile = join(dir, `http-${watch}.crt`)
    await copyFile(certs.server.keyFile, keyFile)
    await copyFile(certs.server.certFile, certFile)
    const broker = await run(
      `listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: 0\n  tls: { key: ${keyFile}, cert: ${certFile}, watch: ${watch} }\n`,
      ['--log-level', 'info', '--log-format', 'json']
    )
    const url = (await waitForOutput(broker, /mqtt-broker HTTP on (https:\/\/127\.0\.0\.1:(\d+))/, 60000))[2]!
    return { broker, port: Number(url), keyFile, certFile }
  }

  /** The log line of the HTTP listener's reload (JSON lines; keys in any order). */
  const RELOADED = /^(?=.*"listener":"http")(?=.*"msg":"TLS certificates reloaded").*$/m

  const original = (): string => new X509Certificate(certs.server.cert).fingerprint256

  it('HTTPS on its own port: SIGHUP re-reads the key and certificate; a connection open before is still served', async () => {
    const { broker, port, keyFile, certFile } = await httpsBroker(false)
    expect(await fingerprint(port)).to.equal(original())
    const kept = await open(port)
    teardown.defer(() => kept.destroy())
    expect(await get(kept, '/healthz')).to.match(/^HTTP\/1\.1 200/)
    const rotated = await issueServer(certs, 'http-rotated')
    await copyFile(rotated.keyFile, keyFile)
    await copyFile(rotated.certFile, certFile)
    broker.child.kill('SIGHUP')
    await waitForOutput(broker, RELOADED, 15000, 'stderr')
    expect(await fingerprint(port)).to.equal(new X509Certificate(rotated.cert).fingerprint256)
    expect(await get(kept, '/healthz')).to.match(/^HTTP\/1\.1 200/)
    // A certificate that cannot be used: the previous one stays, the error is logged, nothing stops.
    await writeFile(certFile, 'not a certificate\n')
    broker.child.kill('SIGHUP')
    await waitForOutput(broker, /HTTPS certificates not reloaded/, 15000, 'stderr')
    expect(await fingerprint(port)).to.equal(new X509Certificate(rotated.cert).fingerprint256)
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
  })

  it('HTTPS on its own port: files changed on disk are re-read without a signal (tls.watch, default on)', async () => {
    const { broker, port, keyFile, certFile } = await httpsBroker(true)
    expect(await fingerprint(port)).to.equal(original())
    const rotated = await issueServer(certs, 'http-watched')
    await copyFile(rotated.keyFile, keyFile)
    await copyFile(rotated.certFile, certFile)
    await waitForOutput(broker, RELOADED, 15000, 'stderr')
    expect(await fingerprint(port)).to.equal(new X509Certificate(rotated.cert).fingerprint256)
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
  })

  const FILE_TOKEN = 'file-token-0123456789abcdef'
  const ENV_TOKENS = ['env-token-a-0123456789abcdef', 'env-token-b-0123456789abcdef']
  const env = {
    MQTT_BROKER_HTTP_TOKEN: `${ENV_TOKENS[0]}, ${ENV_TOKENS[1]}`,
    MQTT_BROKER_HTTP_USERNAME: 'ops',
    MQTT_BROKER_HTTP_PASSWORD: 'env-password-1'
  }

  it('bearer tokens and a basic user from MQTT_BROKER_HTTP_TOKEN / _USERNAME / _PASSWORD, added to the file’s', async () => {
    const broker = await run(
      `listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: 0\n  auth:\n    tokens: ["${FILE_TOKEN}"]\n    users: [{ username: ops, password: file-password }]\n`,
      ['--log-level', 'warn'],
      env
    )
    const base = (await waitForOutput(broker, /mqtt-broker HTTP on (http:\/\/127\.0\.0\.1:\d+)/, 60000))[1]!
    const status = async (authorization?: string): Promise<number> =>
      (await fetch(`${base}/metrics`, authorization === undefined ? {} : { headers: { authorization } })).status
    const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
    expect(await status()).to.equal(401)
    expect(await status(`Bearer ${ENV_TOKENS[0]!}`)).to.equal(200)
    expect(await status(`Bearer ${ENV_TOKENS[1]!}`)).to.equal(200)
    expect(await status(`Bearer ${FILE_TOKEN}`)).to.equal(200)
    expect(await status(`Bearer wrong-token-0123456789abcdef`)).to.equal(401)
    expect(await status(basic('ops', 'env-password-1'))).to.equal(200)
    // The environment's password replaces the file's for that user.
    expect(await status(basic('ops', 'file-password'))).to.equal(401)
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
  })

  it('--print-config masks them; a user name without a password is a usage error (exit 2); no http: section, no HTTP', async () => {
    const yaml = `listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: 0\n`
    const printed = await run(yaml, ['--print-config'], env)
    expect(await printed.exit).to.equal(0)
    expect(printed.stdout).to.include('username: ops')
    for (const secret of [...ENV_TOKENS, 'env-password-1']) expect(printed.stdout).to.not.include(secret)
    const lone = await run(yaml, ['--print-config'], { MQTT_BROKER_HTTP_USERNAME: 'ops' })
    expect(await lone.exit).to.equal(2)
    expect(lone.stderr).to.include('MQTT_BROKER_HTTP_USERNAME and MQTT_BROKER_HTTP_PASSWORD go together')
    const short = await run(yaml, ['--print-config'], { MQTT_BROKER_HTTP_TOKEN: 'short' })
    expect(await short.exit).to.equal(2)
    expect(short.stderr).to.include('MQTT_BROKER_HTTP_TOKEN')
    const none = await run(`listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\n`, ['--print-config'], env)
    expect(await none.exit).to.equal(0)
    expect(none.stdout).to.not.match(/^http:/m)
  })

  it('an encrypted HTTPS key opened with MQTT_BROKER_HTTP_TLS_PASSPHRASE, masked by --print-config', async () => {
    const locked = await makeCerts({ passphrase: 'http horse' })
    teardown.defer(() => locked.remove())
    const yaml = `listeners:\n  - { name: mqtt, kind: tcp, port: 0 }\nhttp:\n  port: 0\n  tls: { key: ${locked.server.keyFile}, cert: ${locked.server.certFile} }\n`
    // Without it the key cannot be used: nothing starts, and the message says which variable to set.
    const refused = await run(yaml)
    expect(await refused.exit).to.equal(1)
    expect(refused.stderr).to.match(/cannot start.*MQTT_BROKER_HTTP_TLS_PASSPHRASE/)
    expect(refused.stdout).to.not.include('listening')
    const broker = await run(yaml, ['--log-level', 'warn'], { MQTT_BROKER_HTTP_TLS_PASSPHRASE: 'http horse' })
    const port = Number((await waitForOutput(broker, /mqtt-broker HTTP on https:\/\/127\.0\.0\.1:(\d+)/, 60000))[1])
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, ca: locked.ca.cert, servername: 'localhost' }, () => resolve(s))
      s.once('error', reject)
    })
    teardown.defer(() => socket.destroy())
    expect(socket.getPeerX509Certificate()!.fingerprint256).to.equal(new X509Certificate(locked.server.cert).fingerprint256)
    expect(await get(socket, '/healthz')).to.match(/^HTTP\/1\.1 200/)
    broker.child.kill('SIGTERM')
    expect(await broker.exit).to.equal(0)
    const printed = await run(yaml, ['--print-config'], { MQTT_BROKER_HTTP_TLS_PASSPHRASE: 'http horse' })
    expect(await printed.exit).to.equal(0)
    expect(printed.stdout).to.not.include('http horse')
    expect(printed.stdout).to.match(/passphrase: ["']?\*{8}/)
  })
})
