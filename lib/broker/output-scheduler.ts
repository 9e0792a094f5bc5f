import type { Waiter } from './output-flow.js'

/** A connection as the output scheduler sees it. */
export interface FlushTarget extends Waiter {
  /** In the scheduler's dirty list. */
  dirty: boolean
  /**
   * Output held for the end of the event-loop turn: -1 none (not in the scheduler's held list);
   * else the bytes counted against the turn's `TURN_HOLD_BYTES` (0: in the list, written since).
   */
  heldBytes: number
  /** The connection is closed. */
  readonly closed: boolean
  /** Bytes gathered and not yet written. */
  readonly gathered: number
  /** Write its gathered output (one `write()`). */
  flush(): void
  /** Close it for an unexpected error (here: of its flush). */
  internalError(error: unknown): void
  /** Its socket holds so much unsent output that the publishers feeding it should wait. */
  congested(): boolean
  /** Make `publisher` wait until this connection's output drains (false: it has waited too long already). */
  holdPublisher(publisher: Waiter): boolean
  /** Pause reading this (publishing) connection until `receiver` drains (`holdPublisher`). */
  waitFor(receiver: FlushTarget): void
}

/**
 * Output for other connections than the one whose input chunk produced it is held for the end of
 * the event-loop turn while all that is held comes to at most this many bytes: several publishers
 * feeding one subscriber in one turn then make one write to it instead of one each. Beyond it,
 * output is written at the chunk's end as before. The bound is for the whole turn, not per
 * connection: what is held keeps its messages alive past the chunk, and an unbounded hold (every
 * connection's output of a whole turn) made the garbage collector copy them (scavenges 8× longer,
 * the heap 3× larger on fan-in QoS 0, benchmarks/broker/README.md).
 */
export const TURN_HOLD_BYTES = 32 * 1024

/** Busy turns in a row whose held output merged nothing, after which holding stops. */
const MISSES = 4
/** While holding is stopped, every this-many-th busy turn holds again (to see whether it merges now). */
const RETRY = 16

/**
 * When the connections' gathered output is written. At the end of each input chunk the connection
 * that sent the chunk writes everything it must send (its own acknowledgements, and whatever else
 * was gathered for it) with one `write()`; the output the chunk produced for OTHER connections
 * (deliveries) is held until the reads of this event-loop turn are done (`setImmediate`: it runs
 * right after the poll phase that delivered the reads, no timer) and then written with one
 * `write()` per connection, unless the turn's held output would pass `TURN_HOLD_BYTES` or the
 * receiver is already congested (then it is written at the chunk's end). Holding is only worth it
 * when one receiver is fed by several publishers in a turn (fan-in): it is done in a turn when the
 * previous turn with output read two chunks or more, and stops after `MISSES` held turns in a row in
 * which no receiver was fed by two publishers (pairs, fan-out from one publisher: holding would only
 * keep messages alive longer), to be tried again every `RETRY`-th busy turn. A broker at a low rate (one chunk a turn)
 * writes deliveries at once, before the acknowledgements, as it did before holding existed.
 * `depth` counts the nesting of input handling.
 * Output produced outside input handling (backend completions, deliveries from another process, a
 * drain) is flushed in one `process.nextTick` callback per turn, after the promise jobs of that turn
 * ran. After each write, back-pressure: a receiver that cannot keep up pauses the publishers whose
 * input fed it.
 */
export class OutputScheduler {
  /** Nesting depth of input processing (deliveries during it are flushed at its end). */
  depth = 0
  private dirty: FlushTarget[] = []
  private scheduled = false
  /** Publishers whose completions wait for the scheduled flush (back-pressure applies to them). */
  private deferredSources: FlushTarget[] = []
  /** Connections whose output is held for the end of the turn (each once). */
  private held: FlushTarget[] = []
  /** Bytes held in all (their `heldBytes`). */
  private heldTotal = 0
  /** Pairs (receiver, publisher that fed it) of the held output, for back-pressure at the turn's end. */
  private heldFeeds: FlushTarget[] = []
  private turnScheduled = false
  /** Input chunks that ended this turn (while the turn's end is scheduled). */
  private chunks = 0
  /** Output for other connections is held this turn. */
  private holding = false
  /** Held turns in a row that merged nothing (no receiver fed by two publishers). */
  private misses = 0
  /** This turn, a receiver's held output was fed by two different publishers. */
  private merged = false
  /** Busy turns since holding stopped. */
  private skipped = 0
  private readonly endTurn = (): void => {
    this.turnScheduled = false
    if (this.holding) {
      if (this.merged) this.misses = 0
      else if (this.held.length > 0) this.misses++
    }
    this.merged = false
    const busy = this.chunks >= 2
    this.chunks = 0
    if (!busy) this.holding = false
    else if (this.misses < MISSES) this.holding = true
    else if (++this.skipped >= RETRY) {
      // Try again: one held turn that merges starts holding again.
      this.skipped = 0
      this.misses = MISSES - 1
      this.holding = true
    } else this.holding = false
    this.flushHeld()
  }

  /** `client` has output to flush: at the end of the current input chunk, or once this turn's promise jobs ran. */
  markDirty(client: FlushTarget): void {
    client.dirty = true
    this.dirty.push(client)
    if (this.depth === 0) this.schedule()
  }

  /**
   * Like `flushDirty`, once this turn's promise jobs have run (for completions of asynchronous
   * backend work, which come one promise job each: flushing at each would write once per packet).
   */
  flushSoon(source: FlushTarget): void {
    if (this.depth > 0) return
    if (this.dirty.length === 0) return
    this.deferredSources.push(source)
    this.schedule()
  }

  /**
   * Flush every connection with output; pause `source` if a receiver is congested. With `hold`
   * (the end of `source`'s input chunk), output for other connections is held for the end of the
   * turn instead while the turn's held output stays within `TURN_HOLD_BYTES`.
   */
  flushDirty(source: FlushTarget | undefined, hold = false): void {
    if (this.depth > 0) return
    const dirty = this.dirty
    if (dirty.length === 0) return
    this.dirty = []
    const sources = this.deferredSources
    if (sources.length > 0) this.deferredSources = []
    if (hold) {
      // Count the chunks of this turn (the turn's end decides whether the next one holds).
      this.chunks++
      if (!this.turnScheduled) {
        this.turnScheduled = true
        setImmediate(this.endTurn)
      }
      hold = this.holding
    }
    for (const client of dirty) {
      client.dirty = false
      if (hold && client !== source && this.hold(client, source!)) continue
      if (client.heldBytes > 0) {
        // Held before, written now: no longer counted.
        this.heldTotal -= client.heldBytes
        client.heldBytes = 0
      }
      try {
        client.flush()
      } catch (error) {
        client.internalError(error)
        continue
      }
      // Back-pressure: a receiver that cannot keep up pauses the publisher that fed it (with a
      // deferred flush: the publishers whose completions it gathered).
      if (!client.congested()) continue
      if (source !== undefined && source !== client) source.waitFor(client)
      for (const s of sources) if (s !== client && !s.closed) s.waitFor(client)
    }
  }

  /**
   * Hold `client`'s output (fed by `source`) for the end of the turn, if the turn's held output
   * stays within `TURN_HOLD_BYTES` and the receiver is not congested already. False: write it now.
   */
  private hold(client: FlushTarget, source: FlushTarget): boolean {
    const counted = client.heldBytes > 0 ? client.heldBytes : 0
    const bytes = client.gathered
    const total = this.heldTotal - counted + bytes
    if (total > TURN_HOLD_BYTES || client.closed || client.congested()) return false
    if (client.heldBytes < 0) this.held.push(client)
    else if (!this.merged && this.fedByOther(client, source)) this.merged = true
    client.heldBytes = bytes
    this.heldTotal = total
    this.heldFeeds.push(client, source)
    return true
  }

  /**
   * Whether `client`'s held output was fed by another publisher than `source` this turn (its last
   * feed, looked for among the turn's last 64). Repeated chunks of one publisher do not count: they
   * are what a turn of pairs or of fan-out from one publisher holds, merging little.
   */
  private fedByOther(client: FlushTarget, source: FlushTarget): boolean {
    const feeds = this.heldFeeds
    const stop = Math.max(0, feeds.length - 128)
    for (let i = feeds.length - 2; i >= stop; i -= 2) if (feeds[i] === client) return feeds[i + 1] !== source
    return false
  }

  /** The turn's reads are done: write the held output, then pause the publishers of congested receivers. */
  private flushHeld(): void {
    const held = this.held
    const feeds = this.heldFeeds
    this.held = []
    this.heldFeeds = []
    this.heldTotal = 0
    for (const client of held) {
      client.heldBytes = -1
      try {
        client.flush()
      } catch (error) {
        client.internalError(error)
      }
    }
    for (let i = 0; i < feeds.length; i += 2) {
      const client = feeds[i]!
      const source = feeds[i + 1]!
      if (!client.closed && !source.closed && client.congested()) source.waitFor(client)
    }
  }

  /**
   * Output produced outside input processing (backend completions, deliveries from another
   * process) is flushed once the promise jobs of this turn have run: a `nextTick` queued from a
   * promise job runs after the microtask queue drained, so the acknowledgements of a whole batch
   * of completions leave in one write per connection rather than one each.
   */
  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    process.nextTick(() => {
      this.scheduled = false
      this.flushDirty(undefined)
    })
  }
}
