import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import { freePort } from '../../benchmarks/broker/targets.js'
import { latencyTable, type RunRecord } from '../../benchmarks/broker/report.js'
import type { LatencyResult } from '../../lib/bench/latency.js'

const SERVERS = fileURLToPath(new URL('../../benchmarks/broker/servers/', import.meta.url))

/** Starts a floor target script and resolves with its port once it says `listening`. */
async function startFloor (script: string, children: ChildProcess[]): Promise<number> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', SERVERS + script, '--port', String(port)], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  let out = ''
  for await (const chunk of child.stdout!) {
    out += String(chunk)
    if (out.includes(`listening ${port}`)) break
  }
  return port
}

// The Node.js floor targets of the benchmark (servers/floor-forwarder.ts) must forward what a real
// client sends, or their figures would be the floor of nothing.
describe('benchmarks: the Node.js floor forwarder', function () {
  this.timeout(30_000)
  const children: ChildProcess[] = []
  const clients: mqtt.MqttClient[] = []

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = once(child, 'exit')
        child.kill('SIGKILL')
        await gone
      }
    }
  })

  for (const script of ['node-floor.ts', 'node-floor-onread.ts']) {
    it(`${script}: MQTT.js subscribes, gets QoS 0 and QoS 1 messages byte for byte, a wildcard is refused`, async () => {
      const port = await startFloor(script, children)
      const open = async (clientId: string): Promise<mqtt.MqttClient> => {
        const c = await mqtt.connectAsync({ host: '127.0.0.1', port, clientId, protocolVersion: 4, reconnectPeriod: 0 })
        clients.push(c)
        return c
      }
      const sub = await open('floor-sub')
      const granted = await sub.subscribeAsync('floor/a', { qos: 1 })
      assert.deepEqual(granted.map((g) => [g.topic, g.qos]), [['floor/a', 1]])
      await assert.rejects(sub.subscribeAsync('floor/#', { qos: 0 }), (err: Error & { packet?: { granted?: number[] } }) => {
        assert.deepEqual(err.packet?.granted, [0x80])
        return true
      })
      const pub = await open('floor-pub')
      const got: Array<[string, string, number]> = []
      const all = new Promise<void>((resolve) => {
        sub.on('message', (topic, payload, packet) => {
          got.push([topic, payload.toString(), packet.qos])
          if (got.length === 3) resolve()
        })
      })
      await pub.publishAsync('floor/b', 'not subscribed', { qos: 0 })
      await pub.publishAsync('floor/a', 'zero', { qos: 0 })
      await pub.publishAsync('floor/a', 'one', { qos: 1 }) // resolves on the floor's PUBACK
      const big = Array.from({ length: 10_000 }, (_, i) => String(i % 9_973).padStart(7, '.')).join('')
      await pub.publishAsync('floor/a', big, { qos: 0 }) // 70,000 B: spans several reads
      await all
      assert.deepEqual(got.slice(0, 2), [['floor/a', 'zero', 0], ['floor/a', 'one', 1]])
      assert.equal(got[2]![1].length, 70_000)
      assert.ok(got[2]![1] === big, 'the large message arrived unchanged')
    })
  }

  it('the latency table pairs each repetition with Mosquitto\'s and counts the ones no worse', () => {
    const rec = (target: RunRecord['target'], rep: number, p99: number): RunRecord =>
      ({ scenario: 'latency', target, rep, backgroundCpuPct: 0, result: { ok: true, p50: 0.1, p99, p999: 1, max: 2, achievedRate: 2000, lost: 0, brokerCpuPct: 5 } as LatencyResult })
    const table = latencyTable([
      rec('ours', 1, 0.3), rec('mosquitto', 1, 0.2), rec('ours', 2, 0.2), rec('mosquitto', 2, 0.25), rec('node-floor', 1, 0.2), rec('node-floor', 2, 0.5)
    ], ['ours', 'node-floor', 'mosquitto'])
    assert.match(table, /^ours: p99 ÷ mosquitto per repetition 1\.50, 0\.80; no worse in 1 of 2$/m)
    assert.match(table, /^node-floor: p99 ÷ mosquitto per repetition 1\.00, 2\.00; no worse in 1 of 2$/m)
  })
})
