import { MalformedPacketError, ProtocolError, TopicNameInvalidError } from './errors.js'
import { allocPacket, checkPacketId, checkWritten } from './header.js'
import { propertiesLength, readProperties, stringBytes, writeProperties, writeString } from './properties.js'
import { Reader } from './reader.js'
import type { ProtocolLevel, PublishPacket, QoS } from './types.js'
import { decodeString, utf8Problem } from './utf8.js'
import { varintLength } from './varint.js'

const WHAT = 'PUBLISH'

/**
 * A topic name in a PUBLISH (or a will) must not hold wildcards [MQTT-3.3.2-2] [MQTT-4.7.1-1].
 * It may be empty only in MQTT 5 with a topic alias; that is checked by the caller.
 */
export function checkTopicNameForDecode(topic: string, what: string, mayBeEmpty: boolean): void {
  if (topic.length === 0) {
    if (mayBeEmpty) return
    throw new TopicNameInvalidError(`${what}: empty topic name [MQTT-4.7.3-1]`)
  }
  if (topic.includes('+') || topic.includes('#')) {
    throw new TopicNameInvalidError(`${what}: wildcard in topic name ${JSON.stringify(topic)} [MQTT-3.3.2-2]`)
  }
}

/**
 * A Response Topic (of a PUBLISH or a will) is used as the topic name of the response: it must not
 * hold wildcards [MQTT-3.3.2-14]. A Protocol Error (0x82): the packet is well formed.
 */
export function checkResponseTopicForDecode(responseTopic: string | undefined, what: string): void {
  if (responseTopic !== undefined && (responseTopic.includes('+') || responseTopic.includes('#'))) {
    throw new ProtocolError(`${what}: wildcard in Response Topic ${JSON.stringify(responseTopic)} [MQTT-3.3.2-14]`)
  }
}

/** Topics longer than this (in bytes) are not remembered by a `TopicMemo`. */
const MEMO_MAX_BYTES = 256

/**
 * The last topic name one decoder read, with its bytes: publishers mostly repeat their topic, and a
 * repeated topic then costs one byte comparison instead of a UTF-8 check, a string decode and the
 * wildcard checks. Returning the very same string also lets later Map lookups reuse its hash.
 * Only a topic that passed every check is remembered (never the empty topic of a topic alias).
 */
export class TopicMemo {
  #bytes: Buffer | undefined = undefined
  #topic = ''

  /** The remembered topic if `buf[start, end)` holds its bytes, else undefined. */
  lookup(buf: Buffer, start: number, end: number): string | undefined {
    const bytes = this.#bytes
    if (bytes === undefined || bytes.length !== end - start) return undefined
    for (let i = 0, j = start; j < end; i++, j++) if (bytes[i] !== buf[j]) return undefined
    return this.#topic
  }

  /** Remember `topic`, decoded from `buf[start, end)` and valid (copied: the input may be reused). */
  remember(buf: Buffer, start: number, end: number, topic: string): void {
    const length = end - start
    if (length === 0 || length > MEMO_MAX_BYTES) return
    const bytes = this.#bytes !== undefined && this.#bytes.length === length ? this.#bytes : Buffer.allocUnsafe(length)
    buf.copy(bytes, 0, start, end)
    this.#bytes = bytes
    this.#topic = topic
  }
}

/**
 * Decode a PUBLISH body at `buf[start, end)` (the hot path: the topic and payload are read without
 * a Reader where possible, the payload is a view of the input). `flags` is the low nibble of the
 * first byte, already checked for QoS 3 and DUP on QoS 0. `fromClient` refuses subscription
 * identifiers, which only a server sends [MQTT-3.3.4-6]. `memo` (one per connection) skips the
 * decoding and checks of a topic equal to the previous one.
 */
export function decodePublish(
  buf: Buffer,
  start: number,
  end: number,
  flags: number,
  level: ProtocolLevel,
  fromClient: boolean,
  memo?: TopicMemo
): PublishPacket {
  const qos = ((flags >> 1) & 0x03) as QoS
  if (start + 2 > end) throw new MalformedPacketError(`${WHAT}: packet ends before the topic name`)
  const topicLength = ((buf[start] as number) << 8) | (buf[start + 1] as number)
  const topicStart = start + 2
  let pos = topicStart + topicLength
  if (pos > end) throw new MalformedPacketError(`${WHAT}: topic name runs past the end of the packet`)
  const topicEnd = pos
  let topic = memo?.lookup(buf, topicStart, topicEnd)
  const known = topic !== undefined
  if (topic === undefined) {
    const problem = utf8Problem(buf, topicStart, pos)
    if (problem !== undefined) throw new MalformedPacketError(`${WHAT} topic name: ${problem}`)
    topic = decodeString(buf, topicStart, pos)
  }
  let packetId: number | undefined
  if (qos > 0) {
    if (pos + 2 > end) throw new MalformedPacketError(`${WHAT}: packet ends before the packet identifier`)
    packetId = ((buf[pos] as number) << 8) | (buf[pos + 1] as number)
    if (packetId === 0) throw new ProtocolError(`${WHAT}: packet identifier 0 [MQTT-2.2.1-3]`)
    pos += 2
  }
  let properties
  if (level === 5) {
    // The common case is an empty property list: one zero byte.
    if (pos < end && buf[pos] === 0) {
      pos += 1
    } else {
      const r = new Reader(buf, pos, end)
      properties = readProperties(r, 'publish', WHAT)
      pos = r.pos
      if (properties !== undefined) {
        if (fromClient && properties.subscriptionIdentifiers !== undefined) {
          throw new ProtocolError(`${WHAT}: a client must not send subscription identifiers [MQTT-3.3.4-6]`)
        }
        checkResponseTopicForDecode(properties.responseTopic, WHAT)
      }
    }
  }
  if (level === 5 && topic.length === 0 && properties?.topicAlias === undefined) {
    // "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias" (3.3.2.1).
    throw new ProtocolError(`${WHAT}: empty topic name without a topic alias`)
  }
  if (!known) {
    checkTopicNameForDecode(topic, WHAT, level === 5)
    memo?.remember(buf, topicStart, topicEnd, topic)
  }
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: buf.subarray(pos, end),
    qos,
    retain: (flags & 0x01) !== 0,
    dup: (flags & 0x08) !== 0
  }
  if (packetId !== undefined) packet.packetId = packetId
  if (properties !== undefined) packet.properties = properties
  return packet
}

/** Encode a PUBLISH at `level` (properties only at 5). */
export function encodePublish(packet: PublishPacket, level: ProtocolLevel): Buffer {
  const qos = packet.qos
  if (qos !== 0 && qos !== 1 && qos !== 2) throw new TypeError(`${WHAT}: qos must be 0, 1 or 2`)
  if (!Buffer.isBuffer(packet.payload)) throw new TypeError(`${WHAT}: payload must be a Buffer`)
  const topicBytes = stringBytes('topic', packet.topic)
  let length = 2 + topicBytes + packet.payload.length
  if (qos > 0) {
    checkPacketId(packet.packetId, WHAT)
    length += 2
  }
  let propsLength = 0
  if (level === 5) {
    propsLength = propertiesLength(packet.properties, 'publish')
    length += varintLength(propsLength) + propsLength
  }
  const first = 0x30 | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0)
  const [buffer, start] = allocPacket(first, length)
  let o = writeString(buffer, start, packet.topic, topicBytes)
  if (qos > 0) {
    buffer.writeUInt16BE(packet.packetId as number, o)
    o += 2
  }
  if (level === 5) o = writeProperties(buffer, o, packet.properties, propsLength)
  buffer.set(packet.payload, o)
  return checkWritten(buffer, o + packet.payload.length, WHAT)
}
