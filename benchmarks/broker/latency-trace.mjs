// Diagnostic preload for the latency scenario (benchmarks/broker/README.md, "The latency tail"):
// GC pauses (with the new space's size) and event-loop stalls of one Node.js process, stamped on the
// monotonic clock the load generator uses (process.hrtime), written to
// $BROKER_TRACE_DIR/trace-<pid>.txt at exit. TRACE_LOOP_MS=N adds a timer every N ms that records
// turns more than 2 ms late (it wakes the process: use it to find stalls, not for figures).
//   node --import tsx benchmarks/broker/run.ts --scenarios latency \
//     --node-flags "--import ./benchmarks/broker/latency-trace.mjs"   (with BENCH_LATENCY_DUMP=DIR)
import process from 'node:process'
import { setInterval } from 'node:timers'
import { PerformanceObserver, performance, constants } from 'node:perf_hooks'
import { writeFileSync } from 'node:fs'
import { threadId } from 'node:worker_threads'
import v8 from 'node:v8'
const dir = process.env.BROKER_TRACE_DIR ?? '/tmp'
const off = Number(process.hrtime.bigint()) / 1e6 - performance.now()
const lines = [`start ${(performance.now() + off).toFixed(3)}`]
const kinds = { [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incr', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak' }
new PerformanceObserver((list) => {
  const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')
  for (const e of list.getEntries()) lines.push(`gc ${(e.startTime + off).toFixed(3)} ${e.duration.toFixed(3)} ${kinds[e.detail?.kind] ?? e.detail?.kind} ${ns ? Math.round(ns.space_size / 1024) : ''}`)
}).observe({ entryTypes: ['gc'] })
const every = Number(process.env.TRACE_LOOP_MS ?? 0)
if (every > 0) {
  let last = performance.now()
  setInterval(() => { const now = performance.now(); if (now - last > every + 2) lines.push(`stall ${(last + every + off).toFixed(3)} ${(now - last - every).toFixed(3)}`); last = now }, every).unref()
}
process.on('exit', () => { writeFileSync(`${dir}/trace-${process.pid}${threadId === 0 ? '' : '-t' + threadId}.txt`, lines.join('\n') + '\n') })
