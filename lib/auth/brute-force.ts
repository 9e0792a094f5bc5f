/**
 * Slows down repeated failed logins from one address: after `freeAttempts` failures within
 * `windowMs`, every further CONNECT from that address waits before it is answered, twice as long
 * per extra failure (from `delayMs` up to `maxDelayMs`). A successful login clears the address.
 * Counted in `stats`; addresses are forgotten `windowMs` after their last failure.
 */

/** Options of a `BruteForceGuard` (all optional). */
export interface BruteForceOptions {
  /** Failures allowed without delay (default 5). */
  freeAttempts?: number
  /** How long failures are remembered (ms, default 60,000). */
  windowMs?: number
  /** The first delay (ms, default 500). */
  delayMs?: number
  /** The longest delay (ms, default 10,000). */
  maxDelayMs?: number
  /** Most addresses tracked at once (default 100,000); the oldest are forgotten first. */
  maxAddresses?: number
}

/** Counters of a `BruteForceGuard`. */
export interface BruteForceStats {
  /** Failed logins (all addresses). */
  failures: number
  /** CONNECTs answered late because of earlier failures. */
  delayed: number
  /** Addresses with recent failures. */
  addresses: number
}

interface Track {
  failures: number
  last: number
}

export class BruteForceGuard {
  readonly #free: number
  readonly #window: number
  readonly #delay: number
  readonly #maxDelay: number
  readonly #maxAddresses: number
  readonly #tracks = new Map<string, Track>()
  #failures = 0
  #delayed = 0

  constructor(options: BruteForceOptions = {}) {
    this.#free = options.freeAttempts ?? 5
    this.#window = options.windowMs ?? 60_000
    this.#delay = options.delayMs ?? 500
    this.#maxDelay = options.maxDelayMs ?? 10_000
    this.#maxAddresses = options.maxAddresses ?? 100_000
  }

  get stats(): BruteForceStats {
    return { failures: this.#failures, delayed: this.#delayed, addresses: this.#tracks.size }
  }

  /** How long (ms) to hold back the answer to a CONNECT from `address` (0: none). Counts delays. */
  delayFor(address: string, now = Date.now()): number {
    const track = this.#tracks.get(address)
    if (track === undefined) return 0
    if (now - track.last > this.#window) {
      this.#tracks.delete(address)
      return 0
    }
    const extra = track.failures - this.#free
    if (extra < 0) return 0
    this.#delayed++
    return Math.min(this.#maxDelay, this.#delay * 2 ** Math.min(extra, 30))
  }

  /** A login from `address` failed; returns the failures counted for it in the window. */
  failure(address: string, now = Date.now()): number {
    this.#failures++
    let track = this.#tracks.get(address)
    if (track !== undefined && now - track.last > this.#window) track = undefined
    if (track === undefined) {
      if (this.#tracks.size >= this.#maxAddresses) {
        const oldest = this.#tracks.keys().next()
        if (oldest.done !== true) this.#tracks.delete(oldest.value)
      }
      track = { failures: 0, last: now }
    }
    track.failures++
    track.last = now
    // Re-insert: Map order is then the order of last failure (oldest first, for eviction).
    this.#tracks.delete(address)
    this.#tracks.set(address, track)
    return track.failures
  }

  /** A login from `address` succeeded: forget its failures. */
  success(address: string): void {
    this.#tracks.delete(address)
  }
}
