/**
 * MQTT 5 features against MQTT.js 5 as the client (protocolVersion 5): topic aliases, shared
 * subscriptions, subscription options and identifiers, session and message expiry,
 * request/response, user properties and enhanced authentication (SCRAM-SHA-256 through its
 * `handleAuth` hook).
 */
import { expect } from 'chai'
import mqtt from 'mqtt'
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt'
import { createScramCredentials, SCRAM_SHA_256, ScramAuthenticator, ScramClient } from '../../lib/auth/scram.js'
import { Broker } from '../../lib/broker/broker.js'
import type { BrokerOptions } from '../../lib/broker/options.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { MemoryBackendOptions } from '../../lib/backend/memory-backend.js'
import { useTeardown } from '../helpers/teardown.js'

/** Collects PUBLISH packets and waits for a count. */
class Inbox {
  readonly packets: IPublishPacket[] = []
  private waiters: (() => void)[] = []
  constructor(client: MqttClient) {
    client.on('message', (topic, _payload, packet: IPublishPacket) => {
      // MQTT.js resolves a topic alias into the event's topic, not into the packet.
      this.packets.push({ ...packet, topic })
      for (const wake of this.waiters.splice(0)) wake()
    })
  }
  async count(n: number, timeout = 4000): Promise<IPublishPacket[]> {
    const deadline = Date.now() + timeout
    while (this.packets.length < n) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`got ${this.packets.length} of ${n} messages`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.packets
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

for (const transport of ['tcp', 'ws'] as const) {
  describe(`interop – MQTT.js 5 features over ${transport}`, function () {
    this.timeout(10000)
    const teardown = useTeardown()
    let url = ''

    async function start(options: Partial<BrokerOptions> = {}, memory: MemoryBackendOptions = {}): Promise<Broker> {
      const broker = teardown.add(
        new Broker({ backend: new MemoryBackend(memory), logger: silentLogger, timerInterval: 100, ...options }),
        (b) => b.close()
      )
      const address =
        transport === 'tcp'
          ? await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
          : await broker.listen({ transport: 'ws', host: '127.0.0.1', port: 0, path: '/mqtt' })
      url = transport === 'tcp' ? `mqtt://127.0.0.1:${address.port}` : `ws://127.0.0.1:${address.port}/mqtt`
      return broker
    }

    function open(options: IClientOptions = {}): MqttClient {
      const c = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, ...options })
      teardown.defer(() => c.endAsync(true))
      return c
    }

    /** Connect and resolve with the CONNACK. */
    async function client(options: IClientOptions = {}): Promise<{ c: MqttClient; connack: IConnackPacket }> {
      const c = open(options)
      const connack = await new Promise<IConnackPacket>((resolve, reject) => {
        c.once('connect', resolve)
        c.once('error', reject)
      })
      return { c, connack }
    }

    it('topic aliases both ways: the client sets them up, and resolves the ones the broker sends', async () => {
      await start({ topicAliasMaximum: 10 })
      const { c: sub } = await client({ clientId: 'sub', properties: { topicAliasMaximum: 2 } })
      const inbox = new Inbox(sub)
      await sub.subscribeAsync('alias/#', { qos: 1 })
      const { c: pub, connack } = await client({ clientId: 'pub' })
      expect(connack.properties?.topicAliasMaximum).to.equal(10)
      await pub.publishAsync('alias/a', '1', { qos: 1, properties: { topicAlias: 1 } })
      await pub.publishAsync('', '2', { qos: 1, properties: { topicAlias: 1 } })
      await pub.publishAsync('alias/b', '3', { qos: 1 })
      await pub.publishAsync('alias/c', '4', { qos: 1 })
      await pub.publishAsync('alias/a', '5', { qos: 1 })
      const got = await inbox.count(5)
      expect(got.map((p) => [p.topic, p.payload.toString()])).to.deep.equal([
        ['alias/a', '1'],
        ['alias/a', '2'],
        ['alias/b', '3'],
        ['alias/c', '4'],
        ['alias/a', '5']
      ])
      for (const p of got) expect(p.properties?.topicAlias).to.be.within(1, 2)
    })

    it('shared subscriptions: each message to one member of the group', async () => {
      await start()
      const { c: a } = await client({ clientId: 'a' })
      const { c: b } = await client({ clientId: 'b' })
      const inboxA = new Inbox(a)
      const inboxB = new Inbox(b)
      await a.subscribeAsync('$share/workers/jobs', { qos: 1 })
      await b.subscribeAsync('$share/workers/jobs', { qos: 1 })
      const { c: pub } = await client({ clientId: 'pub' })
      for (let i = 0; i < 6; i++) await pub.publishAsync('jobs', `j${i}`, { qos: 1 })
      await sleep(100)
      expect(inboxA.packets.length).to.equal(3)
      expect(inboxB.packets.length).to.equal(3)
    })

    it('subscription options (No Local, Retain As Published, Retain Handling 2) and identifiers', async () => {
      await start()
      const { c: pub } = await client({ clientId: 'pub' })
      await pub.publishAsync('opt/r', 'retained', { qos: 1, retain: true })
      const { c } = await client({ clientId: 'c' })
      const inbox = new Inbox(c)
      await c.subscribeAsync('opt/own', { qos: 1, nl: true })
      await c.subscribeAsync('opt/r', { qos: 1, rap: true, rh: 2, properties: { subscriptionIdentifier: 7 } })
      await c.subscribeAsync('opt/#', { qos: 0, rh: 2, properties: { subscriptionIdentifier: 8 } })
      await c.publishAsync('opt/own', 'mine', { qos: 1 })
      await pub.publishAsync('opt/r', 'live', { qos: 1, retain: true })
      const got = await inbox.count(2)
      await sleep(50)
      // 'mine' comes only through opt/# (No Local on opt/own); retained 'retained' never (Retain Handling 2).
      const byPayload = new Map(got.map((p) => [p.payload.toString(), p]))
      expect([...byPayload.keys()].sort()).to.deep.equal(['live', 'mine'])
      expect(byPayload.get('mine')!.properties?.subscriptionIdentifier).to.deep.equal(8)
      const live = byPayload.get('live')!
      expect(live.retain).to.equal(true) // Retain As Published
      expect(live.qos).to.equal(1)
      expect([live.properties?.subscriptionIdentifier].flat().sort()).to.deep.equal([7, 8])
    })

    it('session expiry: lowered by the broker (told in CONNACK), the session comes back with its messages', async () => {
      await start({ maxSessionExpiryInterval: 30 })
      const first = await client({ clientId: 'persist', clean: false, properties: { sessionExpiryInterval: 3600 } })
      expect(first.connack.properties?.sessionExpiryInterval).to.equal(30)
      await first.c.subscribeAsync('persist/t', { qos: 1 })
      await first.c.endAsync()
      const { c: pub } = await client({ clientId: 'pub' })
      await pub.publishAsync('persist/t', 'while away', { qos: 1, properties: { messageExpiryInterval: 60 } })
      const back = open({ clientId: 'persist', clean: false, properties: { sessionExpiryInterval: 30 } })
      const inbox = new Inbox(back)
      const got = await inbox.count(1)
      expect(got[0]!.payload.toString()).to.equal('while away')
      expect(got[0]!.properties?.messageExpiryInterval).to.be.within(59, 60)
    })

    it('message expiry: an expired retained message is not delivered', async () => {
      await start()
      const { c: pub } = await client({ clientId: 'pub' })
      await pub.publishAsync('exp/t', 'short', { qos: 1, retain: true, properties: { messageExpiryInterval: 1 } })
      await sleep(1100)
      const { c: sub } = await client({ clientId: 'sub' })
      const inbox = new Inbox(sub)
      await sub.subscribeAsync('exp/t', { qos: 1 })
      await sleep(100)
      expect(inbox.packets).to.deep.equal([])
    })

    it('request/response: Response Information, Response Topic and Correlation Data', async () => {
      await start({}, { responseInformation: (handle) => `reply/${handle.clientId}` })
      const { c: requester, connack } = await client({ clientId: 'requester', properties: { requestResponseInformation: true } })
      const base = connack.properties?.responseInformation
      expect(base).to.equal('reply/requester')
      const { c: responder } = await client({ clientId: 'responder' })
      responder.on('message', (_topic, payload, packet: IPublishPacket) => {
        void responder.publishAsync(packet.properties!.responseTopic!, `re: ${payload.toString()}`, {
          qos: 1,
          properties: { correlationData: packet.properties!.correlationData! }
        })
      })
      await responder.subscribeAsync('service', { qos: 1 })
      const inbox = new Inbox(requester)
      await requester.subscribeAsync(`${base}/#`, { qos: 1 })
      await requester.publishAsync('service', 'ping', {
        qos: 1,
        properties: { responseTopic: `${base}/1`, correlationData: Buffer.from('corr-1') }
      })
      const [answer] = await inbox.count(1)
      expect(answer!.payload.toString()).to.equal('re: ping')
      expect(answer!.properties?.correlationData?.toString()).to.equal('corr-1')
    })

    it('user properties, payload format indicator and content type arrive unchanged', async () => {
      await start()
      const { c: sub } = await client({ clientId: 'sub' })
      const inbox = new Inbox(sub)
      await sub.subscribeAsync('props', { qos: 1 })
      const { c: pub } = await client({ clientId: 'pub' })
      await pub.publishAsync('props', 'hello', {
        qos: 1,
        properties: { payloadFormatIndicator: true, contentType: 'text/plain', userProperties: { a: '1', b: ['2', '3'] } }
      })
      const [got] = await inbox.count(1)
      expect(got!.properties).to.deep.include({ payloadFormatIndicator: true, contentType: 'text/plain' })
      expect(got!.properties?.userProperties).to.deep.equal({ a: '1', b: ['2', '3'] })
    })

    it('enhanced authentication: SCRAM-SHA-256 through authenticationData and handleAuth', async () => {
      const scram = new ScramAuthenticator({ lookup: (name) => (name === 'alice' ? credentials : undefined) })
      const credentials = createScramCredentials('wonderland')
      await start({}, { authenticate: scram.authenticate })
      const exchange = new ScramClient('alice', 'wonderland')
      const c = open({
        clientId: 'scram',
        properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: exchange.first() }
      })
      c.handleAuth = (packet, callback) => {
        const data = packet.properties?.authenticationData
        if (data === undefined) return callback(new Error('no challenge'))
        callback(undefined, {
          cmd: 'auth',
          reasonCode: 0x18,
          properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: exchange.final(data) }
        })
      }
      const connack = await new Promise<IConnackPacket>((resolve, reject) => {
        c.once('connect', resolve)
        c.once('error', reject)
      })
      expect(connack.reasonCode).to.equal(0)
      expect(exchange.verify(connack.properties!.authenticationData!)).to.equal(true)
      await c.subscribeAsync('after/auth', { qos: 1 })
    })

    it('enhanced authentication: a wrong password is refused with 0x86', async () => {
      const credentials = createScramCredentials('wonderland')
      const scram = new ScramAuthenticator({ lookup: () => credentials })
      await start({}, { authenticate: scram.authenticate })
      const exchange = new ScramClient('alice', 'guess')
      const c = open({ clientId: 'scram', properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: exchange.first() } })
      c.handleAuth = (packet, callback) => {
        callback(undefined, {
          cmd: 'auth',
          reasonCode: 0x18,
          properties: { authenticationMethod: SCRAM_SHA_256, authenticationData: exchange.final(packet.properties!.authenticationData!) }
        })
      }
      const error = await new Promise<Error & { code?: number }>((resolve) => c.once('error', resolve))
      expect(error.code).to.equal(0x86)
    })
  })
}
