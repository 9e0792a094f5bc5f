/**
 * What watching the broker costs: CPU time of one round of a Prometheus scrape (`/metrics`, with
 * prom-client's default metrics) plus the requests an open dashboard makes each second
 * (`/api/v1/overview`, `/api/v1/clients?limit=200`), with N connected MQTT clients. One round per
 * second costs `ms per round / 1000` of one core: the most throughput it can take from a saturated
 * broker.
 *
 *   node --import tsx benchmarks/broker/observe-cost.ts [--clients 1000] [--rounds 50]
 *     [--interval-ms 0] [--client in-process|external]
 *
 * - `--client in-process` (default): the HTTP client (fetch) runs in the broker's process, and its
 *   CPU is counted too (pessimistic).
 * - `--client external`: the requests come from a child process, as Prometheus' and a browser's do;
 *   only the broker's side is counted.
 * - `--interval-ms 1000`: one round per second, as a scrape and an open dashboard make them. Code
 *   that runs once a second stays cold (interpreted, not optimised): a round costs more than
 *   back-to-back rounds (`--interval-ms 0`) show. The broker's own idle CPU over as long a time
 *   (measured first, without requests) is subtracted.
 *
 * `PATHS=/metrics,/healthz` picks the requests; `DEFAULT_METRICS=0` leaves prom-client's runtime
 * metrics out.
 */
import { fork } from 'node:child_process'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Broker, MemoryBackend, listenHttp } from '../../lib/index.js'

const PATHS = process.env.PATHS?.split(',') ?? ['/metrics', '/api/v1/overview', '/api/v1/clients?limit=200']

/** One round of requests against `base`. */
async function round(base: string): Promise<void> {
  await Promise.all(
    PATHS.map(async (path) => {
      const response = await fetch(base + path)
      await response.arrayBuffer()
      if (!response.ok) throw new Error(`${path}: ${response.status}`)
    })
  )
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

if (process.env.OBSERVE_COST_CLIENT !== undefined) {
  // The external client: rounds against the URL it was given, paced as told; says when done.
  const [base, count, interval] = process.env.OBSERVE_COST_CLIENT.split(' ') as [string, string, string]
  for (let i = 0; i < Number(count); i++) {
    const started = performance.now()
    await round(base)
    await sleep(Math.max(0, Number(interval) - (performance.now() - started)))
  }
  process.exit(0)
}

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? fallback : (process.argv[i + 1] ?? fallback)
}
const clients = Number(arg('clients', '1000'))
const rounds = Number(arg('rounds', '50'))
const interval = Number(arg('interval-ms', '0'))
const external = arg('client', 'in-process') === 'external'

const broker = new Broker({ backend: new MemoryBackend() })
const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
const http = await listenHttp(broker, { port: 0, defaultMetrics: process.env.DEFAULT_METRICS !== '0' })
// Raw MQTT 3.1.1 CONNECTs (clean session, keepalive 0): cheap, no client library in the way.
const sockets = await Promise.all(
  Array.from(
    { length: clients },
    (_, i) =>
      new Promise<Socket>((resolve, reject) => {
        const id = Buffer.from(`c${i}`)
        const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0, 0, id.length]), id])
        const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body])))
        socket.once('data', () => resolve(socket))
        socket.once('error', reject)
      })
  )
)

/** Runs `n` rounds (in this process or the child), paced by `interval`. */
async function rounds_(n: number): Promise<void> {
  if (!external) {
    for (let i = 0; i < n; i++) {
      const started = performance.now()
      await round(http.url)
      if (interval > 0) await sleep(Math.max(0, interval - (performance.now() - started)))
    }
    return
  }
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, OBSERVE_COST_CLIENT: `${http.url} ${n} ${interval}` }, execArgv: process.execArgv })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`the client process exited with ${String(code)}`)
}

// Warm-up rounds only when they run back to back: paced rounds are measured cold, as they are met.
if (interval === 0) await rounds_(5)
let idleMs = 0
if (interval > 0) {
  // The broker's own CPU without requests over as long a time (its timers): subtracted below.
  const idle0 = process.cpuUsage()
  await sleep(rounds * interval)
  const idle = process.cpuUsage(idle0)
  idleMs = (idle.user + idle.system) / 1000
}
const start = process.cpuUsage()
const t0 = performance.now()
await rounds_(rounds)
const cpu = process.cpuUsage(start)
const ms = ((cpu.user + cpu.system) / 1000 - idleMs) / rounds
const row = {
  clients,
  rounds,
  intervalMs: interval,
  client: external ? 'external' : 'in-process',
  paths: PATHS.join(','),
  cpuMsPerRound: Number(ms.toFixed(2)),
  wallMsPerRound: Number(((performance.now() - t0) / rounds).toFixed(2)),
  shareOfOneCoreAt1Hz: `${(ms / 10).toFixed(2)} %`
}
process.stdout.write(`${JSON.stringify(row)}\n`)
for (const socket of sockets) socket.destroy()
await http.close()
await broker.close()
