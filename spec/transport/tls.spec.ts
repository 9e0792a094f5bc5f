import { expect } from 'chai'
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { IClientOptions, MqttClient } from 'mqtt'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { Credentials } from '../../lib/backend/backend.js'
import type { BrokerEvent } from '../../lib/broker/events.js'
import { silentLogger } from '../../lib/broker/logger.js'
import type { Logger } from '../../lib/broker/logger.js'
import type { Broker } from '../../lib/broker/broker.js'
import type { BoundListener, ListenerConfig, TlsListenerConfig } from '../../lib/transport/listeners.js'
import { makeBroker } from '../helpers/broker.js'
import { issueServer, makeCerts } from '../helpers/certs.js'
import type { CertPair, TestCerts } from '../helpers/certs.js'
import { useTeardown } from '../helpers/teardown.js'
import { connectTo, within } from './mqttjs.js'

/** The fingerprint of the certificate a listener serves to a new connection now. */
function served(listener: BoundListener, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

function refusal(promise: Promise<unknown>): Promise<Error | undefined> {
  return promise.then(
    () => undefined,
    (e: Error) => e
  )
}

/** A publish from `from` reaches `to` (the connection works end to end). */
async function roundTrip(from: MqttClient, to: MqttClient, topic: string): Promise<void> {
  await to.subscribeAsync(topic, { qos: 1 })
  const got = new Promise<string>((resolve) => to.once('message', (_t, payload) => resolve(payload.toString())))
  await from.publishAsync(topic, 'ping', { qos: 1 })
  expect(await within(3000, 'message', got)).to.equal('ping')
}

describe('transport – TLS and WSS listeners', function () {
  this.timeout(30_000)
  const teardown = useTeardown()
  let certs: TestCerts
  /** Another CA and its client certificate: presented, never verified here. */
  let foreign: TestCerts
  let rotated: CertPair
  before(async () => {
    ;[certs, foreign] = await Promise.all([makeCerts(), makeCerts({ clientName: 'stranger' })])
    rotated = await issueServer(certs, 'rotated')
  })
  after(async () => {
    await certs.remove()
    await foreign.remove()
  })

  async function start(
    kind: 'tls' | 'wss',
    tls: Partial<TlsListenerConfig>,
    extra: { logger?: Logger } = {}
  ): Promise<{ broker: Broker; seen: Credentials[]; events: BrokerEvent[]; listener: BoundListener }> {
    const seen: Credentials[] = []
    const backend = new MemoryBackend({
      authenticate: (_client, credentials) => {
        seen.push(credentials)
        return { result: 'allow' }
      }
    })
    const broker = makeBroker(teardown, { backend, ...extra })
    const events: BrokerEvent[] = []
    const subscription = broker.events$.subscribe((event) => events.push(event))
    teardown.defer(() => subscription.unsubscribe())
    const config: ListenerConfig = { kind, port: 0, name: `secure-${kind}`, tls: { key: certs.server.keyFile, cert: certs.server.certFile, ...tls } }
    const { addresses } = await broker.listenAll([config])
    return { broker, seen, events, listener: addresses[0]! }
  }

  for (const kind of ['tls', 'wss'] as const) {
    it(`${kind}: server certificate only; authenticate sees the transport and no client certificate`, async () => {
      const { seen, listener } = await start(kind, {})
      await connectTo(teardown, listener, { ca: certs.ca.cert, protocolVersion: 5 })
      expect(seen[0]!.connection).to.deep.include({ transport: kind, listener: `secure-${kind}` })
      expect(seen[0]!.connection?.peerCertificate).to.equal(undefined)
    })

    it(`${kind}: a client that does not trust the server's CA refuses it`, async () => {
      const { seen, listener } = await start(kind, {})
      const error = await refusal(connectTo(teardown, listener, { ca: foreign.ca.cert }))
      expect(error).to.be.instanceOf(Error)
      expect(seen).to.have.length(0)
    })

    it(`${kind}: client certificates required: refused without one, accepted with one (visible to authenticate)`, async () => {
      const { seen, events, listener } = await start(kind, { ca: certs.ca.certFile, clientCertificates: 'required' })
      expect(await refusal(connectTo(teardown, listener, { ca: certs.ca.cert }))).to.be.instanceOf(Error)
      expect(await refusal(connectTo(teardown, listener, { ca: certs.ca.cert, key: foreign.client.key, cert: foreign.client.cert }))).to.be.instanceOf(Error)
      expect(seen).to.have.length(0)
      await connectTo(teardown, listener, { ca: certs.ca.cert, key: certs.client.key, cert: certs.client.cert, protocolVersion: 5 })
      const peer = seen[0]!.connection?.peerCertificate
      expect(peer).to.deep.include({ commonName: 'client-1', authorized: true })
      expect(peer?.subject).to.equal('CN=client-1,O=Test')
      expect(peer?.issuer).to.equal('CN=Test CA,O=Test')
      expect(peer?.subjectAltNames).to.deep.equal(['DNS:client-1'])
      expect(peer?.fingerprint256).to.match(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
      const connected = events.find((e) => e.type === 'client.connected')
      expect(connected).to.deep.include({ listener: `secure-${kind}`, certificateSubject: 'CN=client-1,O=Test' })
      expect(connected?.client.peerCertificate?.commonName).to.equal('client-1')
    })

    it(`${kind}: client certificates optional: none, a verified one and an unverified one are all accepted and told apart`, async () => {
      const { seen, listener } = await start(kind, { ca: certs.ca.certFile, clientCertificates: 'optional' })
      await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'none' })
      await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'verified', key: certs.client.key, cert: certs.client.cert })
      await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'unverified', key: foreign.client.key, cert: foreign.client.cert })
      const byId = new Map(seen.map((c) => [c.clientId, c.connection?.peerCertificate]))
      expect(byId.get('none')).to.equal(undefined)
      expect(byId.get('verified')).to.deep.include({ commonName: 'client-1', authorized: true })
      expect(byId.get('unverified')).to.deep.include({ commonName: 'stranger', authorized: false })
    })

    it(`${kind}: usernameFrom cn: a verified certificate names the user, an unverified one does not`, async () => {
      const { seen, listener } = await start(kind, { ca: certs.ca.certFile, clientCertificates: 'optional', usernameFrom: 'cn' })
      await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'a', username: 'claimed', key: certs.client.key, cert: certs.client.cert })
      await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'b', username: 'claimed', key: foreign.client.key, cert: foreign.client.cert })
      expect(seen.map((c) => [c.clientId, c.username])).to.deep.equal([
        ['a', 'client-1'],
        ['b', 'claimed']
      ])
    })
  }

  it('tls: usernameFrom dns takes the first DNS Subject Alternative Name', async () => {
    const { seen, listener } = await start('tls', { ca: certs.ca.certFile, clientCertificates: 'required', usernameFrom: 'dns' })
    await connectTo(teardown, listener, { ca: certs.ca.cert, key: certs.client.key, cert: certs.client.cert })
    expect(seen[0]!.username).to.equal('client-1')
  })

  it('tls: minVersion TLSv1.3 refuses a TLS 1.2 client (which the default TLSv1.2 accepts)', async () => {
    const tls12 = { ca: certs.ca.cert, maxVersion: 'TLSv1.2' } as IClientOptions
    const lenient = await start('tls', {})
    await connectTo(teardown, lenient.listener, tls12)
    const { seen, listener } = await start('tls', { minVersion: 'TLSv1.3' })
    expect(await refusal(connectTo(teardown, listener, tls12))).to.be.instanceOf(Error)
    await connectTo(teardown, listener, { ca: certs.ca.cert })
    expect(seen).to.have.length(1)
  })

  it('tls: ciphers restricts the TLS 1.2 cipher suites', async () => {
    const { listener } = await start('tls', { ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })
    const handshake = (ciphers: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: '127.0.0.1', port: listener.port, ca: certs.ca.cert, maxVersion: 'TLSv1.2', ciphers }, () => {
          resolve(socket.getCipher().standardName)
          socket.destroy()
        })
        socket.once('error', reject)
      })
    expect(await handshake('ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384')).to.equal('TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256')
    expect(await refusal(handshake('ECDHE-RSA-AES256-GCM-SHA384'))).to.be.instanceOf(Error)
  })

  for (const kind of ['tls', 'wss'] as const) {
    it(`${kind}: reloadCertificates(): new connections get the new certificate, a live one stays`, async () => {
      const key = join(certs.dir, `live-${kind}.key`)
      const cert = join(certs.dir, `live-${kind}.crt`)
      await copyFile(certs.server.keyFile, key)
      await copyFile(certs.server.certFile, cert)
      const { broker, listener } = await start(kind, { key, cert, watch: false })
      const old = await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'old' })
      const before = await served(listener, certs.ca.cert)
      await copyFile(rotated.keyFile, key)
      await copyFile(rotated.certFile, cert)
      expect(await served(listener, certs.ca.cert)).to.equal(before)
      await broker.reloadCertificates()
      const fresh = await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'fresh' })
      expect(await served(listener, certs.ca.cert)).to.not.equal(before)
      expect(old.connected).to.equal(true)
      await roundTrip(fresh, old, `rotation/${kind}`)
      await roundTrip(old, fresh, `rotation/${kind}/back`)
    })
  }

  it('tls: files changed on disk are picked up without a call (watch)', async () => {
    const key = join(certs.dir, 'watched.key')
    const cert = join(certs.dir, 'watched.crt')
    await copyFile(certs.server.keyFile, key)
    await copyFile(certs.server.certFile, cert)
    let reloaded!: () => void
    const reload = new Promise<void>((resolve) => (reloaded = resolve))
    const logger: Logger = {
      ...silentLogger,
      info: (message) => {
        if (message === 'TLS certificates reloaded') reloaded()
      }
    }
    const { listener } = await start('tls', { key, cert }, { logger })
    const old = await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'old' })
    const before = await served(listener, certs.ca.cert)
    // Key first, certificate second, as an operator would: the pair only matches after both.
    await copyFile(rotated.keyFile, key)
    await copyFile(rotated.certFile, cert)
    await within(10_000, 'reload after the files changed', reload)
    const fresh = await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'fresh' })
    expect(await served(listener, certs.ca.cert)).to.not.equal(before)
    await roundTrip(fresh, old, 'watched')
  })

  it('tls: a reload with a broken file rejects naming the listener and keeps the previous certificate', async () => {
    const key = join(certs.dir, 'broken.key')
    const cert = join(certs.dir, 'broken.crt')
    await copyFile(certs.server.keyFile, key)
    await copyFile(certs.server.certFile, cert)
    const { broker, listener } = await start('tls', { key, cert, watch: false })
    const before = await served(listener, certs.ca.cert)
    await writeFile(cert, 'not a certificate')
    const error = await refusal(broker.reloadCertificates())
    expect(error?.message).to.contain('listener "secure-tls"')
    await connectTo(teardown, listener, { ca: certs.ca.cert, clientId: 'second' })
    expect(await served(listener, certs.ca.cert)).to.equal(before)
  })

  for (const kind of ['tls', 'wss'] as const) {
    it(`${kind}: a peer that never completes the handshake is dropped after handshakeTimeout`, async () => {
      const { seen, listener } = await start(kind, { handshakeTimeout: 300 })
      const { connect } = await import('node:net')
      const raw = connect({ host: '127.0.0.1', port: listener.port })
      teardown.defer(() => raw.destroy())
      raw.on('error', () => undefined)
      await within(5000, 'dropped', new Promise((resolve) => raw.once('close', resolve)))
      expect(seen).to.have.length(0)
    })
  }

  it('tls: a missing certificate file stops the start, naming the listener and the file', async () => {
    const broker = makeBroker(teardown)
    const missing = join(certs.dir, 'nope.crt')
    const error = await refusal(broker.listenAll([{ kind: 'tls', port: 0, name: 'edge', tls: { key: certs.server.keyFile, cert: missing } }]))
    expect(error?.message).to.equal(`listener "edge": cannot read tls.cert "${missing}": ENOENT`)
  })
})
