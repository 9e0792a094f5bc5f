import type { Packet } from '../packet/types.js'
import type { PublishStep } from './handlers/context.js'

/**
 * PUBLISH packets of one connection that may be in progress at once with an asynchronous backend;
 * beyond it, the connection stops reading until they finish. A constant for now (a candidate for
 * a broker option).
 */
export const PIPELINE_DEPTH = 64

/** What the pipeline needs from its connection (the `Client`). */
export interface PublishPipelineHost {
  /** The connection is closed: nothing more runs. */
  readonly closed: boolean
  /** Send `packet` now (a packet a handler sent while earlier PUBLISH packets were in progress). */
  send(packet: Packet): void
  /** Close the connection for an error a step threw or a PUBLISH rejected with. */
  internalError(error: unknown): void
  /**
   * A PUBLISH settled: the host calls `finishSettled()` (inside its output batch) and then handles
   * what the pipeline no longer holds back. `issued` is the flag given to `track`.
   */
  publishSettled(issued: boolean): void
}

/** One PUBLISH in progress with an asynchronous backend; finished in arrival order. */
interface PublishSlot {
  /** Its handler and asynchronous rest are done: the slot may finish when it reaches the head. */
  settled: boolean
  /** Packets its handler sent while earlier PUBLISH packets were in progress. */
  sent: Packet[] | undefined
  /** The last step (the acknowledgement). */
  step: PublishStep | undefined
  /** It failed: closes the connection when its turn comes. */
  failure: (() => void) | undefined
}

/**
 * The ordered completion queue of one connection's PUBLISH packets, created by the `Client` at its
 * first asynchronous PUBLISH (a synchronous backend never creates one, so its path stays a field
 * check).
 *
 * - Ordering [MQTT-4.6.0-2] [MQTT-4.6.0-3]: every PUBLISH in progress has a slot, oldest first. A
 *   slot finishes only at the head of the queue once settled: first what its handler sent while
 *   earlier PUBLISH packets were in progress (`hold`), then its last step (the acknowledgement).
 *   Acknowledgements, refusals and the DISCONNECT a later PUBLISH causes thus leave in arrival order.
 * - Bound: at most `PIPELINE_DEPTH` PUBLISH packets are in progress; `holdsBack` keeps any further
 *   one waiting (the host stops reading meanwhile).
 * - Holding back: while any PUBLISH is in progress, every non-PUBLISH packet waits until they all
 *   finished; after a failure (`halted`) every packet waits. The host adds its own reasons (a
 *   handler promise, a PUBLISH that is not `issued`, which also keeps Backend calls in order).
 * - Errors: a PUBLISH that fails (its handler throws or fails the connection while captured, its
 *   rest rejects) halts the pipeline; the connection closes (`internalError`, or the captured
 *   `fail`) when that PUBLISH reaches the head, after the earlier ones were acknowledged; nothing
 *   after it is acknowledged. A step that throws closes the connection at once. Settlements after
 *   the host closed are ignored.
 */
export class PublishPipeline {
  /** A PUBLISH in progress failed: nothing more is handled, the connection closes at its turn. */
  halted = false
  /** PUBLISH packets in progress, oldest first. */
  private readonly slots: PublishSlot[] = []
  /** The slot whose handler runs now while earlier ones are in progress: its sends wait. */
  private capture: PublishSlot | undefined = undefined
  private readonly host: PublishPipelineHost

  constructor(host: PublishPipelineHost) {
    this.host = host
  }

  /** Nothing is in progress and nothing failed. */
  get idle(): boolean {
    return !this.halted && this.slots.length === 0
  }

  /** A handler runs now with earlier PUBLISH packets in progress: what it sends or fails waits. */
  get capturing(): boolean {
    return this.capture !== undefined
  }

  /**
   * Before dispatching a packet (a PUBLISH: `holdsBack` let it through): if earlier PUBLISH packets
   * are in progress, give it a slot and capture what its handler sends until `endDispatch`.
   */
  beginDispatch(): void {
    if (this.slots.length === 0) return
    const slot: PublishSlot = { settled: true, sent: undefined, step: undefined, failure: undefined }
    this.slots.push(slot)
    this.capture = slot
  }

  /**
   * The handler returned (`failure` undefined) or threw: a captured PUBLISH keeps `failure` for its
   * turn and halts the pipeline (true); otherwise (false) the caller handles the error at once.
   */
  endDispatch(failure: (() => void) | undefined): boolean {
    const slot = this.capture
    this.capture = undefined
    if (failure === undefined || slot === undefined) return false
    slot.failure ??= failure
    this.halted = true
    return true
  }

  /** While capturing: hold `packet` back until the PUBLISH's turn. */
  hold(packet: Packet): void {
    const capture = this.capture!
    ;(capture.sent ??= []).push(packet)
  }

  /** While capturing: the PUBLISH failed, `failure` closes the connection at its turn. */
  failLater(failure: () => void): void {
    this.capture!.failure ??= failure
    this.halted = true
  }

  /** Whether `packet` must wait for the PUBLISH packets in progress (or a failure). */
  holdsBack(packet: Packet): boolean {
    if (this.halted) return true
    const inProgress = this.slots.length
    if (inProgress === 0) return false
    // Only PUBLISH overlaps PUBLISH; everything else waits until they all finished.
    return packet.type !== 'publish' || inProgress >= PIPELINE_DEPTH
  }

  /** The asynchronous rest of the PUBLISH being dispatched (see `ConnectContext.finishPublish`). */
  track(rest: Promise<PublishStep | undefined>, issued: boolean): void {
    let slot = this.capture
    if (slot === undefined) {
      // Nothing else in progress: this PUBLISH heads the queue.
      slot = { settled: false, sent: undefined, step: undefined, failure: undefined }
      this.slots.push(slot)
    } else {
      slot.settled = false
    }
    const done = slot
    rest.then(
      (step) => this.settle(done, step, issued, undefined),
      (error: unknown) => this.settle(done, undefined, issued, error ?? new Error('handler failed'))
    )
  }

  private settle(slot: PublishSlot, step: PublishStep | undefined, issued: boolean, error: unknown): void {
    const host = this.host
    if (host.closed) return
    slot.settled = true
    if (error !== undefined) {
      slot.failure ??= () => host.internalError(error)
      this.halted = true
    } else {
      slot.step = step
    }
    host.publishSettled(issued)
  }

  /** Finish the settled PUBLISH packets at the head of the queue, in arrival order. */
  finishSettled(): void {
    const slots = this.slots
    const host = this.host
    while (slots.length > 0 && slots[0]!.settled && !host.closed) {
      const slot = slots.shift()!
      const sent = slot.sent
      if (sent !== undefined) for (const packet of sent) host.send(packet)
      if (slot.failure !== undefined) {
        slot.failure()
        return
      }
      const step = slot.step
      if (step === undefined) continue
      try {
        step()
      } catch (error) {
        host.internalError(error)
        return
      }
    }
  }
}
