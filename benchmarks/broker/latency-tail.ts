/**
 * Where a latency run's tail comes from: reads the per-delivery dumps of the latency scenario
 * (`BENCH_LATENCY_DUMP=DIR`) and the GC / loop-stall traces of `latency-trace.mjs` (same DIR via
 * `BROKER_TRACE_DIR`), and prints per run p50 / p99 / p99.9 and, for every delivery slower than
 * `--slow` ms, what overlapped its flight: a GC or a loop stall in the broker, in the generator, both,
 * or nothing recorded. See benchmarks/broker/README.md, "The latency tail".
 *
 *   node --import tsx benchmarks/broker/latency-tail.ts DIR [--slow 0.4]
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

interface TraceEvent { kind: 'gc' | 'stall'; at: number; ms: number }

const args = process.argv.slice(2)
const dir = args[0]
if (dir === undefined) throw new Error('usage: latency-tail.ts DIR [--slow MS]')
const slowAt = args.includes('--slow') ? Number(args[args.indexOf('--slow') + 1]) : 0.4

const traces = new Map<string, TraceEvent[]>()
for (const f of readdirSync(dir)) {
  const m = /^trace-(\d+)\.txt$/.exec(f)
  if (m === null) continue
  const events: TraceEvent[] = []
  for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
    const [kind, at, ms] = line.split(' ')
    if (kind === 'gc' || kind === 'stall') events.push({ kind, at: Number(at), ms: Number(ms) })
  }
  traces.set(m[1]!, events)
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
const runs = readdirSync(dir).filter((f) => /^b\d+r\d+\.txt$/.test(f)).sort((a, b) => Number(/r(\d+)/.exec(a)![1]) - Number(/r(\d+)/.exec(b)![1]))
for (const f of runs) {
  const [header = '', ...lines] = readFileSync(join(dir, f), 'utf8').trim().split('\n')
  const brokerPid = /brokerPid (\d*)/.exec(header)?.[1] ?? ''
  const generatorPid = /generatorPid (\d*)/.exec(header)?.[1] ?? ''
  const rows = lines.map((l) => l.split(' ').map(Number) as [number, number])
  const sorted = rows.map((r) => r[1]).sort((a, b) => a - b)
  const sources: Array<[string, TraceEvent[]]> = [
    ['broker GC', (traces.get(brokerPid) ?? []).filter((e) => e.kind === 'gc')],
    ['broker stall', (traces.get(brokerPid) ?? []).filter((e) => e.kind === 'stall')],
    ['generator GC', (traces.get(generatorPid) ?? []).filter((e) => e.kind === 'gc')],
    ['generator stall', (traces.get(generatorPid) ?? []).filter((e) => e.kind === 'stall')]
  ]
  const t0 = rows[0]?.[0] ?? 0
  const t1 = rows.length > 0 ? rows[rows.length - 1]![0] + rows[rows.length - 1]![1] : 0
  const inRun = (es: TraceEvent[]): TraceEvent[] => es.filter((e) => e.at >= t0 && e.at <= t1)
  const causes = new Map<string, number>()
  let slow = 0
  for (const [sent, ms] of rows) {
    if (ms <= slowAt) continue
    slow++
    const hit = sources.filter(([, es]) => es.some((e) => e.at < sent + ms && e.at + e.ms > sent - 0.1)).map(([name]) => name)
    const key = hit.length > 0 ? hit.join(' + ') : 'nothing recorded'
    causes.set(key, (causes.get(key) ?? 0) + 1)
  }
  const gcs = inRun(sources[0]![1])
  process.stdout.write(`${f} ${traces.has(brokerPid) ? 'traced broker' : 'untraced broker'} ${brokerPid}: ` +
    `p50 ${quantile(sorted, 0.5).toFixed(3)} p99 ${quantile(sorted, 0.99).toFixed(3)} p99.9 ${quantile(sorted, 0.999).toFixed(3)} max ${sorted[sorted.length - 1]!.toFixed(3)} ms; ` +
    `broker GCs ${gcs.length} (${gcs.reduce((s, e) => s + e.ms, 0).toFixed(1)} ms), generator GCs ${inRun(sources[2]![1]).length}; ` +
    `${slow} deliveries > ${slowAt} ms: ${[...causes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}\n`)
}
