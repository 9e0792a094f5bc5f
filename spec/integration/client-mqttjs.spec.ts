/**
 * Our client and MQTT.js through a broker, both directions (our broker and mosquitto): payloads
 * byte-identical, MQTT 5 properties (user properties in order, content type, response topic,
 * correlation data, subscription identifiers) carried both ways; request/response with an MQTT.js
 * responder; outbound topic aliases; the one-call helpers; our client over WebSocket (ws, and
 * wss through mosquitto) with MQTT.js over TCP.
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { Client } from '../../lib/client/client.js'
import { ConnectionRefusedError } from '../../lib/client/errors.js'
import { createScramCredentials, SCRAM_SHA_256, ScramAuthenticator, ScramClient } from '../../lib/auth/scram.js'
import { clearRetained, clearSession, publishMessage, receiveMessage, request } from '../../lib/client/helpers.js'
import type { InboundMessage } from '../../lib/client/inbound.js'
import type { QoS } from '../../lib/packet/index.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { makeCerts } from '../client/helpers/certs.js'
import { startMosquitto } from '../client/helpers/mosquitto.js'
import type { Mosquitto } from '../client/helpers/mosquitto.js'

async function mqttjs(url: string, protocolVersion: 4 | 5): Promise<MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion, clientId: `js-${randomBytes(3).toString('hex')}`, reconnectPeriod: 0 })
}

function waitFor<T>(list: T[], n: number, what: string): Promise<T[]> {
  const deadline = Date.now() + 5000
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (list.length >= n) resolve(list)
      else if (Date.now() > deadline) reject(new Error(`got ${list.length} of ${n} ${what}`))
      else setTimeout(check, 20)
    }
    check()
  })
}

interface Started {
  url: string
  /** Where our client connects over WebSocket (with TLS options for wss). */
  webSockets: { url: string; tls?: { ca: Buffer } }[]
  stop(): Promise<void>
}

const brokers: { name: string; start(): Promise<Started> }[] = [
  {
    name: 'our broker',
    async start() {
      const broker = new Broker({ backend: new MemoryBackend(), logger: silentLogger, topicAliasMaximum: 10 })
      const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
      const ws = await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0 })
      return { url: `mqtt://127.0.0.1:${port}`, webSockets: [{ url: `ws://127.0.0.1:${ws.port}/mqtt` }], stop: () => broker.close() }
    }
  },
  {
    name: 'mosquitto',
    async start() {
      const certs = makeCerts()
      const m: Mosquitto = await startMosquitto({ tls: { caFile: certs.caFile, certFile: certs.certFile, keyFile: certs.keyFile, requireCertificate: false }, websockets: true })
      return {
        url: `mqtt://127.0.0.1:${m.tcpPort}`,
        webSockets: [{ url: `ws://127.0.0.1:${m.wsPort}/mqtt` }, { url: `wss://localhost:${m.wssPort}/mqtt`, tls: { ca: certs.ca } }],
        stop: async () => {
          await m.stop()
          certs.cleanup()
        }
      }
    }
  }
]

for (const target of brokers) {
  describe(`interop – our client and MQTT.js through ${target.name}`, function () {
    this.timeout(20_000)
    let url = ''
    let webSockets: Started['webSockets'] = []
    let stop: () => Promise<void> = async () => undefined
    const closers: (() => Promise<unknown>)[] = []
    before(async () => ({ url, webSockets, stop } = await target.start()))
    after(() => stop())
    afterEach(async () => {
      for (const close of closers.splice(0)) await close().catch(() => undefined)
    })

    for (const level of [4, 5] as const) {
      it(`MQTT.js → our client and our client → MQTT.js at level ${level}, QoS 0/1/2`, async () => {
        const topic = `x/${randomBytes(4).toString('hex')}`
        const ours = await Client.connect({ url, protocolVersion: level, clientId: `ours-${randomBytes(3).toString('hex')}` })
        closers.push(() => ours.end())
        const js = await mqttjs(url, level)
        closers.push(() => js.endAsync())
        const gotOurs: InboundMessage[] = []
        ours.messages$.subscribe((m) => gotOurs.push({ ...m, payload: Buffer.from(m.payload) }))
        const gotJs: IPublishPacket[] = []
        js.on('message', (_t, _p, packet) => gotJs.push(packet))
        await ours.subscribe({ topicFilter: `${topic}/to-ours`, qos: 2 }, level === 5 ? { subscriptionIdentifier: 42 } : {})
        await js.subscribeAsync(`${topic}/to-js`, { qos: 2 })
        const props = { userProperties: { a: '1', b: ['2', '3'] }, contentType: 'text/plain', responseTopic: 'r/t', correlationData: Buffer.from([9, 8, 7]) }
        const payloads = [randomBytes(10), randomBytes(1000), Buffer.alloc(0)]
        for (const qos of [0, 1, 2] as QoS[]) await js.publishAsync(`${topic}/to-ours`, payloads[qos]!, { qos, properties: level === 5 ? props : undefined })
        for (const qos of [0, 1, 2] as QoS[]) {
          await ours.publish(`${topic}/to-js`, payloads[qos]!, {
            qos,
            properties: level === 5 ? { userProperties: [['a', '1'], ['b', '2'], ['b', '3']], contentType: 'text/plain', responseTopic: 'r/t', correlationData: Buffer.from([9, 8, 7]) } : undefined
          })
        }
        await waitFor(gotOurs, 3, 'messages at our client')
        await waitFor(gotJs, 3, 'messages at MQTT.js')
        for (const qos of [0, 1, 2] as QoS[]) {
          const m = gotOurs.find((x) => x.qos === qos)!
          expect(Buffer.compare(m.payload, payloads[qos]!)).to.equal(0)
          const j = gotJs.find((x) => x.qos === qos)!
          expect(Buffer.compare(j.payload as Buffer, payloads[qos]!)).to.equal(0)
          if (level === 5) {
            expect(m.properties?.userProperties).to.deep.equal([['a', '1'], ['b', '2'], ['b', '3']])
            expect(m.properties).to.deep.include({ contentType: 'text/plain', responseTopic: 'r/t' })
            expect(m.properties?.correlationData).to.deep.equal(Buffer.from([9, 8, 7]))
            expect(m.properties?.subscriptionIdentifiers).to.deep.equal([42])
            expect(j.properties?.userProperties).to.deep.equal({ a: '1', b: ['2', '3'] })
            expect(j.properties?.contentType).to.equal('text/plain')
            expect(Buffer.from(j.properties!.correlationData!)).to.deep.equal(Buffer.from([9, 8, 7]))
          }
        }
      })
    }

    it('our client over WebSocket (ws, wss) and MQTT.js over TCP, QoS 0/1/2 both ways', async () => {
      expect(webSockets.length).to.be.greaterThan(0)
      for (const ws of webSockets) {
        const topic = `w/${randomBytes(4).toString('hex')}`
        const ours = await Client.connect({ url: ws.url, tls: ws.tls, protocolVersion: 5, clientId: `ours-${randomBytes(3).toString('hex')}` })
        closers.push(() => ours.end())
        const js = await mqttjs(url, 5)
        closers.push(() => js.endAsync())
        const gotOurs: InboundMessage[] = []
        ours.messages$.subscribe((m) => gotOurs.push({ ...m, payload: Buffer.from(m.payload) }))
        const gotJs: IPublishPacket[] = []
        js.on('message', (_t, _p, packet) => gotJs.push(packet))
        await ours.subscribe({ topicFilter: `${topic}/to-ours`, qos: 2 })
        await js.subscribeAsync(`${topic}/to-js`, { qos: 2 })
        const payloads = [randomBytes(10), randomBytes(70_000), Buffer.alloc(0)]
        for (const qos of [0, 1, 2] as QoS[]) await js.publishAsync(`${topic}/to-ours`, payloads[qos]!, { qos })
        for (const qos of [0, 1, 2] as QoS[]) await ours.publish(`${topic}/to-js`, payloads[qos]!, { qos })
        await waitFor(gotOurs, 3, `messages at our client over ${ws.url}`)
        await waitFor(gotJs, 3, 'messages at MQTT.js')
        for (const qos of [0, 1, 2] as QoS[]) {
          expect(Buffer.compare(gotOurs.find((x) => x.qos === qos)!.payload, payloads[qos]!), ws.url).to.equal(0)
          expect(Buffer.compare(gotJs.find((x) => x.qos === qos)!.payload as Buffer, payloads[qos]!), ws.url).to.equal(0)
        }
      }
    })

    it('request/response (v5) with an MQTT.js responder', async () => {
      const base = `rr/${randomBytes(4).toString('hex')}`
      const responder = await mqttjs(url, 5)
      closers.push(() => responder.endAsync())
      responder.on('message', (_topic, payload, packet) => {
        const p = packet.properties ?? {}
        void responder.publishAsync(p.responseTopic!, Buffer.concat([Buffer.from('re:'), payload]), { qos: 1, properties: { correlationData: p.correlationData } })
      })
      await responder.subscribeAsync(`${base}/req`, { qos: 1 })
      const ours = await Client.connect({ url, protocolVersion: 5, clientId: `rq-${randomBytes(3).toString('hex')}` })
      closers.push(() => ours.end())
      const reply = await request(ours, `${base}/req`, 'ping', { responseTopic: `${base}/res` })
      expect(reply.payload.toString()).to.equal('re:ping')
    })

    it('sends QoS 0 with topic aliases when the broker allows them (MQTT.js sees the full topic)', async () => {
      const topic = `alias/${randomBytes(4).toString('hex')}`
      const js = await mqttjs(url, 5)
      closers.push(() => js.endAsync())
      const got: string[] = []
      js.on('message', (t) => got.push(t))
      await js.subscribeAsync(`${topic}/#`, { qos: 0 })
      const ours = await Client.connect({ url, protocolVersion: 5, topicAliases: true, clientId: `al-${randomBytes(3).toString('hex')}` })
      closers.push(() => ours.end())
      expect(ours.limits.topicAliasMaximum).to.be.greaterThan(0)
      for (let i = 0; i < 4; i++) await ours.publish(`${topic}/${i % 2}`, String(i))
      await waitFor(got, 4, 'aliased messages')
      expect(got).to.deep.equal([`${topic}/0`, `${topic}/1`, `${topic}/0`, `${topic}/1`])
      // And inbound: a receiver of ours that allows the broker 5 aliases resolves them.
      const receiver = await Client.connect({ url, protocolVersion: 5, properties: { topicAliasMaximum: 5 }, clientId: `ar-${randomBytes(3).toString('hex')}` })
      closers.push(() => receiver.end())
      const topics: string[] = []
      receiver.messages$.subscribe((m) => topics.push(m.topic))
      await receiver.subscribe(`${topic}/#`)
      for (let i = 0; i < 4; i++) await js.publishAsync(`${topic}/${i % 2}`, String(i))
      await waitFor(topics, 4, 'messages at the alias-allowing receiver')
      expect(topics).to.deep.equal([`${topic}/0`, `${topic}/1`, `${topic}/0`, `${topic}/1`])
    })

    it('one-call helpers: publish one, receive one, clear retained, clear session', async () => {
      const topic = `h/${randomBytes(4).toString('hex')}`
      await publishMessage(url, topic, 'kept', { qos: 1, retain: true })
      const message = await receiveMessage(url, topic, { qos: 1, signal: AbortSignal.timeout(5000) })
      expect([message.payload.toString(), message.retain]).to.deep.equal(['kept', true])
      await clearRetained(url, topic)
      const none = await receiveMessage(url, topic, { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e)
      expect(none).to.have.property('code', 'ERR_MQTT_CANCELED')
      const id = `cs-${randomBytes(3).toString('hex')}`
      const durable = await Client.connect({ url, clientId: id, clean: false })
      await durable.subscribe('q')
      await durable.end()
      await clearSession(url, id)
      const again = await Client.connect({ url, clientId: id, clean: false })
      expect(again.connack.sessionPresent).to.equal(false)
      await again.end()
    })
  })
}

describe('interop – our client\'s enhanced authentication against our broker (SCRAM-SHA-256)', function () {
  this.timeout(20_000)

  async function scramBroker(): Promise<{ url: string; broker: Broker }> {
    const credentials = createScramCredentials('wonderland')
    const scram = new ScramAuthenticator({ lookup: (name) => (name === 'alice' ? credentials : undefined) })
    const broker = new Broker({ backend: new MemoryBackend({ authenticate: scram.authenticate }), logger: silentLogger })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return { url: `mqtt://127.0.0.1:${port}`, broker }
  }

  for (const [password, refused] of [['wonderland', false], ['guess', true]] as const) {
    it(refused ? 'a wrong password is refused with ConnectionRefusedError 0x86' : 'connects through the AUTH exchange and verifies the server', async () => {
      const { url, broker } = await scramBroker()
      try {
        const exchange = new ScramClient('alice', password)
        const connecting = Client.connect({ url, protocolVersion: 5, clientId: 'scram', auth: { method: SCRAM_SHA_256, data: () => exchange.first(), challenge: (data) => exchange.final(data!) } })
        if (refused) {
          const error = await connecting.catch((e: unknown) => e)
          expect(error).to.be.instanceOf(ConnectionRefusedError)
          expect(error).to.include({ reasonCode: 0x86, transient: false })
          return
        }
        const client = await connecting
        expect(exchange.verify(client.connack.properties!.authenticationData!)).to.equal(true)
        await client.end()
      } finally {
        await broker.close()
      }
    })
  }
})
