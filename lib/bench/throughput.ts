/**
 * Throughput scenarios: fan-in (P publishers → 1 subscriber), fan-out (1 publisher → S
 * subscribers) and pairs (N publisher/subscriber pairs on their own topics), at QoS 0 or 1.
 *
 * All subscribers are connected and subscribed (SUBACK received) before the first PUBLISH. The
 * clock and the broker's CPU counters start when publishing starts and stop at the last delivery
 * (QoS 1: once every PUBACK is back too). A run ends by itself: when everything arrived, when
 * nothing arrived for `stallMs`, when a connection drops, or after `timeoutMs`.
 */
import { performance } from 'node:perf_hooks'
import { Conn, type ConnTarget } from './conn.js'
import { Publisher, Subscriber, MIN_PAYLOAD, type Tally } from './roles.js'
import { cpuTimes, cpuDelta, rssBytes, type CpuTimes } from './proc.js'

/** The three topologies. */
export type Topology = 'fanin' | 'fanout' | 'pairs'

/** Options of one throughput run. */
export interface ThroughputOptions {
  target: ConnTarget
  /**
   * Several broker processes forming one broker (benchmarks/cluster): client k of a role connects
   * to process k mod N, subscribers starting at process 1 and publishers at process 0, as a load
   * balancer would spread them. Default: every client on `target`.
   */
  targets?: ConnTarget[]
  /** Broker process id, for CPU and RSS (optional: without it those figures are 0). */
  brokerPid?: number
  /** More broker process ids whose CPU counts too (a cluster: CPU is the sum over processes). */
  otherPids?: number[]
  /** Wait this long after the last SUBACK before publishing (subscriptions crossing processes). */
  settleMs?: number
  topology: Topology
  qos: 0 | 1 | 2
  /** fanin: publishers; fanout: subscribers; pairs: pairs. */
  width: number
  /** Messages per publisher. */
  count: number
  payload: number
  /** QoS 1: unacknowledged messages per publisher. */
  window: number
  /** QoS 0: messages per write. */
  batch: number
  /** Unique prefix for client ids and topics (runs never see each other's messages). */
  runId: string
  timeoutMs: number
  stallMs: number
  /** Fan-in / fan-out subscribers subscribe to `#` (every topic) instead of the run's topic. */
  wildcard?: boolean
}

/** What one throughput run measured. */
export interface ThroughputResult {
  scenario: string
  ok: boolean
  /** Why the run is not ok, if it is not. */
  problem?: string
  publishers: number
  subscribers: number
  expected: number
  deliveries: number
  lost: number
  duplicates: number
  seconds: number
  deliveriesPerSec: number
  brokerCpu: CpuTimes
  /** Deliveries per second of broker CPU (user + sys); 0 when the CPU time is below one tick. */
  perBrokerCpuSec: number
  brokerCpuPct: number
  generatorCpuPct: number
  brokerRssBytes: number
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R> (items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** Runs one throughput scenario against a broker that is already listening. */
export async function runThroughput (o: ThroughputOptions): Promise<ThroughputResult> {
  if (o.payload < MIN_PAYLOAD) throw new Error(`payload must be at least ${MIN_PAYLOAD} bytes`)
  const nPub = o.topology === 'fanout' ? 1 : o.width
  const nSub = o.topology === 'fanin' ? 1 : o.width
  const topicOf = (i: number): string => o.topology === 'pairs' ? `bench/${o.runId}/pair/${i}` : `bench/${o.runId}/${o.topology}`
  const conns: Conn[] = []
  let problem: string | undefined
  let finish: () => void = () => {}
  const finished = new Promise<void>((resolve) => { finish = resolve })
  let expected = 0
  let totalToSend = 0
  const tally: Tally = {
    deliveries: 0,
    duplicates: 0,
    foreign: 0,
    acked: 0,
    lastDeliveryAt: 0,
    check () {
      if (this.deliveries >= expected && (o.qos === 0 || this.acked >= totalToSend)) finish()
    }
  }
  const onClose = (c: Conn): void => {
    problem ??= `a connection closed during the run${c.error !== undefined ? `: ${c.error.message}` : ''}`
    finish()
  }

  try {
    const targets = o.targets ?? [o.target]
    const subs = await mapLimit(Array.from({ length: nSub }, (_, i) => i), 50, async (j) => {
      const c = await Conn.open(targets[(j + 1) % targets.length] as ConnTarget, `${o.runId}-s${j}`)
      conns.push(c)
      const slots = new Int32Array(nPub).fill(-1)
      let nSlots = 0
      if (o.topology === 'pairs') slots[j] = nSlots++
      else for (let i = 0; i < nPub; i++) slots[i] = nSlots++
      expected += nSlots * o.count
      const s = new Subscriber(c, slots, nSlots, o.count, tally)
      await c.subscribe(o.wildcard === true && o.topology !== 'pairs' ? '#' : topicOf(o.topology === 'pairs' ? j : 0), o.qos)
      c.onClose = onClose
      return s
    })
    if (o.settleMs !== undefined && o.settleMs > 0) await new Promise((resolve) => setTimeout(resolve, o.settleMs))
    const pubs = await mapLimit(Array.from({ length: nPub }, (_, i) => i), 50, async (i) => {
      const c = await Conn.open(targets[i % targets.length] as ConnTarget, `${o.runId}-p${i}`)
      conns.push(c)
      c.onClose = onClose
      return new Publisher(c, i, topicOf(i), o.payload, o.qos, o.count, o.batch, o.window, tally)
    })
    totalToSend = nPub * o.count

    const pid = o.brokerPid
    const cpu0 = pid !== undefined ? cpuTimes(pid) : undefined
    const others0 = (o.otherPids ?? []).map((other) => cpuTimes(other))
    const gen0 = process.cpuUsage()
    const t0 = performance.now()
    tally.lastDeliveryAt = t0
    for (const p of pubs) p.start()

    let lastSeen = -1
    let lastProgressAt = t0
    const watchdog = setInterval(() => {
      const now = performance.now()
      const progress = tally.deliveries + tally.acked
      if (progress !== lastSeen) { lastSeen = progress; lastProgressAt = now }
      if (now - lastProgressAt > o.stallMs) { problem ??= `no progress for ${o.stallMs} ms`; finish() }
      if (now - t0 > o.timeoutMs) { problem ??= `time limit of ${o.timeoutMs} ms reached`; finish() }
    }, 100)
    await finished
    clearInterval(watchdog)
    const tEnd = performance.now()
    const cpu1 = pid !== undefined ? cpuTimes(pid) : undefined
    const others1 = (o.otherPids ?? []).map((other) => cpuTimes(other))
    const gen = process.cpuUsage(gen0)
    const rss = pid !== undefined ? (rssBytes(pid) ?? 0) : 0

    // A complete run ends at `finish` (last delivery, or last PUBACK at QoS 1); an incomplete one
    // at its last delivery, so that the stall wait does not count.
    const seconds = Math.max((problem === undefined ? tEnd : tally.lastDeliveryAt) - t0, 1e-3) / 1000
    const brokerCpu = cpuDelta(cpu0, cpu1)
    for (let k = 0; k < others0.length; k++) {
      const d = cpuDelta(others0[k], others1[k])
      brokerCpu.user += d.user
      brokerCpu.sys += d.sys
    }
    const cpuSec = brokerCpu.user + brokerCpu.sys
    const errors = pubs.reduce((n, p) => n + p.errors, 0) + subs.reduce((n, s) => n + s.errors, 0)
    const lost = expected - tally.deliveries
    if (lost > 0) problem = problem === undefined ? `${lost} lost` : `${problem}, ${lost} of ${expected} lost`
    if (problem === undefined && tally.duplicates > 0) problem = `${tally.duplicates} duplicates`
    if (problem === undefined && tally.foreign > 0) problem = `${tally.foreign} foreign deliveries`
    if (problem === undefined && errors > 0) problem = `${errors} unexpected packets`
    const res: ThroughputResult = {
      scenario: `${o.topology}-q${o.qos}`,
      ok: problem === undefined,
      publishers: nPub,
      subscribers: nSub,
      expected,
      deliveries: tally.deliveries,
      lost,
      duplicates: tally.duplicates,
      seconds: Math.round(seconds * 1e6) / 1e6,
      deliveriesPerSec: Math.round(tally.deliveries / seconds),
      brokerCpu,
      perBrokerCpuSec: cpuSec > 0 ? Math.round(tally.deliveries / cpuSec) : 0,
      brokerCpuPct: Math.round(cpuSec / seconds * 100),
      generatorCpuPct: Math.round((gen.user + gen.system) / 1e6 / ((tEnd - t0) / 1000) * 100),
      brokerRssBytes: rss
    }
    if (problem !== undefined) res.problem = problem
    return res
  } finally {
    await closeAll(conns)
  }
}

/** Ends every connection gracefully and waits (briefly) until they are closed. */
export async function closeAll (conns: Conn[], waitMs = 2000): Promise<void> {
  const open = conns.filter((c) => !c.closed)
  await Promise.race([
    Promise.all(open.map((c) => new Promise<void>((resolve) => {
      c.onClose = () => resolve()
      c.end()
      if (c.closed) resolve()
    }))),
    new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref())
  ])
  for (const c of conns) if (!c.closed) c.destroy()
}
