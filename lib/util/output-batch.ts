import { writePublish } from '../packet/publish-template.js'
import type { EncodedPublish } from '../packet/publish-template.js'

/**
 * The packets one connection must send, gathered while the broker handles one input chunk (or one
 * asynchronous step) and written with ONE `write()`: everything is copied into one Buffer, and QoS
 * 1/2 packet identifiers are patched in during that copy (`writePublish`), so the same encoded
 * bytes serve every receiver. This is the single technique that matters most for throughput on
 * Node (see research/node-performance.md).
 *
 * Not thread-safe in any sense but Node's: fill and take within the event loop.
 */
/** Above this many parts in one batch, its arrays are released rather than kept for the next. */
const KEEP_SLOTS = 1024

export class OutputBatch {
  /**
   * The first part and its packet id (0: none / not a template): a batch of one packet (a CONNACK,
   * a PINGRESP, one delivery) never touches the arrays, so a connection that has only ever sent
   * single packets has none (an idle connection pays no array backing stores: 2 × ~150 B).
   */
  private first: Buffer | EncodedPublish | undefined = undefined
  private firstId = 0
  /**
   * The parts after the first, in slots 0 … count-2 (made at the first batch of two or more). The
   * arrays are kept from batch to batch (slots cleared, not the arrays truncated): truncating frees
   * their backing stores and the next batch allocates them again, which was a good part of the
   * garbage made per message. Above `KEEP_SLOTS` they are released, so one burst does not pin a
   * large array for the connection's life.
   */
  private parts: (Buffer | EncodedPublish | undefined)[] | undefined = undefined
  /** Packet id for each of `parts` (0: none / not a template). */
  private ids: number[] | undefined = undefined
  private count = 0
  /** Total bytes gathered. */
  length = 0

  /** True when nothing is waiting. */
  get empty(): boolean {
    return this.count === 0
  }

  /** Add ready bytes (kept by reference until `take`: the caller must not change them). */
  push(bytes: Buffer): void {
    this.add(bytes, 0)
    this.length += bytes.length
  }

  /** Add an encoded PUBLISH variant, with `packetId` to patch in (ignored for QoS 0 variants). */
  pushPublish(variant: EncodedPublish, packetId: number): void {
    this.add(variant, packetId)
    this.length += variant.bytes.length
  }

  private add(part: Buffer | EncodedPublish, packetId: number): void {
    const n = this.count++
    if (n === 0) {
      this.first = part
      this.firstId = packetId
      return
    }
    const parts = (this.parts ??= [])
    const ids = (this.ids ??= [])
    parts[n - 1] = part
    ids[n - 1] = packetId
  }

  /** The whole batch as one Buffer (undefined when empty), and reset. */
  take(): Buffer | undefined {
    const n = this.count
    if (n === 0) return undefined
    let out: Buffer
    const first = this.first!
    if (n === 1 && (Buffer.isBuffer(first) || first.packetIdOffset < 0)) {
      // One packet with nothing to patch: write its bytes as they are (shared, never modified).
      out = Buffer.isBuffer(first) ? first : first.bytes
    } else {
      out = Buffer.allocUnsafe(this.length)
      let offset: number
      if (Buffer.isBuffer(first)) {
        out.set(first, 0)
        offset = first.length
      } else {
        offset = writePublish(out, 0, first, this.firstId)
      }
      const parts = this.parts
      const ids = this.ids
      for (let i = 0; i < n - 1; i++) {
        const part = parts![i]!
        if (Buffer.isBuffer(part)) {
          out.set(part, offset)
          offset += part.length
        } else {
          offset = writePublish(out, offset, part, ids![i]!)
        }
      }
      // Reuse the arrays: no allocation per flush beyond the output Buffer itself; the slots are
      // cleared so that no sent Buffer stays referenced.
      if (n > KEEP_SLOTS) {
        this.parts = undefined
        this.ids = undefined
      } else {
        for (let i = 0; i < n - 1; i++) parts![i] = undefined
      }
    }
    this.first = undefined
    this.count = 0
    this.length = 0
    return out
  }
}
