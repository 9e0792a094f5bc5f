/**
 * The reconnect delay policy (pure; the random source is injectable for tests). "Equal jitter":
 * before attempt n (0 after a drop) the delay is d·(1 − jitter) + random·d·jitter with
 * d = min(maxDelayMs, minDelayMs · 2^n): a herd of clients spreads over the jitter window and the
 * delay never collapses to 0. After a connection that stayed up `stableAfterMs`, the first attempt
 * waits only random·minDelayMs and the counter starts again (it is reset only then: a connection
 * that is kicked right after CONNACK keeps backing off).
 */
export interface BackoffOptions {
  /** Default 1,000 ms. */
  minDelayMs?: number
  /** Default 60,000 ms. */
  maxDelayMs?: number
  /** 0..1, default 0.5. */
  jitter?: number
  /** A connection up this long resets the attempt counter (default 10,000 ms). */
  stableAfterMs?: number
}

/** The delay before attempt `attempt` (0-based) after a failure. */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const min = options.minDelayMs ?? 1000
  const max = options.maxDelayMs ?? 60_000
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0.5))
  const d = Math.min(max, min * 2 ** Math.min(attempt, 40))
  return d * (1 - jitter) + random() * d * jitter
}

/** The delay after a connection that was stable: a short random wait (reconnect herds spread out). */
export function stableDelay(options: BackoffOptions, random: () => number): number {
  return random() * (options.minDelayMs ?? 1000)
}
