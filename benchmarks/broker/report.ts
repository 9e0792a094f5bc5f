/**
 * Turns the runner's records into the printed tables (Markdown): throughput, latency and idle
 * connections, with medians over repetitions and ratios against Mosquitto and Aedes.
 */
import type { ScenarioName } from '../../lib/bench/scenarios.js'
import type { ThroughputResult } from '../../lib/bench/throughput.js'
import type { LatencyResult } from '../../lib/bench/latency.js'
import type { ConnectionsResult } from '../../lib/bench/connections.js'
import type { ScenarioResult } from '../../lib/bench/scenarios.js'
import type { TargetName } from './targets.js'

/** One measured run. */
export interface RunRecord {
  scenario: ScenarioName
  target: TargetName
  rep: number
  result: ScenarioResult
  /** CPU used by everything else on the machine during the run, in % of one core. */
  backgroundCpuPct: number
}

/** Median of a list (NaN for an empty list). */
export function median (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const int = (x: number): string => Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–'
const dec = (x: number, d = 2): string => Number.isFinite(x) ? x.toFixed(d) : '–'
const ratio = (a: number, b: number | undefined): string =>
  b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '–' : (a / b).toFixed(a / b >= 10 ? 1 : 2)

function status (rs: RunRecord[]): string {
  const bad = rs.filter((r) => !r.result.ok)
  return bad.length === 0 ? 'ok' : `FAIL ${bad.length}/${rs.length}: ${bad[0]!.result.problem ?? ''}`
}

function group (records: RunRecord[], scenario: ScenarioName, targets: TargetName[]): Map<TargetName, RunRecord[]> {
  const m = new Map<TargetName, RunRecord[]>()
  for (const t of targets) {
    const rs = records.filter((r) => r.scenario === scenario && r.target === t)
    if (rs.length > 0) m.set(t, rs)
  }
  return m
}

/** The throughput table: one row per scenario and target. */
export function throughputTable (records: RunRecord[], scenarios: ScenarioName[], targets: TargetName[]): string {
  const lines = [
    '| scenario | target | deliveries/s | min–max | × mosquitto | × aedes | per broker CPU-s | × mosquitto | × aedes | broker CPU % | gen CPU % | other CPU % | runs |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
  ]
  for (const sc of scenarios) {
    const g = group(records, sc, targets)
    const med = new Map<TargetName, { rate: number; perCpu: number }>()
    for (const [t, rs] of g) {
      const res = rs.map((r) => r.result as ThroughputResult)
      med.set(t, { rate: median(res.map((x) => x.deliveriesPerSec)), perCpu: median(res.map((x) => x.perBrokerCpuSec)) })
    }
    let first = true
    for (const [t, rs] of g) {
      const res = rs.map((r) => r.result as ThroughputResult)
      const m = med.get(t)!
      const rates = res.map((x) => x.deliveriesPerSec)
      lines.push(`| ${first ? sc : ''} | ${t} | ${int(m.rate)} | ${int(Math.min(...rates))}–${int(Math.max(...rates))} | ` +
        `${t === 'mosquitto' ? '' : ratio(m.rate, med.get('mosquitto')?.rate)} | ${t === 'aedes' ? '' : ratio(m.rate, med.get('aedes')?.rate)} | ` +
        `${int(m.perCpu)} | ${t === 'mosquitto' ? '' : ratio(m.perCpu, med.get('mosquitto')?.perCpu)} | ` +
        `${t === 'aedes' ? '' : ratio(m.perCpu, med.get('aedes')?.perCpu)} | ${int(median(res.map((x) => x.brokerCpuPct)))} | ` +
        `${int(median(res.map((x) => x.generatorCpuPct)))} | ${int(median(rs.map((r) => r.backgroundCpuPct)))} | ${status(rs)} |`)
      first = false
    }
  }
  return lines.join('\n')
}

/** The latency table of one latency scenario: medians over repetitions of each percentile. */
export function latencyTable (records: RunRecord[], targets: TargetName[], scenario: 'latency' | 'latency-q1' = 'latency'): string {
  const g = group(records, scenario, targets)
  const p99 = new Map<TargetName, number>()
  for (const [t, rs] of g) p99.set(t, median(rs.map((r) => (r.result as LatencyResult).p99)))
  const lines = [
    '| target | p50 ms | p99 ms | p99 ÷ mosquitto | p99 ÷ aedes | p99.9 ms | max ms | rate msg/s | lost | broker CPU % | other CPU % | runs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
  ]
  for (const [t, rs] of g) {
    const res = rs.map((r) => r.result as LatencyResult)
    const m = (f: (x: LatencyResult) => number): number => median(res.map(f))
    lines.push(`| ${t} | ${dec(m((x) => x.p50), 3)} | ${dec(p99.get(t)!, 3)} | ${t === 'mosquitto' ? '' : ratio(p99.get(t)!, p99.get('mosquitto'))} | ` +
      `${t === 'aedes' ? '' : ratio(p99.get(t)!, p99.get('aedes'))} | ${dec(m((x) => x.p999), 3)} | ${dec(m((x) => x.max), 3)} | ` +
      `${int(m((x) => x.achievedRate))} | ${int(res.reduce((n, x) => n + x.lost, 0))} | ${int(m((x) => x.brokerCpuPct))} | ` +
      `${int(median(rs.map((r) => r.backgroundCpuPct)))} | ${status(rs)} |`)
  }
  const paired = pairedP99(g)
  return paired === '' ? lines.join('\n') : lines.join('\n') + '\n\n' + paired
}

/**
 * Each target's p99 against Mosquitto's, repetition by repetition (the runner interleaves the
 * targets, so repetition i of each ran next to each other): the ratios and in how many of them the
 * target was no worse. Empty without Mosquitto.
 */
function pairedP99 (g: Map<TargetName, RunRecord[]>): string {
  const reference = g.get('mosquitto')
  if (reference === undefined) return ''
  const byRep = new Map(reference.map((r) => [r.rep, (r.result as LatencyResult).p99]))
  const lines: string[] = []
  for (const [t, rs] of g) {
    if (t === 'mosquitto') continue
    const ratios: number[] = []
    for (const r of [...rs].sort((a, b) => a.rep - b.rep)) {
      const m = byRep.get(r.rep)
      if (m !== undefined && m > 0) ratios.push((r.result as LatencyResult).p99 / m)
    }
    if (ratios.length === 0) continue
    lines.push(`${t}: p99 ÷ mosquitto per repetition ${ratios.map((x) => x.toFixed(2)).join(', ')}; ` +
      `no worse in ${ratios.filter((x) => x <= 1).length} of ${ratios.length}`)
  }
  return lines.join('\n')
}

/** The idle-connections table: RSS bytes per connection and connect rate. */
export function connectionsTable (records: RunRecord[], targets: TargetName[]): string {
  const g = group(records, 'connections', targets)
  const per = new Map<TargetName, number>()
  for (const [t, rs] of g) per.set(t, median(rs.map((r) => (r.result as ConnectionsResult).bytesPerConn)))
  const lines = [
    '| target | connections | conn/s | connect p99 ms | RSS before MB | RSS after MB | bytes/conn | min–max | × mosquitto | × aedes | runs |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|'
  ]
  for (const [t, rs] of g) {
    const res = rs.map((r) => r.result as ConnectionsResult)
    const m = (f: (x: ConnectionsResult) => number): number => median(res.map(f))
    const b = res.map((x) => x.bytesPerConn)
    lines.push(`| ${t} | ${int(m((x) => x.connected))} | ${int(m((x) => x.connPerSec))} | ${dec(m((x) => x.connectP99Ms), 1)} | ` +
      `${dec(m((x) => x.rssBeforeBytes) / 2 ** 20, 1)} | ${dec(m((x) => x.rssAfterBytes) / 2 ** 20, 1)} | ${int(per.get(t)!)} | ` +
      `${int(Math.min(...b))}–${int(Math.max(...b))} | ${t === 'mosquitto' ? '' : ratio(per.get(t)!, per.get('mosquitto'))} | ` +
      `${t === 'aedes' ? '' : ratio(per.get(t)!, per.get('aedes'))} | ${status(rs)} |`)
  }
  return lines.join('\n')
}
