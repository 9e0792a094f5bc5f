import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, sleep, waitFor } from './nodes.js'
import { connectMqtt, spawnBroker, stopBroker } from './processes.js'
import type { BrokerProcess } from './processes.js'

// Two real broker processes (Broker + KeyvBackend) on one redis-server, driven by MQTT.js.
describe('KeyvBackend – two broker processes, MQTT.js clients', function () {
  this.timeout(30_000)
  let server: RedisServer
  let one: BrokerProcess | undefined
  let two: BrokerProcess | undefined
  const clients: MqttClient[] = []

  before(async () => {
    server = await startRedisServer()
    const prefix = randomRoot()
    ;[one, two] = await Promise.all([spawnBroker(server.url, 'proc-1', prefix), spawnBroker(server.url, 'proc-2', prefix)])
  })

  afterEach(function () {
    // A failing case shows what the broker processes logged.
    if (this.currentTest?.state === 'failed') {
      console.error(`proc-1 stderr:\n${one?.stderr() ?? ''}\nproc-2 stderr:\n${two?.stderr() ?? ''}`)
    }
  })

  after(async () => {
    for (const c of clients) c.end(true)
    await Promise.all([stopBroker(one), stopBroker(two)])
    await server?.dispose()
  })

  it('delivers QoS 1 across processes exactly once, in order, and queues for an away session', async () => {
    const received: string[] = []
    const sub = await connectMqtt(one!.port, { clientId: 'mp-sub', clean: false, protocolVersion: 4 })
    clients.push(sub)
    sub.on('message', (_topic: string, payload: Buffer) => received.push(payload.toString()))
    await sub.subscribeAsync('mp/#', { qos: 1 })
    const pub = await connectMqtt(two!.port, { clientId: 'mp-pub', protocolVersion: 4 })
    clients.push(pub)
    for (let i = 0; i < 30; i++) await pub.publishAsync(`mp/${i % 3}`, `m${i}`, { qos: 1 })
    await waitFor(() => received.length >= 30, 5000, 'live deliveries')
    await sleep(200)
    assert.deepEqual(
      received,
      Array.from({ length: 30 }, (_, i) => `m${i}`)
    )
    // Away: the session keeps QoS 1 messages published on the other process [MQTT-3.1.2-5].
    await sub.endAsync()
    for (let i = 30; i < 40; i++) await pub.publishAsync('mp/x', `m${i}`, { qos: 1 })
    const back: IPublishPacket[] = []
    const again = mqtt.connect({ host: '127.0.0.1', port: two!.port, clientId: 'mp-sub', clean: false, protocolVersion: 4, reconnectPeriod: 0 })
    clients.push(again)
    again.on('message', (_t: string, _p: Buffer, packet: IPublishPacket) => back.push(packet))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => again.once('connect', resolve))
    assert.equal(connack.sessionPresent, true)
    await waitFor(() => back.length >= 10, 5000, 'queued deliveries')
    assert.deepEqual(
      back.map((p) => p.payload.toString()),
      Array.from({ length: 10 }, (_, i) => `m${30 + i}`)
    )
  })

  it('takes a session over across processes: the first connection gets DISCONNECT 0x8E [MQTT-3.1.4-3]', async () => {
    const first = await connectMqtt(one!.port, { clientId: 'mp-x', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
    clients.push(first)
    const disconnected = new Promise<number | undefined>((resolve) => first.once('disconnect', (packet) => resolve(packet.reasonCode)))
    const second = mqtt.connect({
      host: '127.0.0.1',
      port: two!.port,
      clientId: 'mp-x',
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 0
    })
    clients.push(second)
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => second.once('connect', resolve))
    assert.equal(connack.sessionPresent, true)
    assert.equal(await disconnected, 0x8e)
  })
})
