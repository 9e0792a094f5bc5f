import type { Duplex } from 'node:stream'
import type { Clock, ClockTimer } from './clock.js'

/** Unsent bytes on a receiver's socket beyond which the publishers feeding it are paused. */
const BACKPRESSURE_BYTES = 256 * 1024

/** Whether `stream` holds so much unsent output that the publishers feeding it should wait. */
export function isCongested(stream: Duplex): boolean {
  return stream.writableLength > BACKPRESSURE_BYTES
}

/** A publisher paused for a receiver: told when it may read again. */
export interface Waiter {
  stopWaiting(): void
}

/**
 * The output side of one connection's flow control: when its socket backed up (the `sendTimeout`
 * clock, reset by `drained`), whether it is congested (its publishers should wait), and the
 * publishers waiting for it, released when it drains or after `maxPause` ms counted from when its
 * output backed up. A receiver stalled longer than that holds nobody: its QoS 0 deliveries are
 * dropped and QoS 1/2 queued by its `Outbound`, and `sendTimeout` ends it.
 */
export class OutputFlow {
  /** Since when (ms) the socket's output is backed up (a write returned false); 0: it drained. */
  backedSince = 0
  private waiters: Waiter[] | undefined = undefined
  private timer: ClockTimer | undefined = undefined

  constructor(
    private readonly stream: Duplex,
    private readonly maxPause: number,
    private readonly clock: Clock
  ) {}

  /** Write `bytes`; true when the socket's unsent output is now above `highWater`. */
  write(bytes: Buffer, highWater: number): boolean {
    if (this.stream.write(bytes)) return false
    return this.backedUp(highWater)
  }

  /**
   * A write returned false (the socket did not take it all at once): the `sendTimeout` clock runs
   * from now if it did not already. True when the unsent output is above `highWater`.
   */
  backedUp(highWater: number): boolean {
    if (this.backedSince === 0) this.backedSince = this.clock.now()
    return this.stream.writableLength > highWater
  }

  /** Whether the socket holds so much unsent output that its publishers should wait. */
  get congested(): boolean {
    return isCongested(this.stream)
  }

  /**
   * Make `waiter` wait until this output drains, for what is left of `maxPause`. False (and nothing
   * registered) when none is left: the output has not drained for longer.
   */
  hold(waiter: Waiter): boolean {
    const since = this.backedSince
    const left = since === 0 ? this.maxPause : since + this.maxPause - this.clock.now()
    if (left <= 0) return false
    if (this.waiters === undefined) {
      this.waiters = []
      this.timer = this.clock.setTimeout(() => this.release(), left)
      this.timer.unref()
    }
    this.waiters.push(waiter)
    return true
  }

  /** The socket took all its output (its `drain`). */
  drained(): void {
    this.backedSince = 0
    this.release()
  }

  /** Let every waiting publisher go. */
  release(): void {
    const waiters = this.waiters
    this.waiters = undefined
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    if (waiters !== undefined) for (const waiter of waiters) waiter.stopWaiting()
  }
}
