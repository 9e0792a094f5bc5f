/**
 * A virtual clock for the specs (`BrokerOptions.clock`, `MemoryBackend`'s `now`): time stands still
 * until the spec moves it with `advance(ms)`, which runs the timers that fall due in time order.
 * Keepalive, expiry and delay specs advance it instead of sleeping, so they take no wall time and
 * cannot be fooled by a loaded machine.
 *
 * ```ts
 * const clock = new VirtualClock()
 * const broker = makeBroker(teardown, { clock })  // the MemoryBackend gets clock.now too
 * await clock.advance(1500)                       // the keepalive wheel ticks once
 * ```
 *
 * Between two timers (and after the last one) `advance` lets the event loop run once
 * (`setImmediate`), so what a timer started (a socket closing, a promise chain) can go on before the
 * next timer fires; specs then wait for the positive event itself (`peer.waitClosed()`,
 * `peer.next()`), never for a time.
 */
import type { Clock, ClockTimer } from '../../lib/broker/clock.js'

interface Entry {
  readonly id: number
  at: number
  readonly every: number | undefined
  readonly callback: () => void
}

/** A timer of a `VirtualClock`. */
class VirtualTimer implements ClockTimer {
  constructor(readonly id: number) {}

  unref(): this {
    return this
  }

  ref(): this {
    return this
  }
}

/** Let the event loop run once: I/O callbacks, promise jobs and `nextTick`s queued so far. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

export class VirtualClock implements Clock {
  private time: number
  private readonly timers = new Map<number, Entry>()
  private nextId = 1

  /** Starts at `start` ms since the epoch (default: a fixed date, so specs do not depend on today). */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.time = start
  }

  now(): number {
    return this.time
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    return this.add(callback, ms, undefined)
  }

  setInterval(callback: () => void, ms: number): ClockTimer {
    return this.add(callback, ms, Math.max(1, ms))
  }

  clearTimeout(timer: ClockTimer): void {
    if (timer instanceof VirtualTimer) this.timers.delete(timer.id)
  }

  clearInterval(timer: ClockTimer): void {
    this.clearTimeout(timer)
  }

  /** Timers set and not yet fired or cleared (intervals count once). */
  get pending(): number {
    return this.timers.size
  }

  /**
   * Move time forward by `ms`, running every timer that falls due on the way in time order (ties
   * in the order they were set), the clock reading each one's due time while it runs. A callback
   * that throws rejects the returned promise.
   */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`advance: ms must be a finite number >= 0, got ${ms}`)
    const target = this.time + ms
    for (;;) {
      const entry = this.due(target)
      if (entry === undefined) break
      this.time = Math.max(this.time, entry.at)
      if (entry.every === undefined) this.timers.delete(entry.id)
      else entry.at += entry.every
      entry.callback()
      await settle()
    }
    this.time = target
    await settle()
  }

  private add(callback: () => void, ms: number, every: number | undefined): VirtualTimer {
    const id = this.nextId++
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0
    this.timers.set(id, { id, at: this.time + delay, every, callback })
    return new VirtualTimer(id)
  }

  /** The earliest timer due at or before `target` (the first set among equals). */
  private due(target: number): Entry | undefined {
    let best: Entry | undefined
    for (const entry of this.timers.values()) {
      if (entry.at > target) continue
      if (best === undefined || entry.at < best.at || (entry.at === best.at && entry.id < best.id)) best = entry
    }
    return best
  }
}

/**
 * Resolves once `condition()` holds, checked after each turn of the event loop; rejects after
 * `timeout` ms of real time (a positive wait: the time only bounds a failure).
 */
export async function until(condition: () => boolean, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeout} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/**
 * Let the event loop turn `n` times. For in-memory connections (`memoryPair` delivers each write
 * in one `setImmediate`) this is a count of deliveries, not a time: after a few turns, whatever
 * the broker would do with the bytes already written it has done, however loaded the machine.
 */
export async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await settle()
}
