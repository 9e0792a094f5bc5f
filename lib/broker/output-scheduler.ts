import type { Waiter } from './output-flow.js'

/** A connection as the output scheduler sees it. */
export interface FlushTarget extends Waiter {
  /** In the scheduler's dirty list. */
  dirty: boolean
  /** The connection is closed. */
  readonly closed: boolean
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
 * When the connections' gathered output is written. Everything a connection must send while the
 * broker handles one input chunk (its own acks and every delivery to it) is written with one
 * `write()` at the end of the chunk (`depth` counts the nesting of input handling); output produced
 * outside input handling (backend completions, deliveries from another process) is flushed in one
 * `process.nextTick` callback per turn, after the promise jobs of that turn ran. After each flush,
 * back-pressure: a receiver that cannot keep up pauses the publisher whose input fed it.
 */
export class OutputScheduler {
  /** Nesting depth of input processing (deliveries during it are flushed at its end). */
  depth = 0
  private dirty: FlushTarget[] = []
  private scheduled = false
  /** Publishers whose completions wait for the scheduled flush (back-pressure applies to them). */
  private deferredSources: FlushTarget[] = []

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

  /** Flush every connection with output; pause `source` if a receiver is congested. */
  flushDirty(source: FlushTarget | undefined): void {
    if (this.depth > 0) return
    const dirty = this.dirty
    if (dirty.length === 0) return
    this.dirty = []
    const sources = this.deferredSources
    if (sources.length > 0) this.deferredSources = []
    for (const client of dirty) {
      client.dirty = false
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
