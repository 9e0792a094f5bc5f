/**
 * Fan-in and fan-out throughput over one or more broker processes: the generator of
 * benchmarks/broker (`runThroughput` with several targets, imported, not copied) with
 * clients spread over the processes the way a load balancer would: client k connects to process
 * k mod N, subscribers first from process 1, publishers from process 0, so that with two processes
 * a fan-in subscriber sits on another process than half of the publishers, and half of a fan-out's
 * subscribers on another process than the publisher. Lost and duplicate deliveries are counted
 * exactly, as in benchmarks/broker.
 */
import type { ConnTarget } from '../../lib/bench/conn.js'
import { runThroughput } from '../../lib/bench/throughput.js'

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

/** Runs one scenario against listening brokers (`runThroughput` over several processes). */
export async function runClusterThroughput(o: ClusterRunOptions): Promise<ClusterRunResult> {
  const [first, ...rest] = o.pids
  const r = await runThroughput({
    target: o.targets[0] as ConnTarget,
    targets: o.targets,
    ...(first === undefined ? {} : { brokerPid: first }),
    otherPids: rest,
    // Subscriptions made on one process reach the others through Redis: let them settle.
    settleMs: o.targets.length > 1 ? 300 : 0,
    topology: o.topology,
    qos: o.qos,
    width: o.width,
    count: o.count,
    payload: o.payload,
    window: o.window,
    batch: o.batch,
    runId: o.runId,
    timeoutMs: o.timeoutMs,
    stallMs: o.stallMs
  })
  const result: ClusterRunResult = {
    ok: r.ok,
    expected: r.expected,
    deliveries: r.deliveries,
    lost: r.lost,
    duplicates: r.duplicates,
    seconds: Math.round(r.seconds * 1000) / 1000,
    deliveriesPerSec: r.deliveriesPerSec,
    brokerCpuPct: r.brokerCpuPct
  }
  if (r.problem !== undefined) result.problem = r.problem
  return result
}
