import { expect } from 'chai'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'
import type { IDisconnectPacket, MqttClient } from 'mqtt'
import { issueServer, makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { listeningOn, portOf, startBroker, waitForOutput } from '../helpers/broker-process.js'
import { requireRedisServer, startRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'

/** Runs a mosquitto client; resolves with its output once `until` matches it (or it exits). */
function mosquitto(command: string, args: string[], children: ChildProcess[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return { child, output: () => output, exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) }
}

async function until(read: () => string, pattern: RegExp, timeout = 15000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!pattern.test(read())) {
    if (Date.now() > deadline) throw new Error(`no ${String(pattern)} in: ${read()}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

function connected(client: MqttClient): Promise<void> {
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
}

describe('bin/mqtt-broker – from a configuration file', function () {
  this.timeout(60000)
  const teardown = useTeardown()
  let certs: TestCerts
  let dir: string
  const children: ChildProcess[] = []

  before(async () => {
    certs = await makeCerts()
    dir = await mkdtemp(join(tmpdir(), 'mqtt-broker-process-'))
  })
  after(async () => {
    await certs.remove()
    await rm(dir, { recursive: true, force: true })
  })
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })

  async function configFile(name: string, text: string): Promise<string> {
    const file = join(dir, name)
    await writeFile(file, text)
    return file
  }

  it('serves mosquitto_pub / mosquitto_sub over a TLS listener from the file (--cafile)', async () => {
    const file = await configFile(
      'tls.yaml',
      [
        'listeners:',
        '  - { name: plain, kind: tcp, port: 0 }',
        '  - name: secure',
        '    kind: tls',
        '    port: 0',
        '    tls:',
        `      key: ${certs.server.keyFile}`,
        `      cert: ${certs.server.certFile}`,
        'log:',
        '  level: warn'
      ].join('\n')
    )
    const run = startBroker(['--config', file], { teardown })
    const [plain, secure] = await listeningOn(run, 2)
    expect(plain).to.match(/^tcp:\/\/127\.0\.0\.1:\d+$/)
    expect(secure).to.match(/^tls:\/\/127\.0\.0\.1:\d+$/)
    const port = String(portOf(secure!))
    // Line-buffered, so that the debug line telling the SUBACK arrived is seen at once.
    const sub = mosquitto('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', port, '--cafile', certs.ca.certFile, '-t', 'greetings/#', '-C', '1', '-v', '-d', '-i', 'sub-tls'], children)
    await until(sub.output, /SUBACK/)
    const pub = mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--cafile', certs.ca.certFile, '-t', 'greetings/tls', '-m', 'hello over tls', '-q', '1', '-i', 'pub-tls'], children)
    expect(await pub.exit).to.equal(0)
    expect(await sub.exit).to.equal(0)
    expect(sub.output()).to.include('greetings/tls hello over tls')
    // Without the CA the server's certificate is not trusted: the handshake fails.
    const untrusted = mosquitto('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '--capath', dir, '-t', 't', '-m', 'x'], children)
    expect(await untrusted.exit).to.not.equal(0)
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
  })

  it('an encrypted key opened with MQTT_BROKER_TLS_PASSPHRASE, and client certificates required (mosquitto --cert/--key)', async () => {
    const locked = await makeCerts({ passphrase: 'correct horse' })
    teardown.defer(() => locked.remove())
    const file = await configFile(
      'mtls.yaml',
      [
        'listeners:',
        '  - name: device-tls',
        '    kind: tls',
        '    port: 0',
        '    tls:',
        `      key: ${locked.server.keyFile}`,
        `      cert: ${locked.server.certFile}`,
        `      ca: ${locked.ca.certFile}`,
        '      client_certificates: required',
        '      username_from: cn'
      ].join('\n')
    )
    // Without the passphrase the key cannot be used: start-up stops naming the listener.
    const refused = startBroker(['--config', file], { teardown })
    expect(await refused.exit).to.equal(1)
    expect(refused.stderr).to.match(/listener "device-tls".*wrong or missing passphrase/)
    expect(refused.stdout).to.not.include('listening')
    const run = startBroker(['--config', file, '--log-level', 'warn'], { teardown, env: { MQTT_BROKER_TLS_PASSPHRASE_DEVICE_TLS: 'correct horse' } })
    const [url] = await listeningOn(run, 1)
    const port = String(portOf(url!))
    const common = ['-h', '127.0.0.1', '-p', port, '--cafile', locked.ca.certFile, '-t', 'mtls/test', '-m', 'x']
    const anonymous = mosquitto('mosquitto_pub', common, children)
    expect(await anonymous.exit).to.not.equal(0)
    const withCert = mosquitto('mosquitto_pub', [...common, '--cert', locked.client.certFile, '--key', locked.client.keyFile], children)
    expect(await withCert.exit, withCert.output()).to.equal(0)
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
  })

  it('SIGTERM with MQTT 5 clients on tcp, tls, ws and unix: DISCONNECT 0x8B to each, exit 0 within the drain time', async () => {
    const socket = join(dir, 'broker.sock')
    const file = await configFile(
      'stop.yaml',
      [
        'shutdown_timeout: 4',
        'listeners:',
        '  - { name: plain, kind: tcp, port: 0 }',
        `  - { name: secure, kind: tls, port: 0, tls: { key: ${certs.server.keyFile}, cert: ${certs.server.certFile} } }`,
        '  - { name: web, kind: ws, port: 0 }',
        `  - { name: local, kind: unix, path: ${socket} }`
      ].join('\n')
    )
    const run = startBroker(['--config', file, '--log-level', 'debug', '--log-format', 'json'], { teardown })
    const [tcp, tls, ws] = await listeningOn(run, 4)
    const options = { protocolVersion: 5 as const, reconnectPeriod: 0, connectTimeout: 5000 }
    const clients: MqttClient[] = [
      mqtt.connect({ ...options, host: '127.0.0.1', port: portOf(tcp!), protocol: 'mqtt', clientId: 'c-tcp' }),
      mqtt.connect({ ...options, host: '127.0.0.1', port: portOf(tls!), protocol: 'mqtts', ca: certs.ca.cert, clientId: 'c-tls' }),
      mqtt.connect(ws!, { ...options, clientId: 'c-ws' }),
      mqtt.connect({ ...options, protocol: 'mqtt', unixSocket: true, path: socket, clientId: 'c-unix' })
    ]
    for (const client of clients) teardown.defer(() => client.end(true))
    await Promise.all(clients.map(connected))
    const disconnects = clients.map(
      (client) => new Promise<number | undefined>((resolve) => client.once('disconnect', (packet: IDisconnectPacket) => resolve(packet.reasonCode)))
    )
    const started = Date.now()
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
    const took = Date.now() - started
    expect(took).to.be.below(4000 + 1000)
    expect(await Promise.all(disconnects)).to.deep.equal([0x8b, 0x8b, 0x8b, 0x8b])
    // Every log line about a client carries its id and listener (JSON lines).
    const lines = run.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
    const closing = lines.filter((line) => line.msg === 'connection closed')
    expect(closing.map((line) => `${String(line.clientId)}@${String(line.listener)}`).sort()).to.deep.equal(['c-tcp@plain', 'c-tls@secure', 'c-unix@local', 'c-ws@web'])
    expect(lines.find((line) => line.msg === 'stopping')).to.include({ level: 'info', signal: 'SIGTERM' })
  })

  it('SIGHUP re-reads the certificates: new connections get the new one, a connected client stays', async () => {
    const keyFile = join(dir, 'live.key')
    const certFile = join(dir, 'live.crt')
    await copyFile(certs.server.keyFile, keyFile)
    await copyFile(certs.server.certFile, certFile)
    const file = await configFile(
      'reload.yaml',
      ['listeners:', `  - { name: secure, kind: tls, port: 0, tls: { key: live.key, cert: live.crt, watch: false } }`].join('\n')
    )
    const run = startBroker(['--config', file, '--log-level', 'info', '--log-format', 'text'], { teardown })
    const [url] = await listeningOn(run, 1)
    const port = portOf(url!)
    const fingerprint = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca.cert }, () => {
          resolve(socket.getPeerX509Certificate()!.fingerprint256)
          socket.destroy()
        })
        socket.once('error', reject)
      })
    const before = await fingerprint()
    expect(before).to.equal(new (await import('node:crypto')).X509Certificate(certs.server.cert).fingerprint256)
    const client = mqtt.connect({ host: '127.0.0.1', port, protocol: 'mqtts', ca: certs.ca.cert, clientId: 'stays', reconnectPeriod: 0, protocolVersion: 5 })
    teardown.defer(() => client.end(true))
    await connected(client)
    const rotated = await issueServer(certs, 'rotated')
    await copyFile(rotated.keyFile, keyFile)
    await copyFile(rotated.certFile, certFile)
    run.child.kill('SIGHUP')
    await waitForOutput(run, /TLS certificates reloaded/, 15000, 'stderr')
    expect(await fingerprint()).to.not.equal(before)
    // The client connected before the reload is still served.
    await new Promise<void>((resolve, reject) => client.subscribe('still/here', { qos: 1 }, (error) => (error ? reject(error) : resolve())))
    expect(client.connected).to.equal(true)
    run.child.kill('SIGTERM')
    expect(await run.exit).to.equal(0)
  })

  describe('a stop that cannot finish (Redis frozen with SIGSTOP while a client is connected)', () => {
    /** A broker on a Redis that stops answering once a client is connected; resolves when frozen. */
    async function frozen(shutdownTimeout: number): Promise<ReturnType<typeof startBroker>> {
      requireRedisServer()
      const redis = await startRedisServer()
      teardown.defer(() => redis.dispose())
      const run = startBroker(
        ['--port', '0', '--redis', redis.url, '--shutdown-timeout', String(shutdownTimeout), '--log-format', 'text', '--sys-interval', '0'],
        { teardown }
      )
      const [url] = await listeningOn(run, 1)
      const client = mqtt.connect({ host: '127.0.0.1', port: portOf(url!), protocolVersion: 5, reconnectPeriod: 0, clientId: 'held', properties: { sessionExpiryInterval: 600 } })
      teardown.defer(() => client.end(true))
      await connected(client)
      const pid = redis.pid!
      process.kill(pid, 'SIGSTOP')
      // Thawed before the server is stopped (teardown runs newest first).
      teardown.defer(() => {
        try {
          process.kill(pid, 'SIGCONT')
        } catch {
          // already gone
        }
      })
      return run
    }

    it('the stop is bounded by shutdown_timeout: exit 0 soon after it', async () => {
      const run = await frozen(1.5)
      const started = Date.now()
      run.child.kill('SIGTERM')
      expect(await run.exit).to.equal(0)
      const took = Date.now() - started
      expect(took).to.be.at.least(1400)
      expect(took).to.be.below(1500 + 3000)
      expect(run.stderr).to.match(/drain time over/)
    })

    it('a second signal exits at once, with code 1', async () => {
      const run = await frozen(60)
      run.child.kill('SIGTERM')
      await waitForOutput(run, /INFO stopping signal=SIGTERM/, 15000, 'stderr')
      const started = Date.now()
      run.child.kill('SIGINT')
      expect(await run.exit).to.equal(1)
      expect(Date.now() - started).to.be.below(5000)
      expect(run.stderr).to.match(/second signal: exiting at once/)
    })
  })

  it('a port in use stops start-up naming the listener; the listeners already bound are closed', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    teardown.defer(() => new Promise((resolve) => blocker.close(resolve)))
    const taken = (blocker.address() as { port: number }).port
    const free = createServer()
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve))
    const freePort = (free.address() as { port: number }).port
    await new Promise((resolve) => free.close(resolve))
    const file = await configFile('inuse.yaml', `listeners:\n  - { name: first, kind: tcp, port: ${freePort} }\n  - { name: second, kind: ws, port: ${taken} }\n`)
    const run = startBroker(['--config', file], { teardown })
    expect(await run.exit).to.equal(1)
    expect(run.stderr).to.match(/listener "second".*address already in use/)
    expect(run.stdout).to.not.include('listening on')
  })
})
