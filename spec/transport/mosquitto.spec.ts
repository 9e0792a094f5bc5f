import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { Credentials } from '../../lib/backend/backend.js'
import type { BoundListener } from '../../lib/transport/listeners.js'
import { makeBroker } from '../helpers/broker.js'
import { makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'
import { connectTo, within } from './mqttjs.js'

/** Run a mosquitto client to completion (killed by its pid after the test if still running). */
function mosquitto(teardown: Teardown, command: 'mosquitto_pub' | 'mosquitto_sub', args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  teardown.defer(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => resolve({ code, stdout, stderr }))
  })
}

describe('transport – mosquitto clients on tls and unix listeners', function () {
  this.timeout(30_000)
  const teardown = useTeardown()
  let certs: TestCerts
  before(async () => {
    certs = await makeCerts({ clientName: 'sensor-7' })
  })
  after(() => certs.remove())

  async function start(): Promise<{ seen: Credentials[]; tls: BoundListener; unix: BoundListener; tcp: BoundListener }> {
    const seen: Credentials[] = []
    const backend = new MemoryBackend({
      authenticate: (_client, credentials) => {
        seen.push(credentials)
        return { result: 'allow' }
      }
    })
    const broker = makeBroker(teardown, { backend })
    const { addresses } = await broker.listenAll([
      { kind: 'tls', port: 0, name: 'mtls', tls: { key: certs.server.keyFile, cert: certs.server.certFile, ca: certs.ca.certFile, clientCertificates: 'required', usernameFrom: 'cn' } },
      { kind: 'unix', socketPath: join(tmpdir(), `mqtt-mosquitto-${process.pid}.sock`), name: 'local' },
      { kind: 'tcp', port: 0 }
    ])
    return { seen, tls: addresses[0]!, unix: addresses[1]!, tcp: addresses[2]! }
  }

  it('mosquitto_sub with --cafile and a client certificate receives over mTLS; its user name comes from the certificate', async () => {
    const { seen, tls, tcp } = await start()
    const publisher = await connectTo(teardown, tcp)
    await publisher.publishAsync('plant/temp', '21.5', { qos: 1, retain: true })
    const result = await within(
      20_000,
      'mosquitto_sub',
      mosquitto(teardown, 'mosquitto_sub', [
        '-h', '127.0.0.1', '-p', String(tls.port), '-V', 'mqttv5', '-i', 'mosq-sub',
        '--cafile', certs.ca.certFile, '--cert', certs.client.certFile, '--key', certs.client.keyFile,
        '-t', 'plant/#', '-C', '1', '-W', '15'
      ])
    )
    expect(result.stderr).to.equal('')
    expect(result.code).to.equal(0)
    expect(result.stdout.trim()).to.equal('21.5')
    const sub = seen.find((c) => c.clientId === 'mosq-sub')
    expect(sub?.username).to.equal('sensor-7')
    expect(sub?.connection).to.deep.include({ transport: 'tls', listener: 'mtls' })
    expect(sub?.connection?.peerCertificate).to.deep.include({ commonName: 'sensor-7', authorized: true })
  })

  it('mosquitto_pub without a client certificate is refused by a listener that requires one', async () => {
    const { seen, tls } = await start()
    const result = await within(
      20_000,
      'mosquitto_pub',
      mosquitto(teardown, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(tls.port), '--cafile', certs.ca.certFile, '-t', 'x', '-m', 'y'])
    )
    expect(result.code).to.not.equal(0)
    expect(seen).to.have.length(0)
  })

  it('mosquitto_pub --unix publishes through the unix socket listener', async () => {
    const { seen, unix, tcp } = await start()
    const subscriber = await connectTo(teardown, tcp)
    await subscriber.subscribeAsync('local/#', { qos: 1 })
    const got = new Promise<string>((resolve) => subscriber.once('message', (topic, payload) => resolve(`${topic}=${payload.toString()}`)))
    const result = await within(20_000, 'mosquitto_pub', mosquitto(teardown, 'mosquitto_pub', ['--unix', unix.socketPath!, '-i', 'mosq-pub', '-q', '1', '-t', 'local/door', '-m', 'open']))
    expect(result.code).to.equal(0)
    expect(await within(3000, 'message', got)).to.equal('local/door=open')
    expect(seen.find((c) => c.clientId === 'mosq-pub')?.connection).to.deep.equal({ transport: 'unix', remoteAddress: undefined, listener: 'local' })
  })
})
