/**
 * Idle connections scenario: opens `count` MQTT connections (`concurrency` handshakes in flight),
 * holds them idle for `holdMs`, and reads the broker's resident memory (VmRSS) before the first
 * and after the hold, giving bytes per idle connection. A connection counts once its CONNACK
 * arrived. Give it a freshly started broker: RSS before must be the idle broker's.
 */
import { performance } from 'node:perf_hooks'
import { Conn, type ConnTarget } from './conn.js'
import { cpuTimes, cpuDelta, rssBytes, type CpuTimes } from './proc.js'
import { mapLimit, closeAll } from './throughput.js'
import { quantile } from './latency.js'

/** Options of one connections run. */
export interface ConnectionsOptions {
  target: ConnTarget
  brokerPid?: number
  count: number
  concurrency: number
  holdMs: number
  runId: string
  /** Keepalive sent in CONNECT (s); must exceed the hold. */
  keepalive: number
}

/** What one connections run measured. */
export interface ConnectionsResult {
  scenario: string
  ok: boolean
  problem?: string
  connected: number
  failed: number
  connPerSec: number
  connectP50Ms: number
  connectP99Ms: number
  rssBeforeBytes: number
  rssAfterBytes: number
  bytesPerConn: number
  brokerCpu: CpuTimes
}

/** Runs the idle-connections scenario. */
export async function runConnections (o: ConnectionsOptions): Promise<ConnectionsResult> {
  const conns: Conn[] = []
  const times = new Float64Array(o.count)
  let failed = 0
  let firstError: string | undefined
  let closedEarly = 0
  try {
    const pid = o.brokerPid
    const rssBefore = pid !== undefined ? (rssBytes(pid) ?? 0) : 0
    const cpu0 = pid !== undefined ? cpuTimes(pid) : undefined
    const t0 = performance.now()
    await mapLimit(Array.from({ length: o.count }, (_, i) => i), o.concurrency, async (i) => {
      const s = performance.now()
      try {
        const c = await Conn.open(o.target, `${o.runId}-c${i}`, o.keepalive, 30_000)
        c.onClose = () => { closedEarly++ }
        conns.push(c)
        times[i] = performance.now() - s
      } catch (err) {
        failed++
        times[i] = NaN
        firstError ??= (err as Error).message
      }
    })
    const connectSec = (performance.now() - t0) / 1000
    await new Promise((resolve) => setTimeout(resolve, o.holdMs))
    const rssAfter = pid !== undefined ? (rssBytes(pid) ?? 0) : 0
    const cpu1 = pid !== undefined ? cpuTimes(pid) : undefined
    const ok = times.filter((t) => !Number.isNaN(t)).sort()
    const problem = failed > 0 ? `${failed} connections failed (${firstError ?? ''})`
      : closedEarly > 0 ? `${closedEarly} connections closed by the broker during the hold` : undefined
    const res: ConnectionsResult = {
      scenario: 'connections',
      ok: problem === undefined,
      connected: conns.length,
      failed,
      connPerSec: Math.round(conns.length / connectSec),
      connectP50Ms: Math.round(quantile(ok, 0.5) * 1000) / 1000,
      connectP99Ms: Math.round(quantile(ok, 0.99) * 1000) / 1000,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      bytesPerConn: conns.length > 0 ? Math.round((rssAfter - rssBefore) / conns.length) : 0,
      brokerCpu: cpuDelta(cpu0, cpu1)
    }
    if (problem !== undefined) res.problem = problem
    return res
  } finally {
    for (const c of conns) c.onClose = undefined
    await closeAll(conns, 5000)
  }
}
