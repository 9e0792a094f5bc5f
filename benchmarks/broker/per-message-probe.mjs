// Preload for benchmarks/broker/per-message.ts: what one window of messages costs a broker process.
// On SIGUSR2 it marks a window: the first signal runs a full GC and starts the window (and, with
// PROBE_PROFILE_DIR, V8's CPU profiler and its sampling heap profiler, the latter counting objects
// that died young too); the next signal ends it and prints one line to stderr:
//   probe {"cpuUs":..,"heapBytes":..,"arrayBufferBytes":..,"scavenges":..,"markCompacts":..,"gcMs":..}
// heapBytes is the growth of V8's used heap over the window: with a young generation large enough
// that no scavenge happens in it (--min-semi-space-size / --max-semi-space-size, checked by
// `scavenges`), that is every byte the window allocated on the heap.
import process from 'node:process'
import { setTimeout } from 'node:timers'
import { PerformanceObserver, constants } from 'node:perf_hooks'
import { Session } from 'node:inspector'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'

v8.setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
const counts = { scavenges: 0, markCompacts: 0, gcMs: 0 }
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) counts.scavenges++
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) counts.markCompacts++
    counts.gcMs += e.duration
  }
}).observe({ entryTypes: ['gc'] })

const profileDir = process.env.PROBE_PROFILE_DIR
const session = profileDir === undefined ? undefined : new Session()
if (session !== undefined) session.connect()
const post = (method, params) => new Promise((resolve, reject) => {
  session.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result)))
})

let start
let windows = 0
process.on('SIGUSR2', () => {
  void (async () => {
    if (start === undefined) {
      gc()
      // The observer hears of that collection a little later: let it, so the window does not count it.
      await new Promise((resolve) => setTimeout(resolve, 50))
      if (session !== undefined) {
        await post('Profiler.enable')
        await post('Profiler.setSamplingInterval', { interval: 100 })
        await post('Profiler.start')
        await post('HeapProfiler.enable')
        await post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
      }
      start = { cpu: process.cpuUsage(), heap: v8.getHeapStatistics().used_heap_size, ab: process.memoryUsage().arrayBuffers, ...counts }
      process.stderr.write('probe started\n')
      return
    }
    const cpu = process.cpuUsage(start.cpu)
    const heap = v8.getHeapStatistics().used_heap_size
    const ab = process.memoryUsage().arrayBuffers
    const line = {
      cpuUs: cpu.user + cpu.system,
      heapBytes: heap - start.heap,
      arrayBufferBytes: ab - start.ab,
      scavenges: counts.scavenges - start.scavenges,
      markCompacts: counts.markCompacts - start.markCompacts,
      gcMs: Math.round((counts.gcMs - start.gcMs) * 1000) / 1000
    }
    start = undefined
    if (session !== undefined) {
      const heapProfile = await post('HeapProfiler.stopSampling')
      const cpuProfile = await post('Profiler.stop')
      windows++
      writeFileSync(join(profileDir, `window-${process.pid}-${windows}.heapprofile`), JSON.stringify(heapProfile.profile))
      writeFileSync(join(profileDir, `window-${process.pid}-${windows}.cpuprofile`), JSON.stringify(cpuProfile.profile))
    }
    process.stderr.write(`probe ${JSON.stringify(line)}\n`)
  })()
})
