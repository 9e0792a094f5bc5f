/**
 * `mqtt-bench plot`: an SVG of result records, hand-written (no charting dependency): one panel of
 * grouped bars for throughput (msg/s and conn/s, median per broker and scenario) and one for
 * latency percentiles (p50, p99, p99.9 in ms, median per broker).
 */
import type { BenchRecord } from './results.js'
import { median } from './results.js'

const COLORS = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#64748b']

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function short(value: number): string {
  if (!Number.isFinite(value)) return '–'
  if (value >= 1e6) return `${(value / 1e6).toFixed(value >= 1e7 ? 0 : 1)}M`
  if (value >= 1e3) return `${(value / 1e3).toFixed(value >= 1e4 ? 0 : 1)}k`
  return value >= 10 ? value.toFixed(0) : value.toFixed(2)
}

interface Group {
  label: string
  values: number[]
}

/** One panel of grouped bars (one group per label, one bar per series). */
function panel(title: string, unit: string, groups: Group[], series: string[], x: number, y: number, width: number, height: number): string {
  const max = Math.max(...groups.flatMap((g) => g.values.filter((v) => Number.isFinite(v))), 0) || 1
  const plotTop = y + 44
  const plotBottom = y + height - 40
  const plotHeight = plotBottom - plotTop
  const groupWidth = groups.length === 0 ? width : (width - 60) / groups.length
  const barWidth = Math.max(4, Math.min(40, (groupWidth - 16) / Math.max(1, series.length)))
  const out: string[] = [`<text x="${x}" y="${y + 16}" font-size="15" font-weight="bold">${esc(title)}</text>`]
  out.push(`<text x="${x}" y="${y + 31}" font-size="11" fill="#555">${esc(unit)}</text>`)
  for (let i = 0; i <= 4; i++) {
    const gy = plotBottom - (plotHeight * i) / 4
    out.push(`<line x1="${x + 50}" x2="${x + width}" y1="${gy}" y2="${gy}" stroke="#e5e7eb"/>`)
    out.push(`<text x="${x + 45}" y="${gy + 4}" font-size="10" text-anchor="end" fill="#555">${short((max * i) / 4)}</text>`)
  }
  for (const [g, group] of groups.entries()) {
    const gx = x + 55 + g * groupWidth
    const start = gx + (groupWidth - barWidth * series.length) / 2
    for (const [s, value] of group.values.entries()) {
      if (!Number.isFinite(value)) continue
      const h = (plotHeight * value) / max
      const bx = start + s * barWidth
      out.push(`<rect x="${bx.toFixed(1)}" y="${(plotBottom - h).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[s % COLORS.length]}"><title>${esc(`${series[s]} ${group.label}: ${value}`)}</title></rect>`)
      out.push(`<text x="${(bx + barWidth / 2 - 1).toFixed(1)}" y="${(plotBottom - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${short(value)}</text>`)
    }
    out.push(`<text x="${(gx + groupWidth / 2).toFixed(1)}" y="${plotBottom + 16}" font-size="11" text-anchor="middle">${esc(group.label)}</text>`)
  }
  return out.join('\n')
}

/** Render the SVG for `records` (any number of brokers and scenarios). */
export function plotSvg(records: BenchRecord[], title = 'mqtt-bench'): string {
  const brokers = [...new Set(records.map((r) => r.broker))]
  const ok = records.filter((r) => r.ok)
  const throughput: Group[] = []
  const connections: Group[] = []
  for (const scenario of [...new Set(ok.map((r) => r.scenario))]) {
    const runs = ok.filter((r) => r.scenario === scenario)
    if (runs.some((r) => 'p50' in r)) continue
    const isConn = runs.some((r) => 'connPerSec' in r)
    const values = brokers.map((b) => median(runs.filter((r) => r.broker === b).map((r) => ('connPerSec' in r ? r.connPerSec : 'deliveriesPerSec' in r ? r.deliveriesPerSec : NaN))))
    ;(isConn ? connections : throughput).push({ label: scenario, values })
  }
  // The panel shows the QoS 0 scenario when a file has both (the QoS 1 one stays in the tables).
  const latencyRuns = ok.filter((r) => 'p50' in r && (r.scenario === 'latency' || !ok.some((x) => x.scenario === 'latency')))
  const latency: Group[] = (['p50', 'p99', 'p999'] as const).map((p) => ({
    label: p === 'p999' ? 'p99.9' : p,
    values: brokers.map((b) => median(latencyRuns.filter((r) => r.broker === b).map((r) => (r as unknown as Record<string, number>)[p]!)))
  }))
  const width = Math.max(720, 140 + (throughput.length + connections.length) * Math.max(60, brokers.length * 28))
  const panels: string[] = []
  let y = 50
  if (throughput.length > 0) {
    panels.push(panel('Throughput (median)', 'msg/s, higher is better', throughput, brokers, 20, y, width - 40, 300))
    y += 320
  }
  // Latency and the connect rate side by side (different units, different axes).
  const lower: string[] = []
  if (latencyRuns.length > 0) lower.push(panel('Latency percentiles (median)', 'ms, lower is better', latency, brokers, 20, y, connections.length > 0 ? (width - 60) * 0.62 : Math.min(width - 40, 520), 260))
  if (connections.length > 0) {
    const x = latencyRuns.length > 0 ? 40 + (width - 60) * 0.62 : 20
    lower.push(panel('Connect storm', 'conn/s, higher is better', connections, brokers, x, y, latencyRuns.length > 0 ? (width - 60) * 0.38 : 360, 260))
  }
  if (lower.length > 0) {
    panels.push(...lower)
    y += 280
  }
  const legend = brokers.map((b, i) => `<rect x="${20 + i * 140}" y="${y}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${36 + i * 140}" y="${y + 11}" font-size="12">${esc(b)}</text>`).join('\n')
  const height = y + 30
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="20" y="28" font-size="18" font-weight="bold">${esc(title)}</text>
${panels.join('\n')}
${legend}
</svg>
`
}
