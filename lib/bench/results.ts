/**
 * Result records of `mqtt-bench` (one JSON line each), their headline figures, medians over
 * repetitions, the tables and the ratios of `compare`.
 */
import type { ScenarioResult } from './scenarios.js'

/** One scenario run against one broker, as written to the JSON lines. */
export type BenchRecord = ScenarioResult & {
  broker: string
  url: string
  rep: number
  time: string
}

/** The headline figure of a result and whether higher is better. */
export function headline(record: ScenarioResult): { value: number; unit: string; higherIsBetter: boolean } {
  if ('p50' in record) return { value: record.p99, unit: 'ms p99', higherIsBetter: false }
  if ('connPerSec' in record) return { value: record.connPerSec, unit: 'conn/s', higherIsBetter: true }
  return { value: record.deliveriesPerSec, unit: 'msg/s', higherIsBetter: true }
}

/** The median (mean of the middle two for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The median of a numeric field over the ok runs of `records`. */
export function medianOf(records: BenchRecord[], field: string): number {
  return median(records.filter((r) => r.ok).map((r) => (r as unknown as Record<string, number>)[field]!).filter((v) => Number.isFinite(v)))
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return '–'
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US')
  return value.toFixed(2)
}

/** A plain-text table (Markdown-compatible). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  return [line(header), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`, ...rows.map(line)].join('\n') + '\n'
}

/** The table of one broker's runs (medians per scenario). */
export function resultTable(records: BenchRecord[]): string {
  const rows: string[][] = []
  for (const scenario of unique(records.map((r) => r.scenario))) {
    const runs = records.filter((r) => r.scenario === scenario)
    const first = runs[0]!
    const ok = `${runs.filter((r) => r.ok).length}/${runs.length}`
    if ('p50' in first) rows.push([scenario, `${fmt(medianOf(runs, 'p50'))} / ${fmt(medianOf(runs, 'p99'))} / ${fmt(medianOf(runs, 'p999'))} ms`, 'p50 / p99 / p99.9', fmt(medianOf(runs, 'achievedRate')) + ' msg/s', ok])
    else if ('connPerSec' in first) rows.push([scenario, fmt(medianOf(runs, 'connPerSec')), 'conn/s', `${fmt(medianOf(runs, 'bytesPerConn'))} B/conn`, ok])
    else rows.push([scenario, fmt(medianOf(runs, 'deliveriesPerSec')), 'msg/s', `lost ${medianOf(runs, 'lost')}, dup ${medianOf(runs, 'duplicates')}`, ok])
  }
  return table(['scenario', 'median', 'unit', 'notes', 'ok runs'], rows)
}

/** The side-by-side table of `compare`: medians per broker and ratios to the first broker. */
export function compareTable(records: BenchRecord[]): string {
  const brokers = unique(records.map((r) => r.broker))
  const base = brokers[0]!
  const rows: string[][] = []
  for (const scenario of unique(records.map((r) => r.scenario))) {
    const cells: string[] = [scenario]
    let unit = ''
    let higher = true
    const values = brokers.map((broker) => {
      const runs = records.filter((r) => r.scenario === scenario && r.broker === broker && r.ok)
      if (runs.length === 0) return NaN
      const h = headline(runs[0]!)
      unit = h.unit
      higher = h.higherIsBetter
      return median(runs.map((r) => headline(r).value))
    })
    for (const value of values) cells.push(fmt(value))
    cells.push(unit)
    const baseValue = values[0]!
    for (const [i, value] of values.entries()) if (i > 0) cells.push(higher ? ratio(baseValue, value) : ratio(value, baseValue))
    rows.push(cells)
  }
  const header = ['scenario', ...brokers, 'unit', ...brokers.slice(1).map((b) => `${base} ÷ ${b}`)]
  return table(header, rows) + `\nRatios: ${base}'s figure divided by the other's (for latency, the other's divided by ${base}'s): above 1 means ${base} is better.\n`
}

function ratio(base: number, other: number): string {
  if (!Number.isFinite(base) || !Number.isFinite(other) || base === 0 || other === 0) return '–'
  return `${(base / other).toFixed(2)}×`
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)]
}

/** Parse JSON lines of records (result files); throws with the line number on a bad line. */
export function parseRecords(text: string, file: string): BenchRecord[] {
  const records: BenchRecord[] = []
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue
    try {
      const record = JSON.parse(line) as BenchRecord
      if (typeof record.scenario !== 'string' || typeof record.broker !== 'string') throw new Error('not a mqtt-bench record')
      records.push(record)
    } catch (error) {
      throw new Error(`${file}:${i + 1}: ${(error as Error).message}`)
    }
  }
  return records
}
