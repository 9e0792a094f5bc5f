/**
 * Our client against real brokers: our broker (in-process, on free ports, over TCP, TLS,
 * WebSocket, secure WebSocket and a Unix socket) and Debian's mosquitto 2.0.11 (started on free
 * ports: TCP, TLS with a required client certificate, WebSocket, secure WebSocket, Unix socket),
 * at MQTT 3.1, 3.1.1 and 5.0: QoS 0/1/2 both ways, retained messages, a persistent session's
 * offline messages.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer } from 'node:net'
import type { Server } from 'node:net'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { Client } from '../../lib/client/client.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import type { ClientOptions } from '../../lib/client/options.js'
import type { ProtocolLevel, QoS } from '../../lib/packet/index.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { makeCerts } from '../client/helpers/certs.js'
import type { Certs } from '../client/helpers/certs.js'
import { startMosquitto } from '../client/helpers/mosquitto.js'
import type { Mosquitto } from '../client/helpers/mosquitto.js'

/** Collect messages and wait for a count. */
function collect(client: Client): { messages: InboundMessage[]; count(n: number): Promise<InboundMessage[]> } {
  const messages: InboundMessage[] = []
  let wake: (() => void) | undefined
  client.messages$.subscribe((m) => {
    messages.push({ ...m, payload: Buffer.from(m.payload) })
    wake?.()
  })
  return {
    messages,
    async count(n) {
      const deadline = Date.now() + 5000
      while (messages.length < n) {
        if (Date.now() > deadline) throw new Error(`got ${messages.length} of ${n} messages`)
        await new Promise<void>((resolve) => {
          wake = resolve
          setTimeout(resolve, 100).unref()
        })
      }
      return messages
    }
  }
}

interface Target {
  name: string
  options(): ClientOptions
}

/** The exchange every (broker, transport, level) runs. */
function exchangeSuite(targets: () => Target[], levels: readonly ProtocolLevel[]): void {
  for (const level of levels) {
    it(`MQTT level ${level}: QoS 0/1/2 both ways, retained, persistent session`, async function () {
      for (const target of targets()) {
        const base = target.options()
        const prefix = `interop/${randomBytes(4).toString('hex')}`
        const id = (s: string): string => `${s}${randomBytes(3).toString('hex')}`
        const sub = await Client.connect({ ...base, protocolVersion: level, clientId: id('sub') })
        const pub = await Client.connect({ ...base, protocolVersion: level, clientId: id('pub') })
        try {
          const inbox = collect(sub)
          const granted = await sub.subscribe({ topicFilter: `${prefix}/#`, qos: 2 })
          expect(granted.reasonCodes, target.name).to.deep.equal([2])
          const payloads = [Buffer.from('zero'), randomBytes(300), Buffer.alloc(0)]
          for (const qos of [0, 1, 2] as QoS[]) await pub.publish(`${prefix}/q${qos}`, payloads[qos]!, { qos })
          const got = await inbox.count(3)
          for (const qos of [0, 1, 2] as QoS[]) {
            const message = got.find((m) => m.topic === `${prefix}/q${qos}`)
            expect(message, `${target.name} qos ${qos}`).to.not.equal(undefined)
            expect(message!.qos, target.name).to.equal(qos)
            expect(Buffer.compare(message!.payload, payloads[qos]!), target.name).to.equal(0)
          }
          // Retained: a later subscriber gets it with the retain flag; clearing it works.
          await pub.publish(`${prefix}/kept`, 'r', { qos: 1, retain: true })
          const late = await Client.connect({ ...base, protocolVersion: level, clientId: id('late') })
          const lateInbox = collect(late)
          await late.subscribe({ topicFilter: `${prefix}/kept`, qos: 1 })
          const [retained] = await lateInbox.count(1)
          expect([retained!.retain, retained!.payload.toString()], target.name).to.deep.equal([true, 'r'])
          await late.end()
          await pub.publish(`${prefix}/kept`, Buffer.alloc(0), { qos: 1, retain: true })
          // Persistent session: messages published while the subscriber is away arrive when it is back.
          const durableId = id('dur')
          const durableOptions = { ...base, protocolVersion: level, clientId: durableId, clean: false, properties: level === 5 ? { sessionExpiryInterval: 60 } : undefined }
          const durable = await Client.connect(durableOptions)
          await durable.subscribe({ topicFilter: `${prefix}/away`, qos: 1 })
          await durable.end()
          await pub.publish(`${prefix}/away`, 'missed', { qos: 1 })
          const back = await Client.connect({ ...durableOptions, clean: false })
          // MQTT 3.1 has no Session Present flag.
          if (level >= 4) expect(back.connack.sessionPresent, target.name).to.equal(true)
          const backInbox = collect(back)
          const [missed] = await backInbox.count(1)
          expect(missed!.payload.toString(), target.name).to.equal('missed')
          await back.end()
          await Client.connect({ ...base, protocolVersion: level, clientId: durableId, clean: true, properties: level === 5 ? { sessionExpiryInterval: 0 } : undefined }).then((c) => c.end())
        } finally {
          await sub.end()
          await pub.end()
        }
      }
    })
  }
}

describe('interop – our client against our broker (TCP, TLS, WS, WSS, Unix)', function () {
  this.timeout(30_000)
  let broker: Broker
  let certs: Certs
  const servers: { close(cb: () => void): unknown }[] = []
  let dir = ''
  const urls: Record<string, string> = {}

  before(async () => {
    certs = makeCerts()
    broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger })
    const tcp = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    urls.tcp = `mqtt://127.0.0.1:${tcp.port}`
    const ws = await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0 })
    urls.ws = `ws://127.0.0.1:${ws.port}/mqtt`
    const key = readFileSync(certs.keyFile)
    const cert = readFileSync(certs.certFile)
    // The broker has TCP and WebSocket listeners; TLS and WSS are terminated here and handed over.
    const tls = createTlsServer({ key, cert }, (socket) => broker.handle({ stream: socket, transport: 'tls', remoteAddress: 'tls' }))
    await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve))
    servers.push(tls)
    urls.tls = `mqtts://127.0.0.1:${(tls.address() as { port: number }).port}`
    const https = createHttpsServer({ key, cert })
    const wss = new WebSocketServer({ server: https, handleProtocols: () => 'mqtt' })
    wss.on('connection', (socket) => broker.handle({ stream: createWebSocketStream(socket), transport: 'wss', remoteAddress: 'wss' }))
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
    servers.push(https, wss as unknown as Server)
    urls.wss = `wss://localhost:${(https.address() as { port: number }).port}/mqtt`
    dir = mkdtempSync(join(tmpdir(), 'client-unix-'))
    const path = join(dir, 'broker.sock')
    const unix = createNetServer((socket) => broker.handle({ stream: socket, transport: 'unix', remoteAddress: 'unix' }))
    await new Promise<void>((resolve) => unix.listen(path, resolve))
    servers.push(unix)
    urls.unix = `mqtt+unix://${path}`
  })

  after(async () => {
    await broker.close()
    for (const server of servers.reverse()) await new Promise<void>((resolve) => server.close(() => resolve()))
    certs.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })

  exchangeSuite(
    () => [
      { name: 'ours tcp', options: () => ({ url: urls.tcp }) },
      { name: 'ours tls', options: () => ({ url: urls.tls, tls: { ca: certs.ca } }) },
      { name: 'ours ws', options: () => ({ url: urls.ws }) },
      { name: 'ours wss', options: () => ({ url: urls.wss, tls: { ca: certs.ca } }) },
      { name: 'ours unix', options: () => ({ url: urls.unix }) }
    ],
    [3, 4, 5]
  )
})

describe('interop – our client against mosquitto (TCP, TLS with client certificate, WS, WSS, Unix)', function () {
  this.timeout(30_000)
  let mosquitto: Mosquitto
  let certs: Certs

  before(async () => {
    certs = makeCerts()
    mosquitto = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.certFile, keyFile: certs.keyFile, requireCertificate: true }, websockets: true })
  })

  after(async () => {
    await mosquitto.stop()
    certs.cleanup()
  })

  exchangeSuite(
    () => [
      { name: 'mosquitto tcp', options: () => ({ url: `mqtt://127.0.0.1:${mosquitto.tcpPort}` }) },
      { name: 'mosquitto tls', options: () => ({ url: `mqtts://127.0.0.1:${mosquitto.tlsPort}`, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } }) },
      { name: 'mosquitto ws', options: () => ({ url: `ws://127.0.0.1:${mosquitto.wsPort}/mqtt` }) },
      { name: 'mosquitto wss', options: () => ({ url: `wss://localhost:${mosquitto.wssPort}/mqtt`, tls: { ca: certs.ca } }) },
      { name: 'mosquitto unix', options: () => ({ url: `mqtt+unix://${mosquitto.socketPath}` }) }
    ],
    [3, 4, 5]
  )

  it('refuses a TLS connection without the required client certificate (dial error, not a hang)', async () => {
    const error = await Client.connect({ url: `mqtts://127.0.0.1:${mosquitto.tlsPort}`, tls: { ca: certs.ca }, clientId: 'nocert', connectTimeoutMs: 5000 }).then(
      (c) => {
        c.destroy()
        return undefined
      },
      (e: unknown) => e
    )
    expect(error).to.have.property('outcome').that.is.oneOf(['not-sent', 'unknown'])
  })
})
