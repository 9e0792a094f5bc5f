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
  /**
   * The first variant made (most templates only ever need one: a client's publish, a message to
   * subscribers at one QoS) and its key (qos << 2 | retain << 1 | dup); the others by key, in an
   * array made only when a second variant is needed.
   */
  private firstKey = -1
  private first: EncodedPublish | undefined
  private variants: (EncodedPublish | undefined)[] | undefined

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
    const key = variantKey(qos, retain, dup)
    if (key === this.firstKey) return this.first!
    const cached = this.variants?.[key]
    if (cached !== undefined) return cached
    const encoded = this.build(qos, retain, dup)
    this.keep(key, encoded)
    return encoded
  }

  /**
   * Use `bytes`, a received PUBLISH as `Decoder.rawPacket()` gives it, as the variant (qos, retain,
   * dup) instead of encoding it. The content must be the one decoded from those bytes (its payload
   * a view of their end), which makes them exactly what the template would encode: the decoder
   * accepts only valid UTF-8 and minimal lengths. Refused (false, nothing kept) when the length,
   * first byte, topic length or payload position differ, or when MQTT 5 properties are involved. The packet identifier bytes of `bytes` are ignored: they are patched
   * on output. `bytes` must not change afterwards.
   */
  seed(qos: QoS, retain: boolean, dup: boolean, bytes: Buffer): boolean {
    const encoded = seedVariant(this.content, this.protocolLevel, qos, retain, dup, bytes)
    if (encoded === undefined) return false
    this.keep(variantKey(qos, retain, dup), encoded)
    return true
  }

  /** Take `encoded` (made by `seedVariant` for this content and level) as the variant `key` (`variantKey`). */
  adopt(key: number, encoded: EncodedPublish): void {
    this.keep(key, encoded)
  }

  private keep(key: number, encoded: EncodedPublish): void {
    if (this.firstKey < 0 || this.firstKey === key) {
      this.firstKey = key
      this.first = encoded
    } else (this.variants ??= [])[key] = encoded
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

/** The key of a variant among a template's: qos << 2 | retain << 1 | dup. */
export function variantKey(qos: QoS, retain: boolean, dup: boolean): number {
  return (qos << 2) | (retain ? 2 : 0) | (dup ? 1 : 0)
}

/** The last topic `seedVariant` measured and its UTF-8 length (publishers repeat their topic). */
let lastTopic = ''
let lastTopicBytes = 0

/** What `seedOffset` answers for bytes that are not the variant. */
export const SEED_REFUSED = -2

/**
 * Whether `bytes`, a received PUBLISH as `Decoder.rawPacket()` gives it, is the variant (qos,
 * retain, dup) of `content` at `level`: the offset of its packet identifier (-1 at QoS 0), or
 * `SEED_REFUSED`. What `PublishTemplate.seed` checks, without a template or any allocation (the
 * engine seeds every received message; most never need a template). The content must be the one
 * decoded from those bytes (its payload a view of their end), which makes them exactly what a
 * template would encode: the decoder accepts only valid UTF-8 and minimal lengths. Refused when the
 * length, first byte, topic length or payload position differ, or when MQTT 5 properties are
 * involved. The packet identifier bytes of `bytes` are ignored (patched on output); `bytes` must not
 * change afterwards.
 */
export function seedOffset(content: PublishContent, level: ProtocolLevel, qos: QoS, retain: boolean, dup: boolean, bytes: Buffer): number {
  const topic = content.topic
  let topicBytes = lastTopicBytes
  if (topic !== lastTopic) {
    topicBytes = stringBytes('topic', topic)
    lastTopic = topic
    lastTopicBytes = topicBytes
  }
  const payload = content.payload
  let length = 2 + topicBytes + payload.length + (qos > 0 ? 2 : 0)
  if (level === 5) {
    if (content.properties !== undefined && propertiesLength(content.properties, 'publish') !== 0) return SEED_REFUSED
    length += 1 // an empty property list
  }
  const headerSize = 1 + varintLength(length)
  if (bytes.length !== headerSize + length) return SEED_REFUSED
  if (bytes[0] !== (0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 0x01 : 0))) return SEED_REFUSED
  // The topic and payload are compared by position: cheap checks that the bytes are this message.
  if ((((bytes[headerSize] as number) << 8) | (bytes[headerSize + 1] as number)) !== topicBytes) return SEED_REFUSED
  const payloadAt = bytes.length - payload.length
  if (payload.length > 0 && (payload.buffer !== bytes.buffer || payload.byteOffset !== bytes.byteOffset + payloadAt)) return SEED_REFUSED
  return qos > 0 ? headerSize + 2 + topicBytes : -1
}

/** `seedOffset` as an `EncodedPublish` of `bytes` (undefined when refused). */
export function seedVariant(
  content: PublishContent,
  level: ProtocolLevel,
  qos: QoS,
  retain: boolean,
  dup: boolean,
  bytes: Buffer
): EncodedPublish | undefined {
  const packetIdOffset = seedOffset(content, level, qos, retain, dup, bytes)
  return packetIdOffset === SEED_REFUSED ? undefined : { bytes, packetIdOffset }
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
