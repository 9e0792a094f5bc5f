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
export class OutputBatch {
  private readonly parts: (Buffer | EncodedPublish)[] = []
  /** Packet id for each part (0: none / not a template). */
  private readonly ids: number[] = []
  /** Total bytes gathered. */
  length = 0

  /** True when nothing is waiting. */
  get empty(): boolean {
    return this.parts.length === 0
  }

  /** Add ready bytes (kept by reference until `take`: the caller must not change them). */
  push(bytes: Buffer): void {
    this.parts.push(bytes)
    this.ids.push(0)
    this.length += bytes.length
  }

  /** Add an encoded PUBLISH variant, with `packetId` to patch in (ignored for QoS 0 variants). */
  pushPublish(variant: EncodedPublish, packetId: number): void {
    this.parts.push(variant)
    this.ids.push(packetId)
    this.length += variant.bytes.length
  }

  /** The whole batch as one Buffer (undefined when empty), and reset. */
  take(): Buffer | undefined {
    const parts = this.parts
    const n = parts.length
    if (n === 0) return undefined
    let out: Buffer
    const first = parts[0]!
    if (n === 1 && (Buffer.isBuffer(first) || first.packetIdOffset < 0)) {
      // One packet with nothing to patch: write its bytes as they are (shared, never modified).
      out = Buffer.isBuffer(first) ? first : first.bytes
    } else {
      out = Buffer.allocUnsafe(this.length)
      let offset = 0
      const ids = this.ids
      for (let i = 0; i < n; i++) {
        const part = parts[i]!
        if (Buffer.isBuffer(part)) {
          part.copy(out, offset)
          offset += part.length
        } else {
          offset = writePublish(out, offset, part, ids[i]!)
        }
      }
    }
    // Reuse the arrays: no allocation per flush beyond the output Buffer itself.
    parts.length = 0
    this.ids.length = 0
    this.length = 0
    return out
  }
}
