/** A timer of a `Clock`: Node's `Timeout` is one. */
export interface ClockTimer {
  /** Do not keep the process alive for this timer (the engine's timers never do). */
  unref(): unknown
}

/**
 * Where the engine reads the time and sets its timers: keepalive and connect timeout (the shared
 * wheel), Will Delay Interval, message expiry, the `$SYS` interval, the publisher pause, the
 * connection rate buckets and the drain deadline of `close()`. The default is `systemClock`; tests
 * pass a virtual clock (`BrokerOptions.clock`) and advance it instead of sleeping.
 *
 * `now()` is in milliseconds since the epoch (as `Date.now()`): message timestamps and will due
 * times computed from it may reach a backend, which keeps its own `now` (give a backend the same
 * clock's `now` when it takes one, e.g. `new MemoryBackend({ now: () => clock.now() })`).
 * A timer set through a clock must be cleared through the same clock.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  setTimeout(callback: () => void, ms: number): ClockTimer
  clearTimeout(timer: ClockTimer): void
  setInterval(callback: () => void, ms: number): ClockTimer
  clearInterval(timer: ClockTimer): void
}

/** The real clock: `Date.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout)
}

/** Checks a `clock` option: every member a function. Throws `TypeError` otherwise. */
export function resolveClock(clock: Clock | undefined): Clock {
  if (clock === undefined) return systemClock
  for (const name of ['now', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] as const) {
    if (typeof clock?.[name] !== 'function') throw new TypeError(`clock.${name} must be a function`)
  }
  return clock
}
