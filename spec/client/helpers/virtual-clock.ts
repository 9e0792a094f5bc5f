/** A virtual clock for client specs: time moves only when the spec calls `advance`. */
import type { Clock, Timer } from '../../../lib/client/clock.js'

interface Entry {
  at: number
  seq: number
  fn: () => void
  canceled: boolean
}

export class VirtualClock implements Clock {
  private time = 0
  private seq = 0
  private timers: Entry[] = []

  now(): number {
    return this.time
  }

  setTimer(fn: () => void, ms: number): Timer {
    const entry: Entry = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, canceled: false }
    this.timers.push(entry)
    return { cancel: () => void (entry.canceled = true) }
  }

  /** Timers not yet run nor canceled. */
  get pending(): number {
    return this.timers.filter((t) => !t.canceled).length
  }

  /** Move time forward by `ms`, running due timers in order (and letting I/O callbacks run between them). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms
    while (true) {
      const due = this.timers.filter((t) => !t.canceled && t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.time = Math.max(this.time, due.at)
      due.canceled = true
      due.fn()
      await settle()
    }
    this.timers = this.timers.filter((t) => !t.canceled)
    this.time = end
    await settle()
  }
}

/** Let pending I/O (the in-memory pair delivers with setImmediate) and microtasks run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}
