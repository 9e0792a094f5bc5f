import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, sleep, waitFor } from './nodes.js'
import { connectMqtt, killBroker, spawnBroker, stopBroker } from './processes.js'
import type { BrokerProcess } from './processes.js'

interface Got {
  payload: string
  dup: boolean
}

// A broker process is SIGKILLed in the middle of a QoS 1 stream.
describe('KeyvBackend – a broker process killed mid-stream', function () {
  this.timeout(50_000)
  let server: RedisServer
  let procs: BrokerProcess[] = []
  const clients: MqttClient[] = []

  before(async () => {
    server = await startRedisServer()
    const prefix = randomRoot()
    procs = await Promise.all(['k1', 'k2', 'k3'].map((id) => spawnBroker(server.url, id, prefix, { HEARTBEAT_MS: '200' })))
  })

  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const p of procs) console.error(`${p.nodeId} stderr:\n${p.stderr()}`)
  })

  after(async () => {
    for (const c of clients) c.end(true)
    await Promise.all(procs.map((p) => stopBroker(p)))
    await server?.dispose()
  })

  it('delivers every acknowledged message to the reconnected subscriber, and publishes the dead process wills once', async () => {
    const [k1, k2, k3] = procs as [BrokerProcess, BrokerProcess, BrokerProcess]
    const got: Got[] = []
    const onMessage = (_topic: string, payload: Buffer, packet: IPublishPacket): void => {
      got.push({ payload: payload.toString(), dup: packet.dup })
    }
    const session = { clientId: 'durable', clean: false, protocolVersion: 5 as const, properties: { sessionExpiryInterval: 300 } }
    const sub = await connectMqtt(k1.port, session)
    clients.push(sub)
    sub.on('message', onMessage)
    await sub.subscribeAsync('stream/#', { qos: 1 })
    // A client of the doomed process with a will; watchers on the two others.
    const willer = await connectMqtt(k1.port, {
      clientId: 'willer',
      protocolVersion: 5,
      will: { topic: 'wills/willer', payload: Buffer.from('willer-died'), qos: 1, retain: false }
    })
    clients.push(willer)
    const wills: string[] = []
    for (const p of [k2, k3]) {
      const w = await connectMqtt(p.port, { clientId: `watch-${p.nodeId}`, protocolVersion: 5 })
      clients.push(w)
      w.on('message', (_t: string, payload: Buffer) => wills.push(`${p.nodeId}:${payload.toString()}`))
      await w.subscribeAsync('wills/#', { qos: 1 })
    }
    await sleep(200)
    const pub = await connectMqtt(k2.port, { clientId: 'streamer', protocolVersion: 5 })
    clients.push(pub)

    const acked: string[] = []
    let reconnected: Promise<MqttClient> | undefined
    for (let i = 0; i < 150; i++) {
      await pub.publishAsync(`stream/${i % 5}`, `m${i}`, { qos: 1 })
      acked.push(`m${i}`)
      if (i === 50) {
        await killBroker(k1)
        // The subscriber comes back on another process and resumes its session.
        reconnected = connectMqtt(k3.port, session).then((c) => {
          c.on('message', onMessage)
          return c
        })
      }
    }
    const again = await (reconnected as Promise<MqttClient>)
    clients.push(again)
    await waitFor(() => acked.every((p) => got.some((g) => g.payload === p)), 15_000, 'every acknowledged message')
    await sleep(1500) // the reaper ran on the survivors meanwhile; anything late would arrive
    // Every acknowledged message arrived; the first deliveries are in order [MQTT-4.6.0-5].
    const firsts: number[] = []
    const seen = new Set<string>()
    for (const g of got) {
      if (seen.has(g.payload)) {
        // A repeat is a redelivery of an unacknowledged message: DUP set [MQTT-4.4.0-1].
        assert.equal(g.dup, true, `duplicate ${g.payload} without DUP`)
        continue
      }
      seen.add(g.payload)
      firsts.push(Number(g.payload.slice(1)))
    }
    assert.deepEqual(firsts, Array.from({ length: 150 }, (_, i) => i))
    // The will of the killed process's client: published once, seen once by each watcher.
    assert.deepEqual(wills.sort(), ['k2:willer-died', 'k3:willer-died'])
  })

  it('accepts connections again on the survivors after the crash: takeover of an id the dead process held', async () => {
    const [, k2] = procs as [BrokerProcess, BrokerProcess, BrokerProcess]
    const c = mqtt.connect({ host: '127.0.0.1', port: k2.port, clientId: 'willer', protocolVersion: 5, reconnectPeriod: 0 })
    clients.push(c)
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      c.once('connect', resolve)
      c.once('error', reject)
    })
    // The dead process's clean session was released by the reaper.
    assert.equal(connack.sessionPresent, false)
  })
})
