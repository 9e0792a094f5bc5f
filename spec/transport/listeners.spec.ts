import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { stat, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { connect, createServer } from 'node:net'
import type { Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { Credentials } from '../../lib/backend/backend.js'
import type { Broker } from '../../lib/broker/broker.js'
import { ListenerConfigError } from '../../lib/transport/listeners.js'
import type { ListenerConfig } from '../../lib/transport/listeners.js'
import { startListeners } from '../../lib/transport/listeners.js'
import type { Connection } from '../../lib/transport/connection.js'
import type { Duplex } from 'node:stream'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'
import { connectTo, within } from './mqttjs.js'

let count = 0
function socketPath(): string {
  return join(tmpdir(), `mqtt-listeners-${process.pid}-${++count}.sock`)
}

/** A port that was free a moment ago (for listeners that must share one fixed port). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function occupy(teardown: Teardown, where: number | string): Promise<Server> {
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => (typeof where === 'number' ? server.listen(where, '127.0.0.1', resolve) : server.listen(where, resolve)))
  teardown.defer(() => new Promise((resolve) => server.close(resolve)))
  return server
}

function recording(teardown: Teardown, options: { maximumPacketSize?: number } = {}): { broker: Broker; seen: Credentials[] } {
  const seen: Credentials[] = []
  const backend = new MemoryBackend({
    authenticate: (_client, credentials) => {
      seen.push(credentials)
      return { result: 'allow' }
    }
  })
  return { broker: makeBroker(teardown, { backend, ...options }), seen }
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path }, (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }))
    }).once('error', reject)
  })
}

describe('transport – listeners', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  it('all or none: when one listener cannot bind, those already bound are closed and the error names it', async () => {
    const taken = await occupy(teardown, 0)
    const address = taken.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    const path = socketPath()
    const { broker } = recording(teardown)
    const error = await broker
      .listenAll([
        { kind: 'unix', socketPath: path, name: 'local' },
        { kind: 'ws', port: 0, name: 'web' },
        { kind: 'tcp', port, name: 'second' }
      ])
      .then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e
      )
    expect(error?.code).to.equal('EADDRINUSE')
    expect(error?.message).to.equal(`listener "second": cannot listen on 127.0.0.1:${port}: EADDRINUSE`)
    expect(existsSync(path)).to.equal(false)
  })

  const BAD: [string, ListenerConfig[], RegExp][] = [
    ['an unknown kind', [{ kind: 'udp' as 'tcp' }], /listeners\[0\]: unknown kind "udp"/],
    ['a port out of range', [{ kind: 'tcp', port: 70000 }], /port 70000 is not in 0..65535/],
    ['tls without certificates', [{ kind: 'tls', name: 'edge' }], /listeners\[0\] "edge": a tls listener needs tls/],
    ['tls settings on a tcp listener', [{ kind: 'tcp', tls: { key: 'k', cert: 'c' } }], /tls is only for tls and wss/],
    ['client certificates without a CA', [{ kind: 'tls', tls: { key: 'k', cert: 'c', clientCertificates: 'required' } }], /needs tls.ca/],
    ['usernameFrom without client certificates', [{ kind: 'tls', tls: { key: 'k', cert: 'c', usernameFrom: 'cn' } }], /usernameFrom needs clientCertificates/],
    ['PROXY protocol on ws', [{ kind: 'ws', proxyProtocol: true, trustedProxies: ['127.0.0.1'] }], /proxyProtocol is only for tcp and tls/],
    ['PROXY protocol trusting nobody', [{ kind: 'tcp', proxyProtocol: true }], /proxyProtocol needs trustedProxies/],
    ['a bad trusted proxy', [{ kind: 'tcp', proxyProtocol: true, trustedProxies: ['10.0.0.0/33'] }], /"10.0.0.0\/33" has an invalid prefix length/],
    ['a trusted proxy that is a name', [{ kind: 'ws', trustedProxies: ['proxy.local'] }], /"proxy.local" is not an IP address/],
    ['a unix listener without a path', [{ kind: 'unix' }], /a unix listener needs socketPath/],
    ['a socket mode out of range', [{ kind: 'unix', socketPath: '/tmp/x.sock', socketMode: 0o1777 }], /socketMode/],
    ['a ws path without /', [{ kind: 'ws', path: 'mqtt' }], /must start with "\/"/],
    ['two listeners with one name', [{ kind: 'tcp', port: 0, name: 'a' }, { kind: 'ws', port: 0, name: 'a' }], /listeners\[1\] "a": another listener is already named "a"/],
    ['ws and wss on one port', [{ kind: 'ws', port: 9001 }, { kind: 'wss', port: 9001, tls: { key: 'k', cert: 'c' } }], /one port cannot serve both ws and wss/],
    ['one path twice on one port', [{ kind: 'ws', port: 9001 }, { kind: 'ws', port: 9001, name: 'again' }], /listener "again": path \/mqtt on 127.0.0.1:9001 is already served/]
  ]
  for (const [what, configs, message] of BAD) {
    it(`refuses ${what} before binding anything`, async () => {
      const { broker } = recording(teardown)
      const error = await broker.listenAll(configs).then(
        () => undefined,
        (e: Error) => e
      )
      expect(error).to.be.instanceOf(ListenerConfigError)
      expect(error?.message).to.match(message)
    })
  }

  describe('unix', () => {
    it('accepts MQTT.js; authenticate sees transport unix and the listener name', async () => {
      const path = socketPath()
      const { broker, seen } = recording(teardown)
      const { addresses } = await broker.listenAll([{ kind: 'unix', socketPath: path, socketMode: 0o600 }])
      expect(addresses[0]).to.deep.equal({ name: `unix:${path}`, kind: 'unix', host: path, port: 0, socketPath: path })
      expect((await stat(path)).mode & 0o777).to.equal(0o600)
      await connectTo(teardown, addresses[0]!, { protocolVersion: 5 })
      expect(seen[0]!.connection).to.deep.equal({ transport: 'unix', remoteAddress: undefined, listener: `unix:${path}` })
      await broker.close()
      expect(existsSync(path)).to.equal(false)
    })

    it('removes the socket file a killed process left behind', async () => {
      const path = socketPath()
      const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
      teardown.defer(() => child.kill('SIGKILL'))
      await within(10_000, 'child listening', new Promise((resolve) => child.stdout.once('data', resolve)))
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
      expect(existsSync(path)).to.equal(true)
      const { broker } = recording(teardown)
      const { addresses } = await broker.listenAll([{ kind: 'unix', socketPath: path }])
      await connectTo(teardown, addresses[0]!)
    })

    it('refuses a socket another process still listens on, and leaves it alone', async () => {
      const path = socketPath()
      await occupy(teardown, path)
      const { broker } = recording(teardown)
      const error = await broker.listenAll([{ kind: 'unix', socketPath: path, name: 'local' }]).then(
        () => undefined,
        (e: NodeJS.ErrnoException) => e
      )
      expect(error?.code).to.equal('EADDRINUSE')
      expect(error?.message).to.equal(`listener "local": ${path} is in use by another process`)
      expect(existsSync(path)).to.equal(true)
    })

    it('refuses a path that is not a socket, and leaves the file alone', async () => {
      const path = socketPath()
      await writeFile(path, 'keep me')
      teardown.defer(() => import('node:fs/promises').then((fs) => fs.rm(path, { force: true })))
      const { broker } = recording(teardown)
      const error = await broker.listenAll([{ kind: 'unix', socketPath: path }]).then(
        () => undefined,
        (e: Error) => e
      )
      expect(error?.message).to.match(/exists and is not a socket/)
      expect(existsSync(path)).to.equal(true)
    })
  })

  describe('WebSocket listeners sharing one HTTP server', () => {
    it('serve one path each on one port, and other HTTP endpoints can mount beside them', async () => {
      const port = await freePort()
      const { broker, seen } = recording(teardown)
      const started = await broker.listenAll([
        { kind: 'ws', port, path: '/mqtt', name: 'devices' },
        { kind: 'ws', port, path: '/browsers', name: 'browsers' }
      ])
      expect(started.http).to.have.length(1)
      expect(started.http[0]!.listeners).to.deep.equal(['devices', 'browsers'])
      started.http[0]!.mount('/health', (_request, response) => response.end('ok'))
      expect(() => started.http[0]!.mount('/mqtt', () => undefined)).to.throw(/already served/)
      await connectTo(teardown, started.addresses[0]!, { clientId: 'd' })
      await connectTo(teardown, started.addresses[1]!, { clientId: 'b' })
      expect(seen.map((c) => [c.clientId, c.connection?.listener, c.connection?.transport])).to.deep.equal([
        ['d', 'devices', 'ws'],
        ['b', 'browsers', 'ws']
      ])
      expect(await httpGet(port, '/health')).to.deep.equal({ status: 200, body: 'ok' })
      expect((await httpGet(port, '/nothing')).status).to.equal(404)
      expect((await httpGet(port, '/mqtt')).status).to.equal(426)
      const refused = await connectTo(teardown, { ...started.addresses[0]!, path: '/elsewhere' }).then(
        () => undefined,
        (e: Error) => e
      )
      expect(refused).to.be.instanceOf(Error)
    })

    it("bounds WebSocket frames by the broker's maximumPacketSize (close code 1009)", async () => {
      const { broker } = recording(teardown, { maximumPacketSize: 1024 })
      const { addresses } = await broker.listenAll([{ kind: 'ws', port: 0 }])
      const socket = new WebSocket(`ws://127.0.0.1:${addresses[0]!.port}/mqtt`, 'mqtt')
      teardown.defer(() => socket.terminate())
      socket.on('error', () => undefined)
      await new Promise((resolve) => socket.once('open', resolve))
      const code = new Promise<number>((resolve) => socket.once('close', (c) => resolve(c)))
      socket.send(Buffer.alloc(2048, 1))
      expect(await within(3000, 'close', code)).to.equal(1009)
    })
  })
})

describe('transport – listeners: per-socket listeners', function () {
  this.timeout(10_000)
  const teardown = useTeardown()

  async function handedSocket(target: (connection: Connection) => void): Promise<Duplex> {
    let handed: (stream: Duplex) => void = () => undefined
    const got = new Promise<Duplex>((resolve) => (handed = resolve))
    const listeners = await startListeners([{ kind: 'tcp', port: 0 }], {
      options: { maximumPacketSize: 1024 },
      handle: (connection) => {
        target(connection)
        handed(connection.stream)
      }
    })
    teardown.defer(() => listeners.close())
    teardown.defer(() => listeners.destroy())
    const peer = connect(listeners.addresses[0]!.port, '127.0.0.1')
    peer.on('error', () => undefined)
    teardown.defer(() => peer.destroy())
    return within(3000, 'handed socket', got)
  }

  it('a handed TCP socket keeps only the engine\'s error listener (no array of two per connection)', async () => {
    const errors: Error[] = []
    const onError = (error: Error): void => void errors.push(error)
    const stream = await handedSocket((connection) => connection.stream.on('error', onError))
    await new Promise((resolve) => setImmediate(resolve))
    expect(stream.listeners('error')).to.deep.equal([onError])
    stream.destroy(new Error('boom'))
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors.map((e) => e.message)).to.deep.equal(['boom'])
  })

  it('a target that adds no error listener keeps the placeholder: a socket error does not crash', async () => {
    const stream = await handedSocket(() => undefined)
    expect(stream.listenerCount('error')).to.equal(1)
    stream.destroy(new Error('ignored'))
    await new Promise((resolve) => stream.once('close', resolve))
  })
})
