/**
 * Gives back the memory a burst of new connections grew, once the broker is quiet again.
 *
 * Every connection a burst accepts leaves state that survives the young-generation collections
 * (scavenges); V8 answers a high survival rate by growing the young generation up to its maximum
 * (two 16 MiB semi-spaces): about 20 MB, or 2 KB per connection at 10,000, that stays committed
 * after the burst. V8 shrinks it again only at a collection that sees a low allocation rate (or
 * its memory reducer, which starts one when the rate is low); but a broker holding idle
 * connections allocates almost nothing, so no collection comes, and the memory reducer's rate
 * estimate, taken from the samples of the last collections (all in the burst), stays "high" for
 * minutes (`--trace-gc-verbose`: "Memory reducer: high alloc" every 8 s, 40 s after the burst).
 *
 * So, at the wheel's tick: once the open connections grew by at least `threshold` (from their
 * lowest count since the last release: connections that come and go do not count), and the broker was quiet for one whole interval (no connection accepted, the event
 * loop busy less than `QUIET_UTILIZATION` of the time), and the young generation holds at least
 * `YOUNG_WORTH_RELEASING` bytes, the broker asks V8 for one collection
 * that reduces the memory footprint: the inspector's `HeapProfiler.collectGarbage` (V8's
 * low-memory notification: full collections, the young generation shrunk to its initial size,
 * free pages unmapped). A public API, no V8 flag; the young generation grows again as before
 * under load. It costs one pause (0.1–0.3 s at 10,000 connections) when the broker is idle, at
 * most once per `threshold` connections added.
 */
import { performance } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import type { Logger } from './logger.js'

/** Event-loop utilisation (0–1) over one interval below which the broker counts as quiet. */
export const QUIET_UTILIZATION = 0.1

/** Runs the collection; resolves once it ran (or could not run: no inspector in this build). */
export type Collect = () => Promise<void>

/** The low-memory collection through an in-process inspector session (loaded at the first use). */
export const lowMemoryCollect: Collect = async () => {
  const { Session } = await import('node:inspector')
  const session = new Session()
  session.connect()
  try {
    await new Promise<void>((resolve, reject) => {
      session.post('HeapProfiler.collectGarbage', (error) => (error === null ? resolve() : reject(error)))
    })
  } finally {
    session.disconnect()
  }
}

/** The part of the broker's counters the release reads. */
export interface ConnectionCounters {
  readonly connectionsAccepted: number
  readonly connectionsOpen: number
}

/** What a `MemoryRelease` reads and does; tests pass their own functions. */
export interface MemoryReleaseOptions {
  /** Growth of the open connections (over their low since the last release) that arms a release (0: never). */
  threshold: number
  counter: ConnectionCounters
  log: Logger
  /** The collection (default: `lowMemoryCollect`). */
  collect?: Collect
  /** Event-loop utilisation (0–1) since the previous call (default: `performance.eventLoopUtilization`). */
  utilization?: () => number
  /** Committed bytes of the young generation (default: V8's `new_space` physical size). */
  youngBytes?: () => number
}

/**
 * Young-generation bytes below which a release is not worth its pause: the young generation of
 * an idle Node process after its start is 1–8 MiB.
 */
export const YOUNG_WORTH_RELEASING = 8 * 1024 * 1024

/** Decides, at each tick of the broker's wheel, whether to give memory back (see the module comment). */
export class MemoryRelease {
  /** Releases done (for tests and the log). */
  releases = 0
  /** The lowest `connectionsOpen` seen at a tick since the last release (or the start). */
  private low: number
  /** `connectionsAccepted` at the previous tick. */
  private atTick: number
  private running = false
  private readonly collect: Collect
  private readonly utilization: () => number
  private readonly youngBytes: () => number

  constructor(private readonly o: MemoryReleaseOptions) {
    this.low = o.counter.connectionsOpen
    this.atTick = o.counter.connectionsAccepted
    this.collect = o.collect ?? lowMemoryCollect
    this.utilization = o.utilization ?? loopUtilization()
    this.youngBytes = o.youngBytes ?? committedYoungGeneration
  }

  /** Called at every tick of the broker's wheel. Never throws; the collection runs asynchronously. */
  tick(): void {
    if (this.o.threshold === 0) return
    const { connectionsAccepted: accepted, connectionsOpen: open } = this.o.counter
    const quietConnects = accepted === this.atTick
    this.atTick = accepted
    if (open < this.low) this.low = open
    // Measured at every tick, so that the figure always covers exactly the last interval.
    const busy = this.utilization()
    if (this.running || open - this.low < this.o.threshold || !quietConnects || busy >= QUIET_UTILIZATION) return
    this.low = open
    const young = this.youngBytes()
    if (young < YOUNG_WORTH_RELEASING) return
    this.running = true
    const started = performance.now()
    const before = process.memoryUsage.rss()
    this.collect().then(
      () => {
        this.releases++
        this.o.log.info('quiet after a burst of connections: gave memory back', {
          connections: open,
          ms: Math.round(performance.now() - started),
          youngBefore: young,
          youngAfter: this.youngBytes(),
          rssBefore: before,
          rssAfter: process.memoryUsage.rss()
        })
      },
      (error: unknown) => this.o.log.debug('could not give memory back (no inspector?)', { error })
    ).finally(() => { this.running = false })
  }
}

/** Committed (physical) bytes of V8's young generation. */
function committedYoungGeneration(): number {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === 'new_space') return space.physical_space_size
  return 0
}

/** Event-loop utilisation since the previous call of the returned function. */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization()
  return () => {
    const now = performance.eventLoopUtilization()
    const { utilization } = performance.eventLoopUtilization(now, last)
    last = now
    return utilization
  }
}
