/**
 * The scenario catalogue shared by the standalone generator (`load.ts`) and the runner: names,
 * default sizes (those of research/node-performance.md) and one entry point that runs a scenario.
 */
import type { ConnTarget } from './conn.js'
import { runThroughput, type ThroughputResult, type Topology } from './throughput.js'
import { runLatency, type LatencyResult } from './latency.js'
import { runConnections, type ConnectionsResult } from './connections.js'

/** Every scenario, in run order. */
export const SCENARIOS = [
  'fanin-q0', 'fanin-q1', 'fanout-q0', 'fanout-q1', 'pairs-q0', 'pairs-q1', 'latency', 'latency-q1', 'connections',
  'fanin-q2', 'fanout-q2', 'pairs-q2'
] as const

/** A scenario name. */
export type ScenarioName = typeof SCENARIOS[number]

/** The paced-latency scenarios: `latency` at QoS 0, `latency-q1` at QoS 1 (both directions acknowledged). */
export function isLatencyScenario (name: string): name is 'latency' | 'latency-q1' {
  return name === 'latency' || name === 'latency-q1'
}

/** Sizes and knobs of every scenario. */
export interface Sizes {
  faninPublishers: number
  faninCount: number
  fanoutSubscribers: number
  fanoutCount: number
  pairs: number
  pairsCount: number
  payload: number
  window: number
  batch: number
  latencyRate: number
  latencySeconds: number
  connections: number
  connConcurrency: number
  holdMs: number
  timeoutMs: number
  stallMs: number
  /** 1: fan-in / fan-out subscribers subscribe to `#` instead of the run's topic (0: no). */
  wildcard: number
}

/** Defaults: fan-in 4→1 × 50,000, fan-out 1→100 × 2,000, 50 pairs × 2,000, 64 B, window 64,
 * latency 2,000 msg/s × 10 s, 10,000 idle connections at concurrency 100 held 3 s. */
export const DEFAULT_SIZES: Sizes = {
  faninPublishers: 4,
  faninCount: 50_000,
  fanoutSubscribers: 100,
  fanoutCount: 2_000,
  pairs: 50,
  pairsCount: 2_000,
  payload: 64,
  window: 64,
  batch: 64,
  latencyRate: 2_000,
  latencySeconds: 10,
  connections: 10_000,
  connConcurrency: 100,
  holdMs: 3_000,
  timeoutMs: 120_000,
  stallMs: 10_000,
  wildcard: 0
}

/** Command-line flag (kebab-case) for each size, e.g. `--fanin-count 500000`. */
export function sizeFlag (key: keyof Sizes): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())
}

/**
 * Reads size flags out of `args` (`--fanin-count N` ..., and `--scale X`, which multiplies the
 * three message counts). Returns the sizes and the arguments it did not consume.
 */
export function parseSizes (args: string[], base: Sizes = DEFAULT_SIZES): { sizes: Sizes; rest: string[] } {
  const sizes = { ...base }
  const rest: string[] = []
  const byFlag = new Map((Object.keys(sizes) as Array<keyof Sizes>).map((k) => [sizeFlag(k), k]))
  let scale = 1
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    const key = byFlag.get(a)
    if (key !== undefined || a === '--scale') {
      const v = Number(args[++i])
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`)
      if (key !== undefined) sizes[key] = v
      else scale = v
    } else {
      rest.push(a)
    }
  }
  sizes.faninCount = Math.round(sizes.faninCount * scale)
  sizes.fanoutCount = Math.round(sizes.fanoutCount * scale)
  sizes.pairsCount = Math.round(sizes.pairsCount * scale)
  return { sizes, rest }
}

/** A result of any scenario. */
export type ScenarioResult = ThroughputResult | LatencyResult | ConnectionsResult

/** Runs one scenario against a listening broker (`brokerPid` enables CPU and RSS figures). */
export function runScenario (name: ScenarioName, target: ConnTarget, brokerPid: number | undefined,
  sizes: Sizes, runId: string): Promise<ScenarioResult> {
  const pid = brokerPid !== undefined ? { brokerPid } : {}
  if (isLatencyScenario(name)) {
    return runLatency({ target, ...pid, rate: sizes.latencyRate, duration: sizes.latencySeconds,
      payload: sizes.payload, runId, drainMs: 2_000, qos: name === 'latency-q1' ? 1 : 0 })
  }
  if (name === 'connections') {
    return runConnections({ target, ...pid, count: sizes.connections, concurrency: sizes.connConcurrency,
      holdMs: sizes.holdMs, runId, keepalive: Math.max(60, Math.ceil(sizes.holdMs / 1000) * 2) })
  }
  const [topology, q] = name.split('-') as [Topology, string]
  const width = topology === 'fanin' ? sizes.faninPublishers : topology === 'fanout' ? sizes.fanoutSubscribers : sizes.pairs
  const count = topology === 'fanin' ? sizes.faninCount : topology === 'fanout' ? sizes.fanoutCount : sizes.pairsCount
  return runThroughput({ target, ...pid, topology, qos: q === 'q2' ? 2 : q === 'q1' ? 1 : 0, width, count, payload: sizes.payload,
    // QoS 2: at most 20 in flight per publisher: MQTT 3.1.1 has no Receive Maximum, and Mosquitto
    // (default max_inflight_messages 20) ignores incoming QoS 2 messages beyond that.
    window: q === 'q2' ? Math.min(sizes.window, 20) : sizes.window, batch: sizes.batch, runId, timeoutMs: sizes.timeoutMs, stallMs: sizes.stallMs,
    wildcard: sizes.wildcard > 0 })
}

/** Scales every message count of `sizes` by `f` (used for warm-up rounds). */
export function scaled (sizes: Sizes, f: number): Sizes {
  return {
    ...sizes,
    faninCount: Math.max(100, Math.round(sizes.faninCount * f)),
    fanoutCount: Math.max(100, Math.round(sizes.fanoutCount * f)),
    pairsCount: Math.max(100, Math.round(sizes.pairsCount * f)),
    latencySeconds: Math.max(1, sizes.latencySeconds * f)
  }
}
