import { checkPacketId } from './header.js'
import { propertiesLength, stringBytes, writeProperties, writeString } from './properties.js'
import type { ProtocolLevel, PublishProperties, QoS } from './types.js'
import { MAX_VARINT, varintLength, writeVarint } from './varint.js'

/** The bytes of one PUBLISH variant; for QoS 1 and 2 the packet identifier is patched in on output. */
export interface EncodedPublish {
  /** The whole packet. For QoS > 0 the two packet identifier bytes at `packetIdOffset` are zero. */
  readonly bytes: Buffer
  /** Offset of the packet identifier in `bytes`, or -1 for QoS 0. */
  readonly packetIdOffset: number
}

/** What a template encodes: everything of a PUBLISH but QoS, RETAIN, DUP and the packet id. */
export interface PublishContent {
  topic: string
  payload: Buffer
  properties?: PublishProperties
}

/**
 * Encode one PUBLISH once and reuse the bytes for many receivers. A message reaches receivers as
 * a handful of variants (QoS 0/1/2 × RETAIN × DUP); each variant is encoded on first use and
 * cached, with the packet identifier left for `writePublish` to patch while copying into a
 * connection's output batch. Topic, properties and payload are encoded once per variant, never per
 * receiver. Templates are per protocol level: levels 3 and 4 share bytes, 5 adds properties.
 */
export class PublishTemplate {
  readonly content: PublishContent
  readonly protocolLevel: ProtocolLevel
  /** Length of the variable header and payload, without a packet identifier. */
  private readonly baseLength: number
  private readonly propsLength: number
  private readonly topicBytes: number
  /** Variants by (qos << 2 | retain << 1 | dup). */
  private readonly variants: (EncodedPublish | undefined)[] = []

  constructor(content: PublishContent, protocolLevel: ProtocolLevel) {
    if (!Buffer.isBuffer(content.payload)) throw new TypeError('PUBLISH: payload must be a Buffer')
    this.content = content
    this.protocolLevel = protocolLevel
    this.topicBytes = stringBytes('topic', content.topic)
    let length = 2 + this.topicBytes + content.payload.length
    this.propsLength = 0
    if (protocolLevel === 5) {
      this.propsLength = propertiesLength(content.properties, 'publish')
      length += varintLength(this.propsLength) + this.propsLength
    }
    this.baseLength = length
  }

  /** The cached bytes of a variant (encoded on first use). */
  variant(qos: QoS, retain: boolean, dup: boolean): EncodedPublish {
    const key = (qos << 2) | (retain ? 2 : 0) | (dup ? 1 : 0)
    const cached = this.variants[key]
    if (cached !== undefined) return cached
    const encoded = this.build(qos, retain, dup)
    this.variants[key] = encoded
    return encoded
  }

  /** A new Buffer holding the variant with `packetId` written (for QoS > 0). */
  encode(qos: QoS, retain: boolean, dup: boolean, packetId?: number): Buffer {
    const variant = this.variant(qos, retain, dup)
    const out = Buffer.allocUnsafe(variant.bytes.length)
    writePublish(out, 0, variant, qos > 0 ? checkPacketId(packetId, 'PUBLISH') : 0)
    return out
  }

  private build(qos: QoS, retain: boolean, dup: boolean): EncodedPublish {
    const { topic, payload, properties } = this.content
    const length = this.baseLength + (qos > 0 ? 2 : 0)
    if (length > MAX_VARINT) throw new TypeError('PUBLISH: packet exceeds the MQTT maximum size')
    const bytes = Buffer.allocUnsafe(1 + varintLength(length) + length)
    bytes[0] = 0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0)
    let o = writeVarint(bytes, 1, length)
    o = writeString(bytes, o, topic, this.topicBytes)
    let packetIdOffset = -1
    if (qos > 0) {
      packetIdOffset = o
      bytes[o++] = 0
      bytes[o++] = 0
    }
    if (this.protocolLevel === 5) o = writeProperties(bytes, o, properties, this.propsLength)
    bytes.set(payload, o)
    return { bytes, packetIdOffset }
  }
}

/**
 * Copy an encoded PUBLISH into `target` at `offset`, writing `packetId` into it when it has one;
 * returns the offset after the packet. Used to fill one output batch per connection.
 */
export function writePublish(target: Buffer, offset: number, encoded: EncodedPublish, packetId: number): number {
  const bytes = encoded.bytes
  target.set(bytes, offset)
  const at = encoded.packetIdOffset
  if (at >= 0) {
    target[offset + at] = packetId >> 8
    target[offset + at + 1] = packetId & 0xff
  }
  return offset + bytes.length
}
