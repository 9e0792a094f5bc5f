import assert from 'node:assert/strict'
import mqtt from 'mqtt'
import type { IPublishPacket, MqttClient } from 'mqtt'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, sleep, waitFor } from './nodes.js'
import { connectMqtt, spawnBroker, stopBroker } from './processes.js'
import type { BrokerProcess } from './processes.js'

/** Resolves with the promise's value, or rejects after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([promise, new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))])
  } finally {
    clearTimeout(timer)
  }
}

// Redis goes away for a few seconds while two broker processes carry a QoS 1 stream.
describe('KeyvBackend – Redis stopped during a QoS 1 stream (broker processes)', function () {
  this.timeout(50_000)
  let server: RedisServer
  let procs: BrokerProcess[] = []
  const clients: MqttClient[] = []

  before(async () => {
    // AOF, so that a restarted Redis still has the sessions and queues (docs/redis-backend.md).
    server = await startRedisServer({ appendonly: true })
    const prefix = randomRoot()
    procs = await Promise.all(['o1', 'o2'].map((id) => spawnBroker(server.url, id, prefix)))
  })

  afterEach(function () {
    if (this.currentTest?.state === 'failed') for (const p of procs) console.error(`${p.nodeId} stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`)
  })

  after(async () => {
    for (const c of clients) c.end(true)
    await Promise.all(procs.map((p) => stopBroker(p)))
    await server?.dispose()
  })

  it('loses no acknowledged message, reports one outage per process, leaves no rejection unhandled', async () => {
    const [o1, o2] = procs as [BrokerProcess, BrokerProcess]
    const got = new Set<string>()
    // The subscriber reconnects by itself (the broker may drop it while Redis is away).
    const sub = mqtt.connect({
      host: '127.0.0.1',
      port: o1.port,
      clientId: 'outage-sub',
      clean: false,
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 300 },
      reconnectPeriod: 300,
      reconnectOnConnackError: true
    })
    clients.push(sub)
    sub.on('message', (_t: string, payload: Buffer, _p: IPublishPacket) => got.add(payload.toString()))
    sub.on('error', () => undefined)
    await new Promise((resolve) => sub.once('connect', resolve))
    await sub.subscribeAsync('out/#', { qos: 1 })
    await sleep(100)
    const pub = await connectMqtt(o2.port, { clientId: 'outage-pub', protocolVersion: 5, reconnectPeriod: 300, reconnectOnConnackError: true })
    pub.on('error', () => undefined)
    clients.push(pub)

    const acked: string[] = []
    let refused = 0
    const stopAt = 30
    let outage: Promise<void> | undefined
    for (let i = 0; i < 80; i++) {
      if (i === stopAt) {
        outage = (async () => {
          await server.stop()
          await sleep(2500)
          await server.restart()
        })()
      }
      // A publish the broker could not store is not acknowledged: the publisher tries again.
      const payload = `m${i}`
      for (;;) {
        try {
          await within(pub.publishAsync(`out/${i % 4}`, payload, { qos: 1 }), 1500)
          acked.push(payload)
          break
        } catch {
          refused++
          await sleep(200)
        }
      }
      await sleep(10)
    }
    await outage
    await waitFor(() => acked.every((p) => got.has(p)), 15_000, 'every acknowledged message')
    assert.equal(acked.length, 80)
    assert.ok(refused > 0, 'the outage was noticed by the publisher')
    await sleep(500)
    for (const p of procs) {
      assert.equal(p.stdout().match(/event unavailable/g)?.length, 1, `${p.nodeId}: one unavailable event`)
      assert.equal(p.stdout().match(/event available/g)?.length, 1, `${p.nodeId}: one available event`)
      assert.doesNotMatch(p.stderr(), /UNHANDLED/)
      assert.equal(p.child.exitCode, null, `${p.nodeId} is still running`)
    }
  })
})
