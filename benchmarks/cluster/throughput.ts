/**
 * Fan-in and fan-out throughput over one or more broker processes: the generator of
 * benchmarks/broker (its connections, publishers and subscribers, imported, not copied) with
 * clients spread over the processes the way a load balancer would: client k connects to process
 * k mod N, subscribers first from process 1, publishers from process 0, so that with two processes
 * a fan-in subscriber sits on another process than half of the publishers, and half of a fan-out's
 * subscribers on another process than the publisher. Lost and duplicate deliveries are counted
 * exactly, as in benchmarks/broker.
 */
import { performance } from 'node:perf_hooks'
import { Conn, type ConnTarget } from '../broker/load/conn.js'
import { Publisher, Subscriber, type Tally } from '../broker/load/roles.js'
import { cpuTimes, cpuDelta } from '../broker/load/proc.js'
import { closeAll, mapLimit } from '../broker/load/throughput.js'

/** One cluster throughput run. */
export interface ClusterRunOptions {
  targets: ConnTarget[]
  /** Broker process ids (CPU figures: the sum over the processes). */
  pids: number[]
  topology: 'fanin' | 'fanout'
  qos: 0 | 1
  /** fanin: publishers; fanout: subscribers. */
  width: number
  /** Messages per publisher. */
  count: number
  payload: number
  window: number
  batch: number
  runId: string
  timeoutMs: number
  stallMs: number
}

/** What one run measured. */
export interface ClusterRunResult {
  ok: boolean
  problem?: string
  expected: number
  deliveries: number
  lost: number
  duplicates: number
  seconds: number
  deliveriesPerSec: number
  /** Broker CPU (all processes, user + sys) as % of one core. */
  brokerCpuPct: number
}

/** Runs one scenario against listening brokers. */
export async function runClusterThroughput(o: ClusterRunOptions): Promise<ClusterRunResult> {
  const n = o.targets.length
  const nPub = o.topology === 'fanout' ? 1 : o.width
  const nSub = o.topology === 'fanin' ? 1 : o.width
  const topic = `bench/${o.runId}/${o.topology}`
  const conns: Conn[] = []
  let problem: string | undefined
  let finish: () => void = () => undefined
  const finished = new Promise<void>((resolve) => (finish = resolve))
  let expected = 0
  let totalToSend = 0
  const tally: Tally = {
    deliveries: 0,
    duplicates: 0,
    foreign: 0,
    acked: 0,
    lastDeliveryAt: 0,
    check() {
      if (this.deliveries >= expected && (o.qos === 0 || this.acked >= totalToSend)) finish()
    }
  }
  const onClose = (c: Conn): void => {
    problem ??= `a connection closed during the run${c.error !== undefined ? `: ${c.error.message}` : ''}`
    finish()
  }
  try {
    const subs = await mapLimit(Array.from({ length: nSub }, (_, i) => i), 50, async (j) => {
      const c = await Conn.open(o.targets[(j + 1) % n] as ConnTarget, `${o.runId}-s${j}`)
      conns.push(c)
      const slots = new Int32Array(nPub)
      for (let i = 0; i < nPub; i++) slots[i] = i
      expected += nPub * o.count
      const s = new Subscriber(c, slots, nPub, o.count, tally)
      await c.subscribe(topic, o.qos)
      c.onClose = onClose
      return s
    })
    // Subscriptions made on one process reach the others through Redis: let them settle.
    await new Promise((resolve) => setTimeout(resolve, n > 1 ? 300 : 0))
    const pubs = await mapLimit(Array.from({ length: nPub }, (_, i) => i), 50, async (i) => {
      const c = await Conn.open(o.targets[i % n] as ConnTarget, `${o.runId}-p${i}`)
      conns.push(c)
      c.onClose = onClose
      return new Publisher(c, i, topic, o.payload, o.qos, o.count, o.batch, o.window, tally)
    })
    totalToSend = nPub * o.count
    const cpu0 = o.pids.map((pid) => cpuTimes(pid))
    const t0 = performance.now()
    tally.lastDeliveryAt = t0
    for (const p of pubs) p.start()
    let lastSeen = -1
    let lastProgressAt = t0
    const watchdog = setInterval(() => {
      const now = performance.now()
      const progress = tally.deliveries + tally.acked
      if (progress !== lastSeen) {
        lastSeen = progress
        lastProgressAt = now
      }
      if (now - lastProgressAt > o.stallMs) {
        problem ??= `no progress for ${o.stallMs} ms`
        finish()
      }
      if (now - t0 > o.timeoutMs) {
        problem ??= `time limit of ${o.timeoutMs} ms reached`
        finish()
      }
    }, 100)
    await finished
    clearInterval(watchdog)
    const tEnd = performance.now()
    const cpu1 = o.pids.map((pid) => cpuTimes(pid))
    const seconds = Math.max((problem === undefined ? tEnd : tally.lastDeliveryAt) - t0, 1e-3) / 1000
    let cpuSec = 0
    for (let k = 0; k < o.pids.length; k++) {
      const d = cpuDelta(cpu0[k], cpu1[k])
      cpuSec += d.user + d.sys
    }
    const lost = expected - tally.deliveries
    if (lost > 0) problem = problem === undefined ? `${lost} lost` : `${problem}, ${lost} of ${expected} lost`
    if (problem === undefined && tally.duplicates > 0) problem = `${tally.duplicates} duplicates`
    const errors = pubs.reduce((s, p) => s + p.errors, 0) + subs.reduce((s, x) => s + x.errors, 0)
    if (problem === undefined && errors > 0) problem = `${errors} unexpected packets`
    const result: ClusterRunResult = {
      ok: problem === undefined,
      expected,
      deliveries: tally.deliveries,
      lost,
      duplicates: tally.duplicates,
      seconds: Math.round(seconds * 1000) / 1000,
      deliveriesPerSec: Math.round(tally.deliveries / seconds),
      brokerCpuPct: Math.round((cpuSec / seconds) * 100)
    }
    if (problem !== undefined) result.problem = problem
    return result
  } finally {
    await closeAll(conns)
  }
}
