/**
 * Time as the client sees it: `now()` and one-shot timers. The default is the real clock with
 * unref'd timers (a client never keeps the process alive by its timers alone); specs inject a
 * virtual clock to test keepalive, timeouts and backoff without sleeping.
 */
export interface Timer {
  cancel(): void
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number
  /** Run `fn` once after `ms` milliseconds, unless canceled. */
  setTimer(fn: () => void, ms: number): Timer
}

/** The real clock (`performance.now()`, unref'd `setTimeout`). */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms)
    handle.unref()
    return { cancel: () => clearTimeout(handle) }
  }
}
