/**
 * What watching the broker costs: CPU time of one round of a Prometheus scrape (`/metrics`, with
 * prom-client's default metrics) plus the requests an open dashboard makes each second
 * (`/api/v1/overview`, `/api/v1/clients`), with N connected MQTT clients. The HTTP client runs in
 * the same process, so its CPU is counted too (pessimistic). One round per second costs
 * `ms per round / 1000` of one core: the most throughput it can take from a saturated broker.
 *
 *   node --import tsx benchmarks/broker/observe-cost.ts [--clients 1000] [--rounds 50]
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { Broker, MemoryBackend, listenHttp } from '../../lib/index.js'

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : Number(process.argv[i + 1])
}
const clients = arg('clients', 1000)
const rounds = arg('rounds', 50)

const broker = new Broker({ backend: new MemoryBackend() })
const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
const http = await listenHttp(broker, { port: 0, defaultMetrics: process.env.DEFAULT_METRICS !== '0' })
// Raw MQTT 3.1.1 CONNECTs (clean session, keepalive 0): cheap, no client library in the way.
const sockets = await Promise.all(
  Array.from({ length: clients }, (_, i) => new Promise<Socket>((resolve, reject) => {
    const id = Buffer.from(`c${i}`)
    const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0, 0, id.length]), id])
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body])))
    socket.once('data', () => resolve(socket))
    socket.once('error', reject)
  }))
)
const round = async (): Promise<void> => {
  await Promise.all((process.env.PATHS?.split(',') ?? ['/metrics', '/api/v1/overview', '/api/v1/clients?limit=200']).map(async (path) => {
    const response = await fetch(http.url + path)
    await response.arrayBuffer()
    if (!response.ok) throw new Error(`${path}: ${response.status}`)
  }))
}
for (let i = 0; i < 5; i++) await round() // warm-up
const start = process.cpuUsage()
const t0 = performance.now()
for (let i = 0; i < rounds; i++) await round()
const cpu = process.cpuUsage(start)
const ms = (cpu.user + cpu.system) / 1000 / rounds
const row = { clients, rounds, cpuMsPerRound: Number(ms.toFixed(2)), wallMsPerRound: Number(((performance.now() - t0) / rounds).toFixed(2)), shareOfOneCoreAt1Hz: `${(ms / 10).toFixed(2)} %` }
process.stdout.write(`${JSON.stringify(row)}\n`)
for (const socket of sockets) socket.destroy()
await http.close()
await broker.close()
