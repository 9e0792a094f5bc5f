import { isShortAck } from '../packet/ack.js'
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

/** Batches of more parts or bytes than this are not remembered by a `SharedTake` (bounds what it pins). */
const SHARE_MAX_PARTS = 4096
const SHARE_MAX_BYTES = 1024 * 1024

/**
 * The last batch built by any `OutputBatch` given this object: its parts (by identity), their packet
 * ids and the Buffer made of them. A batch with the very same parts and ids is the very same bytes,
 * so it gets that Buffer instead of a copy of its own. Fan-out is the case: every subscriber of a
 * topic gathers the same template variants while the broker handles one input chunk (at QoS 0, or
 * at QoS 1 when their sessions number the messages alike), and one Buffer then serves all of them —
 * one copy and one allocation per input chunk instead of one per subscriber. Comparing costs a
 * pointer per part, and a batch that differs mostly differs at its first part. The shared Buffer is
 * never written after it was built (batches write only into Buffers they allocated).
 */
export class SharedTake {
  first: Buffer | EncodedPublish | undefined = undefined
  firstId = 0
  /** The parts after the first (slots 0 … count-2), as in `OutputBatch`. */
  parts: (Buffer | EncodedPublish | undefined)[] | undefined = undefined
  ids: number[] | undefined = undefined
  count = 0
  out: Buffer | undefined = undefined
  /** Batches answered with the remembered Buffer (a counter for benchmarks and tests). */
  hits = 0

  /** Forget the remembered batch (it pins its Buffer and the parts' bytes until the next one). */
  clear(): void {
    const parts = this.parts
    if (parts !== undefined) for (let i = 0; i < this.count - 1; i++) parts[i] = undefined
    this.first = undefined
    this.count = 0
    this.out = undefined
  }
}

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

  /** @param shared where batches with the same content share one Buffer (see `SharedTake`). */
  constructor(private readonly shared?: SharedTake) {}

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
    let kept = false
    const first = this.first!
    const parts = this.parts
    if (n === 1 && (Buffer.isBuffer(first) || first.packetIdOffset < 0)) {
      // One packet with nothing to patch: write its bytes as they are (shared, never modified).
      out = Buffer.isBuffer(first) ? first : first.bytes
    } else {
      const shared = this.shared
      const known = shared === undefined ? undefined : this.sameAs(shared)
      if (known !== undefined) {
        out = known
      } else {
        out = Buffer.allocUnsafe(this.length)
        let offset: number
        if (Buffer.isBuffer(first)) {
          out.set(first, 0)
          offset = first.length
        } else {
          offset = writePublish(out, 0, first, this.firstId)
        }
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
        // A batch of acknowledgements is one connection's own: not worth remembering.
        if (shared !== undefined && !isShortAck(first) && n <= SHARE_MAX_PARTS && out.length <= SHARE_MAX_BYTES) {
          this.remember(shared, out)
          kept = true
        }
      }
    }
    // Reuse the arrays: no allocation per flush beyond the output Buffer itself; the slots are
    // cleared so that no sent Buffer stays referenced (a remembered batch's arrays went to the
    // `SharedTake`, and came back cleared).
    if (kept) {
      // Done by `remember`.
    } else if (n > KEEP_SLOTS) {
      this.parts = undefined
      this.ids = undefined
    } else if (parts !== undefined) {
      for (let i = 0; i < n - 1; i++) parts[i] = undefined
    }
    this.first = undefined
    this.count = 0
    this.length = 0
    return out
  }

  /** `shared`'s Buffer when this batch has exactly its parts and packet ids, else undefined. */
  private sameAs(shared: SharedTake): Buffer | undefined {
    const n = this.count
    const out = shared.out
    if (out === undefined || shared.count !== n || out.length !== this.length) return undefined
    if (shared.first !== this.first || shared.firstId !== this.firstId) return undefined
    const parts = this.parts
    const ids = this.ids
    const known = shared.parts
    const knownIds = shared.ids
    for (let i = 0; i < n - 1; i++) if (parts![i] !== known![i] || ids![i] !== knownIds![i]) return undefined
    shared.hits++
    return out
  }

  /**
   * Make this batch, built into `out`, the one `shared` remembers: its arrays and the shared ones
   * change places (nothing copied), and the arrays this batch gets back are cleared — the same
   * work as clearing its own, so remembering costs nothing per part.
   */
  private remember(shared: SharedTake, out: Buffer): void {
    const parts = shared.parts
    const ids = shared.ids
    const count = shared.count
    shared.first = this.first
    shared.firstId = this.firstId
    shared.parts = this.parts
    shared.ids = this.ids
    shared.count = this.count
    shared.out = out
    if (parts !== undefined) for (let i = 0; i < count - 1; i++) parts[i] = undefined
    if (count > KEEP_SLOTS) {
      this.parts = undefined
      this.ids = undefined
    } else {
      this.parts = parts
      this.ids = ids
    }
  }
}
