import { expect } from 'chai'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { randomBytes } from 'node:crypto'
import { KeyvBackend } from '../../lib/backend/keyv/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { ClientHandle } from '../../lib/backend/backend.js'
import type { Broker } from '../../lib/broker/broker.js'
import type { BoundListener, ListenerConfig } from '../../lib/transport/listeners.js'
import { makeBroker } from '../helpers/broker.js'
import { makeCerts } from '../helpers/certs.js'
import type { TestCerts } from '../helpers/certs.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { connectTo, connectWithAck, within } from './mqttjs.js'

type Kind = BoundListener['kind']

let socketCount = 0
function socketPath(): string {
  return join(tmpdir(), `mqtt-close-${process.pid}-${++socketCount}.sock`)
}

/** The listener of `kind` on a free port; tcp and ws through the short `listen()` form. */
async function listenOn(broker: Broker, kind: Kind, certs: TestCerts): Promise<BoundListener> {
  if (kind === 'tcp' || kind === 'ws') {
    const address = await broker.listen({ transport: kind, host: '127.0.0.1', port: 0 })
    return { name: `${kind}:${address.port}`, kind, host: address.host, port: address.port, path: address.path ?? '/mqtt' }
  }
  const [bound] = (await broker.listenAll([configOf(kind, certs)])).addresses
  return bound!
}

function configOf(kind: Kind, certs: TestCerts): ListenerConfig {
  const tls = { key: certs.server.keyFile, cert: certs.server.certFile }
  switch (kind) {
    case 'tcp':
    case 'ws':
      return { kind, port: 0 }
    case 'tls':
    case 'wss':
      return { kind, port: 0, tls }
    case 'unix':
      return { kind, socketPath: socketPath() }
  }
}

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()))
}

describe('broker – graceful close', function () {
  this.timeout(20_000)
  const teardown = useTeardown()
  let certs: TestCerts
  before(async () => {
    certs = await makeCerts()
  })
  after(() => certs.remove())

  const kinds: Kind[] = ['tcp', 'tls', 'ws', 'wss', 'unix']
  for (const kind of kinds) {
    it(`close() ends ${kind} connections: it resolves, MQTT 5 clients get DISCONNECT 0x8B`, async () => {
      const broker = makeBroker(teardown, { drainTimeout: 4000 })
      const listener = await listenOn(broker, kind, certs)
      const ca = certs.ca.cert
      const v5 = await connectTo(teardown, listener, { protocolVersion: 5, ca, clientId: `${kind}-v5` })
      const v4 = await connectTo(teardown, listener, { protocolVersion: 4, ca, clientId: `${kind}-v4` })
      const reason = new Promise<number | undefined>((resolve) => v5.once('disconnect', (packet) => resolve(packet.reasonCode)))
      const ends = Promise.all([closed(v5), closed(v4)])
      await within(8000, 'broker.close()', broker.close())
      expect(await within(2000, 'DISCONNECT', reason)).to.equal(0x8b)
      await within(2000, 'client sockets closed', ends)
      expect(broker.connectedClients).to.have.length(0)
    })
  }

  it('close() ends connections on every kind of listener at once', async () => {
    const backend = new MemoryBackend()
    const broker = makeBroker(teardown, { backend, drainTimeout: 4000 })
    const started = await broker.listenAll(kinds.map((kind) => configOf(kind, certs)))
    const clients = await Promise.all(
      started.addresses.map((listener) =>
        connectTo(teardown, listener, { protocolVersion: 5, ca: certs.ca.cert, clientId: `all-${listener.kind}` })
      )
    )
    const reasons = clients.map((c) => new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode))))
    await within(8000, 'broker.close()', broker.close())
    expect(await within(2000, 'DISCONNECT', Promise.all(reasons))).to.deep.equal(kinds.map(() => 0x8b))
  })

  it('close() gives up waiting after drainTimeout: a backend that never finishes terminate()', async () => {
    class StuckBackend extends MemoryBackend {
      override terminate(_client: ClientHandle): Promise<void> {
        return new Promise(() => undefined)
      }
    }
    const broker = makeBroker(teardown, { backend: new StuckBackend(), drainTimeout: 500 })
    const listener = await listenOn(broker, 'tcp', certs)
    const client = await connectTo(teardown, listener, { protocolVersion: 5 })
    const ends = closed(client)
    const began = Date.now()
    await within(5000, 'broker.close()', broker.close())
    expect(Date.now() - began).to.be.at.least(450)
    await within(2000, 'client socket closed', ends)
  })

  it('close() while a client is in the TLS handshake: the half-open connection is dropped', async () => {
    const broker = makeBroker(teardown, { drainTimeout: 4000 })
    const listener = await listenOn(broker, 'tls', certs)
    const { connect } = await import('node:net')
    const raw = connect({ host: '127.0.0.1', port: listener.port })
    teardown.defer(() => raw.destroy())
    await new Promise((resolve) => raw.once('connect', resolve))
    const rawClosed = new Promise((resolve) => raw.once('close', resolve))
    await within(8000, 'broker.close()', broker.close())
    await within(2000, 'raw socket closed', rawClosed)
  })

  describe('with the Redis backend', () => {
    let redis: RedisServer | undefined
    before(async () => {
      redis = await startRedisServer()
    })
    after(() => redis?.dispose())

    it('what close() let the backend store is there for the next broker: the session and the will', async () => {
      const prefix = `close${randomBytes(4).toString('hex')}`
      const backendOf = () => new KeyvBackend({ url: redis!.url, prefix, awaitQos0: true, log: () => undefined })
      const first = makeBroker(teardown, { backend: backendOf(), drainTimeout: 4000 })
      const [tls] = (await first.listenAll([configOf('tls', certs)])).addresses
      const keeper = await connectTo(teardown, tls!, {
        ca: certs.ca.cert,
        protocolVersion: 5,
        clientId: 'keeper',
        clean: false,
        properties: { sessionExpiryInterval: 600 },
        will: { topic: 'wills/keeper', payload: Buffer.from('gone'), qos: 1, retain: true }
      })
      await keeper.subscribeAsync('news/#', { qos: 1 })
      await within(8000, 'broker.close()', first.close())

      const second = makeBroker(teardown, { backend: backendOf() })
      const [tcp] = (await second.listenAll([{ kind: 'tcp', port: 0 }])).addresses
      const watcher = await connectTo(teardown, tcp!, { protocolVersion: 5, clientId: 'watcher' })
      const will = new Promise<string>((resolve) => watcher.once('message', (topic, payload) => resolve(`${topic}=${payload.toString()}`)))
      await watcher.subscribeAsync('wills/#', { qos: 1 })
      expect(await within(3000, 'the retained will', will)).to.equal('wills/keeper=gone')

      const { client: back, connack } = await connectWithAck(teardown, tcp!, {
        protocolVersion: 5,
        clientId: 'keeper',
        clean: false,
        properties: { sessionExpiryInterval: 600 }
      })
      expect(connack.sessionPresent).to.equal(true)
      const news = new Promise<string>((resolve) => back.once('message', (topic) => resolve(topic)))
      await watcher.publishAsync('news/today', 'x', { qos: 1 })
      expect(await within(3000, 'a message through the kept subscription', news)).to.equal('news/today')
    })
  })
})
