import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, sleep, waitFor } from './nodes.js'
import { connectMqtt, spawnBroker, stopBroker } from './processes.js'
import type { BrokerProcess } from './processes.js'

interface Received {
  topic: string
  payload: string
  qos: number
  dup: boolean
}

/** An MQTT.js client that records what it receives. */
async function recorder(port: number, clientId: string, options: mqtt.IClientOptions = {}): Promise<{ client: MqttClient; got: Received[] }> {
  const client = await connectMqtt(port, { clientId, protocolVersion: 5, ...options })
  const got: Received[] = []
  client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => got.push({ topic, payload: payload.toString(), qos: packet.qos, dup: packet.dup }))
  return { client, got }
}

// Three real broker processes (Broker + KeyvBackend) on one redis-server, driven by MQTT.js.
describe('KeyvBackend – three broker processes, MQTT.js clients', function () {
  this.timeout(40_000)
  let server: RedisServer
  let procs: BrokerProcess[] = []
  const clients: MqttClient[] = []

  before(async () => {
    server = await startRedisServer()
    const prefix = randomRoot()
    procs = await Promise.all(['p1', 'p2', 'p3'].map((id) => spawnBroker(server.url, id, prefix)))
  })

  afterEach(function () {
    for (const c of clients.splice(0)) c.end(true)
    if (this.currentTest?.state === 'failed') for (const p of procs) console.error(`${p.nodeId} stderr:\n${p.stderr()}`)
  })

  after(async () => {
    await Promise.all(procs.map((p) => stopBroker(p)))
    await server?.dispose()
    for (const p of procs) assert.doesNotMatch(p.stderr(), /UNHANDLED/)
  })

  const port = (i: number): number => (procs[i % 3] as BrokerProcess).port

  it('fans out QoS 0/1/2 with wildcards and overlapping subscriptions: one delivery each, exact QoS, in order', async () => {
    // s1: overlapping filters (QoS 2 and 1): one delivery per message at the higher QoS [MQTT-3.3.4-2].
    const s1 = await recorder(port(0), 'fan-s1')
    await s1.client.subscribeAsync({ 'fan/+/x': { qos: 2 }, 'fan/#': { qos: 1 } })
    const s2 = await recorder(port(1), 'fan-s2')
    await s2.client.subscribeAsync('fan/a/x', { qos: 1 })
    const s3 = await recorder(port(2), 'fan-s3')
    await s3.client.subscribeAsync('+/a/+', { qos: 0 })
    const other = await recorder(port(2), 'fan-other')
    await other.client.subscribeAsync('fan/b/#', { qos: 2 })
    clients.push(s1.client, s2.client, s3.client, other.client)
    // No settling delay: from the SUBACKs on, publishes on any process reach them.
    const publishers = await Promise.all([0, 1, 2].map((i) => connectMqtt(port(i), { clientId: `fan-pub${i}`, protocolVersion: 5 })))
    clients.push(...publishers)
    const n = 60
    const sent: { payload: string; qos: 0 | 1 | 2 }[] = []
    for (let i = 0; i < n; i++) {
      const qos = (i % 3) as 0 | 1 | 2
      sent.push({ payload: `m${i}`, qos })
      // One publisher per process, in turn; each publish completes before the next.
      await (publishers[i % 3] as MqttClient).publishAsync('fan/a/x', `m${i}`, { qos })
    }
    await waitFor(() => s1.got.length >= n && s2.got.length >= n && s3.got.length >= n, 10_000, 'deliveries')
    await sleep(300)
    const byPayload = (r: Received[]): string[] => r.map((m) => m.payload).sort()
    const all = sent.map((m) => m.payload).sort()
    assert.deepEqual(byPayload(s1.got), all)
    assert.deepEqual(byPayload(s2.got), all)
    assert.deepEqual(byPayload(s3.got), all)
    assert.equal(other.got.length, 0)
    const qosOf = new Map(sent.map((m) => [m.payload, m.qos]))
    for (const m of s1.got) assert.equal(m.qos, qosOf.get(m.payload), `s1 ${m.payload}`)
    for (const m of s2.got) assert.equal(m.qos, Math.min(1, qosOf.get(m.payload) as number), `s2 ${m.payload}`)
    for (const m of s3.got) assert.equal(m.qos, 0)
    // Each publisher's messages of one QoS arrive in the order published [MQTT-4.6.0-5].
    for (const r of [s1, s2, s3]) {
      for (let p = 0; p < 3; p++) {
        const mine = r.got.map((m) => Number(m.payload.slice(1))).filter((i) => i % 3 === p)
        assert.deepEqual(mine, [...mine].sort((x, y) => x - y))
      }
    }
  })

  it('keeps $-topics away from leading wildcards on every process [MQTT-4.7.2-1]', async () => {
    const all = await recorder(port(0), 'dollar-all')
    await all.client.subscribeAsync({ '#': { qos: 1 }, '+/x': { qos: 1 } })
    const dollar = await recorder(port(1), 'dollar-sys')
    await dollar.client.subscribeAsync('$app/#', { qos: 1 })
    clients.push(all.client, dollar.client)
    const pub = await connectMqtt(port(2), { clientId: 'dollar-pub', protocolVersion: 5 })
    clients.push(pub)
    await pub.publishAsync('$app/x', 'sys', { qos: 1 })
    await pub.publishAsync('plain/x', 'plain', { qos: 1 })
    await waitFor(() => all.got.length >= 1 && dollar.got.length >= 1, 5000, 'deliveries')
    await sleep(300)
    assert.deepEqual(all.got.map((m) => m.payload), ['plain'])
    assert.deepEqual(dollar.got.map((m) => m.payload), ['sys'])
  })

  it('shares a $share group across processes: each message once per group [MQTT-4.8.2-3]', async () => {
    const members = await Promise.all([0, 1, 2].map((i) => recorder(port(i), `share-m${i}`)))
    for (const m of members) await m.client.subscribeAsync('$share/workers/jobs/+', { qos: 1 })
    const audit = await Promise.all([0, 2].map((i) => recorder(port(i), `share-a${i}`)))
    for (const m of audit) await m.client.subscribeAsync('$share/audit/jobs/#', { qos: 1 })
    clients.push(...members.map((m) => m.client), ...audit.map((m) => m.client))
    const pub = await connectMqtt(port(1), { clientId: 'share-pub', protocolVersion: 5 })
    clients.push(pub)
    const n = 90
    for (let i = 0; i < n; i++) await pub.publishAsync(`jobs/${i % 4}`, `j${i}`, { qos: 1 })
    const got = (rs: { got: Received[] }[]): string[] => rs.flatMap((r) => r.got.map((m) => m.payload))
    await waitFor(() => got(members).length >= n && got(audit).length >= n, 10_000, 'shared deliveries')
    await sleep(500)
    const expected = Array.from({ length: n }, (_, i) => `j${i}`).sort()
    assert.deepEqual(got(members).sort(), expected)
    assert.deepEqual(got(audit).sort(), expected)
  })

  it('takes a session over across processes; of two connects at once exactly one survives [MQTT-3.1.4-3]', async () => {
    const first = await connectMqtt(port(0), { clientId: 'tk', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
    clients.push(first)
    const kicked = new Promise<number | undefined>((resolve) => first.once('disconnect', (packet) => resolve(packet.reasonCode)))
    // Two more connections of the same client id on two other processes, at the same moment.
    const racers = [1, 2].map((i) =>
      mqtt.connect({ host: '127.0.0.1', port: port(i), clientId: 'tk', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 }, reconnectPeriod: 0 })
    )
    clients.push(...racers)
    assert.equal(await kicked, 0x8e)
    await sleep(1500)
    const alive = racers.filter((c) => c.connected)
    assert.equal(alive.length, 1, 'exactly one connection survives')
    // The survivor owns the session: a message reaches it.
    await (alive[0] as MqttClient).subscribeAsync('tk/x', { qos: 1 })
    const received = new Promise<string>((resolve) => (alive[0] as MqttClient).once('message', (_t: string, p: Buffer) => resolve(p.toString())))
    const pub = await connectMqtt(port(0), { clientId: 'tk-pub', protocolVersion: 5 })
    clients.push(pub)
    await sleep(100)
    await pub.publishAsync('tk/x', 'to-survivor', { qos: 1 })
    assert.equal(await received, 'to-survivor')
  })
})
