/**
 * Latency scenario: one publisher → one subscriber at a fixed rate, QoS 0 or 1, each message stamped
 * with its send time; the subscriber records receive − send for every delivery. The publisher
 * runs in a worker thread (`paced-publisher.ts`) that sends each message in its own write, evenly
 * spaced; both stamp the same monotonic clock (`nowMs`).
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { Conn, withTimeout, type ConnTarget } from './conn.js'
import { Subscriber, type Tally } from './roles.js'
import type { PacedPublisherData, PacedPublisherMessage } from './paced-publisher.js'
import { cpuTimes, cpuDelta, type CpuTimes } from './proc.js'
import { closeAll } from './throughput.js'
import { fullGc } from './full-gc.js'

/** Options of one latency run. */
export interface LatencyOptions {
  target: ConnTarget
  brokerPid?: number
  /** Messages per second. */
  rate: number
  /** Seconds of publishing. */
  duration: number
  payload: number
  runId: string
  /** How long to wait for stragglers after the last send (ms). */
  drainMs: number
  /**
   * QoS of the publisher and the subscription (default 0). At QoS 1 the subscriber acknowledges
   * each delivery; the publisher's acknowledgements wait in its socket until the last message is
   * sent (its thread sleeps between sends), so `rate × duration` must stay below 65,535.
   */
  qos?: 0 | 1
}

/** What one latency run measured (milliseconds). */
export interface LatencyResult {
  scenario: string
  ok: boolean
  problem?: string
  sent: number
  deliveries: number
  lost: number
  duplicates: number
  achievedRate: number
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
  brokerCpu: CpuTimes
  brokerCpuPct: number
  generatorCpuPct: number
}

/** The q-quantile (0..1) of sorted values, nearest rank. */
export function quantile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]!
}

/** Runs the latency scenario against a broker that is already listening. */
export async function runLatency (o: LatencyOptions): Promise<LatencyResult> {
  const total = Math.round(o.rate * o.duration)
  const qos = o.qos ?? 0
  if (qos === 1 && total >= 65_535) throw new Error(`latency at QoS 1: ${total} messages would reuse packet identifiers (at most 65,534)`)
  const dumpDir = process.env.BENCH_LATENCY_DUMP
  const lat: { values: Float64Array; n: number; sentAt?: Float64Array } = { values: new Float64Array(total), n: 0 }
  if (dumpDir !== undefined) lat.sentAt = new Float64Array(total)
  const conns: Conn[] = []
  let done: () => void = () => {}
  const allIn = new Promise<void>((resolve) => { done = resolve })
  const tally: Tally = {
    deliveries: 0, duplicates: 0, foreign: 0, acked: 0, lastDeliveryAt: 0,
    check () { if (this.deliveries >= total) done() }
  }
  try {
    const sc = await Conn.open(o.target, `${o.runId}-s0`)
    conns.push(sc)
    const topic = `bench/${o.runId}/latency`
    const sub = new Subscriber(sc, new Int32Array([0]), 1, total, tally, lat)
    await sc.subscribe(topic, qos)
    const data: PacedPublisherData = { target: o.target, clientId: `${o.runId}-p0`, topic, payload: o.payload, rate: o.rate, count: total, qos }
    // Compiled (dist/*.js): load the sibling module. From source, workers do not inherit the tsx
    // loader: register it in the thread, then load the module.
    const compiled = import.meta.url.endsWith('.js')
    const entry = new URL(compiled ? './paced-publisher.js' : './paced-publisher.ts', import.meta.url).href
    const worker = compiled
      ? new Worker(new URL(entry), { workerData: data })
      : new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(entry)}) })`,
        { eval: true, workerData: data })
    let sent = 0
    let started: () => void = () => {}
    let ended: (err?: Error) => void = () => {}
    const ready = new Promise<void>((resolve) => { started = resolve })
    const finished = new Promise<void>((resolve, reject) => { ended = (err) => { if (err !== undefined) reject(err); else resolve() } })
    worker.on('message', (m: PacedPublisherMessage) => {
      if (m.type === 'ready') started()
      else if (m.type === 'done') { sent = m.sent; ended() } else { started(); ended(new Error(`publisher: ${m.message}`)) }
    })
    worker.on('error', (err) => { started(); ended(err) })
    worker.on('exit', () => { started(); ended(new Error('publisher thread exited early')) })
    await ready

    // The worker collected its heap before it said ready; now this thread (the subscriber's).
    fullGc()
    const pid = o.brokerPid
    const cpu0 = pid !== undefined ? cpuTimes(pid) : undefined
    const gen0 = process.cpuUsage()
    const t0 = performance.now()
    worker.postMessage('start')
    try {
      await withTimeout(finished, o.duration * 1000 + 30_000, 'the paced publisher')
    } finally {
      void worker.terminate()
    }
    const tSent = performance.now()
    await Promise.race([allIn, new Promise((resolve) => setTimeout(resolve, o.drainMs))])
    const tEnd = performance.now()
    const cpu1 = pid !== undefined ? cpuTimes(pid) : undefined
    const gen = process.cpuUsage(gen0)
    const brokerCpu = cpuDelta(cpu0, cpu1)
    if (dumpDir !== undefined) {
      // One line per delivery, in arrival order: send time and latency (ms, the `nowMs` clock).
      const lines = [`# runId ${o.runId} brokerPid ${o.brokerPid ?? ''} generatorPid ${process.pid}`]
      for (let i = 0; i < lat.n; i++) lines.push(`${lat.sentAt![i]!.toFixed(4)} ${lat.values[i]!.toFixed(4)}`)
      writeFileSync(join(dumpDir, `${o.runId}.txt`), lines.join('\n') + '\n')
    }
    const sorted = lat.values.subarray(0, lat.n).sort()
    let sum = 0
    for (let i = 0; i < sorted.length; i++) sum += sorted[i]!
    const lost = total - tally.deliveries
    const errors = sub.errors
    const problem = lost > 0 ? `${lost} lost` : tally.duplicates > 0 ? `${tally.duplicates} duplicates`
      : errors > 0 ? `${errors} unexpected packets` : undefined
    const seconds = (tEnd - t0) / 1000
    const r3 = (x: number): number => Math.round(x * 1000) / 1000
    const res: LatencyResult = {
      scenario: qos === 1 ? 'latency-q1' : 'latency',
      ok: problem === undefined,
      sent,
      deliveries: tally.deliveries,
      lost,
      duplicates: tally.duplicates,
      achievedRate: Math.round(sent / ((tSent - t0) / 1000)),
      p50: r3(quantile(sorted, 0.5)),
      p99: r3(quantile(sorted, 0.99)),
      p999: r3(quantile(sorted, 0.999)),
      max: r3(sorted.length > 0 ? sorted[sorted.length - 1]! : NaN),
      mean: r3(sorted.length > 0 ? sum / sorted.length : NaN),
      brokerCpu,
      brokerCpuPct: Math.round((brokerCpu.user + brokerCpu.sys) / seconds * 100),
      generatorCpuPct: Math.round((gen.user + gen.system) / 1e6 / seconds * 100)
    }
    if (problem !== undefined) res.problem = problem
    return res
  } finally {
    await closeAll(conns)
  }
}
