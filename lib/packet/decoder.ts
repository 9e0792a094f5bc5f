import { decodeAck } from './ack.js'
import { decodeConnack } from './connack.js'
import { decodeConnect } from './connect.js'
import { decodeAuth, decodeDisconnect } from './disconnect.js'
import { MalformedPacketError, MqttError, PacketTooLargeError, ProtocolError } from './errors.js'
import { decodePublish, TopicMemo } from './publish.js'
import { Reader } from './reader.js'
import { decodeSubscribe } from './subscribe.js'
import { decodeSuback, decodeUnsuback } from './suback.js'
import type { Packet, ProtocolLevel } from './types.js'
import { PACKET_TYPE_NAMES } from './types.js'
import { decodeUnsubscribe } from './unsubscribe.js'

/** The largest packet MQTT can express: 1 type byte + 4 length bytes + 268,435,455. */
export const MAX_PACKET_SIZE = 268_435_460

/** Options of a `Decoder`. */
export interface DecoderOptions {
  /**
   * The largest packet accepted, in bytes, counting the fixed header. Checked as soon as the
   * remaining length is known, before any body byte is buffered: a larger packet fails with
   * `PacketTooLargeError` (0x95). Default: `MAX_PACKET_SIZE`.
   */
  maximumPacketSize?: number
  /** The protocol level for every packet but CONNECT (default 4). A decoded CONNECT sets it. */
  protocolLevel?: ProtocolLevel
  /**
   * Which side decodes: `'server'` refuses packets only a server sends (CONNACK, SUBACK,
   * UNSUBACK, PINGRESP), `'client'` those only a client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE,
   * PINGREQ), both with `ProtocolError`. Default `'any'`.
   */
  role?: 'server' | 'client' | 'any'
}

/** Packet types a server never receives (bit per type number) and a client never receives. */
const SERVER_REFUSES = (1 << 2) | (1 << 9) | (1 << 11) | (1 << 13)
const CLIENT_REFUSES = (1 << 1) | (1 << 8) | (1 << 10) | (1 << 12)

/**
 * Required fixed-header flags per type [MQTT-2.2.2-1]: 0b0010 for PUBREL, SUBSCRIBE, UNSUBSCRIBE.
 * At level 3 these three may also have DUP (0b1010), and CONNECT's flags are ignored (MQTT 3.1).
 */
const REQUIRED_FLAGS = [0, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0]

const STATE_HEADER = 0
const STATE_BODY = 1

/** The first block gathering a split body holds at least this much (or the whole body, if smaller). */
const MIN_BLOCK = 4096
/** Later blocks double in size up to this bound: memory follows the bytes that arrived. */
const MAX_BLOCK = 1024 * 1024

/**
 * A streaming MQTT decoder: an explicit state machine (fixed header → remaining length → body)
 * that accepts bytes in any chunking and calls `onPacket` for each complete packet.
 *
 * - Never throws for any input: `push` returns the `MqttError` (with its reason code) that stopped
 *   decoding. Every decoding error means the connection must close (`error.disconnect`); after
 *   one, the decoder is failed and every later `push` returns the same error.
 * - A body that lies wholly within one chunk is decoded in place: topics and payloads of PUBLISH
 *   are views (`subarray`) of the chunk, so a caller that reuses its input buffers must copy.
 * - A body split across chunks is gathered into blocks that grow with the bytes that actually
 *   arrived (4 KiB, doubling up to 1 MiB each), never allocated from the announced remaining
 *   length: a header announcing 256 MB costs nothing until the bytes come. The blocks are joined
 *   into one buffer when the body is complete. The announced size is checked against
 *   `maximumPacketSize` before any body byte is buffered.
 * - Exceptions thrown by `onPacket` propagate to the caller of `push` (they are the caller's).
 */
export class Decoder {
  protocolLevel: ProtocolLevel
  maximumPacketSize: number
  private readonly onPacket: (packet: Packet) => void
  private readonly refused: number
  private failure: MqttError | undefined = undefined
  private state = STATE_HEADER
  /** Fixed header bytes of a header split across chunks (type byte + up to 4 length bytes). */
  private head: number[] = []
  /** Announced body size of the packet being gathered. */
  private bodySize = 0
  /** Body bytes gathered so far (in `blocks` and `block`). */
  private bodyFilled = 0
  /** Full blocks of the body being gathered (undefined while it fits one block). */
  private blocks: Buffer[] | undefined = undefined
  /** The block being filled, and its fill. */
  private block: Buffer | undefined = undefined
  private blockFilled = 0
  private firstByte = 0
  private rawChunk: Buffer | undefined = undefined
  private rawStart = 0
  private rawEnd = 0
  /** The last PUBLISH topic (see `TopicMemo`). */
  private readonly topicMemo = new TopicMemo()

  constructor(onPacket: (packet: Packet) => void, options: DecoderOptions = {}) {
    this.onPacket = onPacket
    this.protocolLevel = options.protocolLevel ?? 4
    this.maximumPacketSize = options.maximumPacketSize ?? MAX_PACKET_SIZE
    const role = options.role ?? 'any'
    this.refused = role === 'server' ? SERVER_REFUSES : role === 'client' ? CLIENT_REFUSES : 0
  }

  /** The error that stopped this decoder, if any. */
  get error(): MqttError | undefined {
    return this.failure
  }

  /**
   * Nothing is held: no part of a packet waits for more bytes and decoding has not failed. An idle
   * decoder can be dropped and replaced by a new one (same options, `protocolLevel` included)
   * without changing what the next bytes decode to.
   */
  get idle(): boolean {
    return this.state === STATE_HEADER && this.head.length === 0 && this.failure === undefined
  }

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.state === STATE_BODY ? this.bodyFilled + this.head.length : this.head.length
  }

  /** Bytes allocated for an incomplete packet's body (at most about twice what arrived, bounded steps). */
  get allocated(): number {
    if (this.state !== STATE_BODY) return 0
    let total = this.block === undefined ? 0 : this.block.length
    if (this.blocks !== undefined) for (const block of this.blocks) total += block.length
    return total
  }

  /** Decode every packet `chunk` completes. Returns undefined, or the error that stopped decoding. */
  push(chunk: Buffer): MqttError | undefined {
    if (this.failure !== undefined) return this.failure
    const length = chunk.length
    let pos = 0
    while (pos < length) {
      if (this.state === STATE_BODY) {
        pos = this.gather(chunk, pos, length)
        if (this.bodyFilled < this.bodySize) return undefined
        const body = this.takeBody()
        if (!this.emit(this.firstByte, body, 0, body.length, -1)) return this.failure
        continue
      }
      // Fixed header. Fast path: the whole header lies in this chunk and none is pending.
      let first: number
      let remaining = 0
      // Where this packet's bytes start in the chunk; -1 when its header came in an earlier chunk.
      let packetStart = -1
      if (this.head.length === 0) {
        packetStart = pos
        first = chunk[pos] as number
        let multiplier = 1
        let i = pos + 1
        let complete = false
        for (; i < length && i <= pos + 4; i++) {
          const byte = chunk[i] as number
          remaining += (byte & 0x7f) * multiplier
          if ((byte & 0x80) === 0) {
            complete = true
            if (byte === 0 && i > pos + 1) return this.fail(new MalformedPacketError('remaining length not minimally encoded [MQTT-1.5.5-1]'))
            break
          }
          multiplier *= 128
        }
        if (!complete) {
          if (i > pos + 4) return this.fail(new MalformedPacketError('remaining length longer than 4 bytes [MQTT-1.5.5-1]'))
          // The header continues in the next chunk.
          for (let k = pos; k < length; k++) this.head.push(chunk[k] as number)
          const early = this.checkFirstByte(first)
          if (early !== undefined) return this.fail(early)
          return undefined
        }
        const headerSize = i + 1 - pos
        pos = i + 1
        const problem = this.checkHeader(first, remaining, headerSize)
        if (problem !== undefined) return this.fail(problem)
      } else {
        // Continue a header split across chunks, one byte at a time.
        let done = false
        while (pos < length && !done) {
          const byte = chunk[pos++] as number
          this.head.push(byte)
          if ((byte & 0x80) === 0) done = true
          else if (this.head.length === 5) return this.fail(new MalformedPacketError('remaining length longer than 4 bytes [MQTT-1.5.5-1]'))
        }
        if (!done) return undefined
        const head = this.head
        this.head = []
        first = head[0] as number
        let multiplier = 1
        for (let k = 1; k < head.length; k++) {
          remaining += ((head[k] as number) & 0x7f) * multiplier
          multiplier *= 128
        }
        if (head.length > 2 && head[head.length - 1] === 0) {
          return this.fail(new MalformedPacketError('remaining length not minimally encoded [MQTT-1.5.5-1]'))
        }
        const problem = this.checkHeader(first, remaining, head.length)
        if (problem !== undefined) return this.fail(problem)
      }
      if (length - pos >= remaining) {
        // The whole body is here: decode in place.
        const end = pos + remaining
        if (!this.emit(first, chunk, pos, end, packetStart)) return this.failure
        pos = end
      } else {
        this.firstByte = first
        this.bodySize = remaining
        this.bodyFilled = 0
        this.state = STATE_BODY
        this.gather(chunk, pos, length)
        return undefined
      }
    }
    return undefined
  }

  /**
   * Copy body bytes of `chunk` from `pos` (up to the end of the body) into the blocks, allocating
   * only for bytes that arrived. Returns the position after the bytes taken.
   */
  private gather(chunk: Buffer, pos: number, length: number): number {
    let n = Math.min(this.bodySize - this.bodyFilled, length - pos)
    while (n > 0) {
      let block = this.block
      if (block === undefined || this.blockFilled === block.length) {
        if (block !== undefined) (this.blocks ??= []).push(block)
        const left = this.bodySize - this.bodyFilled
        // Each block is at least what arrived now (within MAX_BLOCK), at least twice the last one.
        const want = Math.max(MIN_BLOCK, n, block === undefined ? 0 : block.length * 2)
        block = this.block = Buffer.allocUnsafe(Math.min(left, want, Math.max(MAX_BLOCK, MIN_BLOCK)))
        this.blockFilled = 0
      }
      const take = Math.min(n, block.length - this.blockFilled)
      chunk.copy(block, this.blockFilled, pos, pos + take)
      this.blockFilled += take
      this.bodyFilled += take
      pos += take
      n -= take
    }
    return pos
  }

  /** The complete body as one buffer; back to reading a fixed header. */
  private takeBody(): Buffer {
    const block = this.block ?? Buffer.alloc(0)
    const blocks = this.blocks
    const body = blocks === undefined ? block : Buffer.concat([...blocks, block], this.bodySize)
    this.state = STATE_HEADER
    this.block = undefined
    this.blocks = undefined
    this.blockFilled = 0
    this.bodyFilled = 0
    this.bodySize = 0
    return body
  }

  private fail(error: MqttError): MqttError {
    this.failure = error
    this.head = []
    this.block = undefined
    this.blocks = undefined
    return error
  }

  /** Checks that need only the first byte (so a bad packet fails before its length arrives). */
  private checkFirstByte(first: number): MqttError | undefined {
    const type = first >> 4
    const flags = first & 0x0f
    const name = PACKET_TYPE_NAMES[type]
    if (name === undefined) return new MalformedPacketError('packet type 0 is reserved [MQTT-2.2.1]')
    if (type === 15 && this.protocolLevel < 5) {
      return new MalformedPacketError('AUTH (packet type 15) is reserved before MQTT 5')
    }
    if ((this.refused & (1 << type)) !== 0) {
      return new ProtocolError(`${name.toUpperCase()} is not sent in this direction`)
    }
    const required = REQUIRED_FLAGS[type] as number
    if (type === 1) {
      // CONNECT: its flags are checked once its protocol level is known (`decodeBody`).
    } else if (required >= 0) {
      // MQTT 3.1 sets DUP on a PUBREL, SUBSCRIBE or UNSUBSCRIBE it sends again: accepted there.
      if (flags !== required && !(this.protocolLevel === 3 && required !== 0 && flags === (required | 0x08))) {
        return new MalformedPacketError(`${name.toUpperCase()}: reserved fixed header flags are 0x${flags.toString(16)} [MQTT-2.2.2-1] [MQTT-2.2.2-2]`)
      }
    } else {
      // PUBLISH: QoS 3 is malformed [MQTT-3.3.1-4]; DUP must be 0 for QoS 0 [MQTT-3.3.1-2].
      const qos = (flags >> 1) & 0x03
      if (qos === 3) return new MalformedPacketError('PUBLISH: QoS 3 [MQTT-3.3.1-4]')
      if (qos === 0 && (flags & 0x08) !== 0) return new MalformedPacketError('PUBLISH: DUP set on QoS 0 [MQTT-3.3.1-2]')
    }
    return undefined
  }

  private checkHeader(first: number, remaining: number, headerSize: number): MqttError | undefined {
    const early = this.checkFirstByte(first)
    if (early !== undefined) return early
    const size = headerSize + remaining
    if (size > this.maximumPacketSize) return new PacketTooLargeError(size, this.maximumPacketSize)
    return undefined
  }

  /** Decode one body and hand the packet on. Returns false when decoding failed. */
  private emit(first: number, buf: Buffer, start: number, end: number, packetStart: number): boolean {
    let packet: Packet
    try {
      packet = this.decodeBody(first, buf, start, end)
    } catch (error) {
      this.fail(error instanceof MqttError ? error : new MalformedPacketError('undecodable packet', { cause: error }))
      return false
    }
    if (packetStart >= 0) {
      this.rawChunk = buf
      this.rawStart = packetStart
      this.rawEnd = end
    }
    try {
      this.onPacket(packet)
    } finally {
      this.rawChunk = undefined
    }
    return true
  }

  /**
   * The whole bytes (fixed header included) of the packet being handed to `onPacket`, as a view of
   * the input chunk; only while `onPacket` runs, and only for a packet that lay wholly in one chunk
   * (undefined otherwise). A broker forwards an unchanged PUBLISH with these bytes instead of
   * encoding it again.
   */
  rawPacket(): Buffer | undefined {
    return this.rawChunk === undefined ? undefined : this.rawChunk.subarray(this.rawStart, this.rawEnd)
  }

  private decodeBody(first: number, buf: Buffer, start: number, end: number): Packet {
    const type = first >> 4
    const level = this.protocolLevel
    switch (type) {
      case 3:
        return decodePublish(buf, start, end, first & 0x0f, level, this.refused === SERVER_REFUSES, this.topicMemo)
      case 4:
        return decodeAck('puback', new Reader(buf, start, end), level)
      case 5:
        return decodeAck('pubrec', new Reader(buf, start, end), level)
      case 6:
        return decodeAck('pubrel', new Reader(buf, start, end), level)
      case 7:
        return decodeAck('pubcomp', new Reader(buf, start, end), level)
      case 1: {
        const packet = decodeConnect(new Reader(buf, start, end))
        // The fixed-header flags are reserved (0) from 3.1.1 on [MQTT-2.2.2-1]; "not used" in 3.1: ignored.
        if ((first & 0x0f) !== 0 && packet.protocolLevel !== 3) {
          throw new MalformedPacketError(`CONNECT: reserved fixed header flags are 0x${(first & 0x0f).toString(16)} [MQTT-2.2.2-1] [MQTT-2.2.2-2]`)
        }
        this.protocolLevel = packet.protocolLevel
        return packet
      }
      case 2:
        return decodeConnack(new Reader(buf, start, end), level)
      case 8:
        return decodeSubscribe(new Reader(buf, start, end), level)
      case 9:
        return decodeSuback(new Reader(buf, start, end), level)
      case 10:
        return decodeUnsubscribe(new Reader(buf, start, end), level)
      case 11:
        return decodeUnsuback(new Reader(buf, start, end), level)
      case 12:
      case 13:
        if (end !== start) throw new MalformedPacketError(`${type === 12 ? 'PINGREQ' : 'PINGRESP'}: remaining length must be 0`)
        return type === 12 ? { type: 'pingreq' } : { type: 'pingresp' }
      case 14:
        if (level < 5 && end !== start) throw new MalformedPacketError('DISCONNECT: remaining length must be 0 before MQTT 5')
        return decodeDisconnect(new Reader(buf, start, end))
      default:
        return decodeAuth(new Reader(buf, start, end))
    }
  }
}

/** Decode every packet in `bytes` (a convenience for tests and tools). */
export function decodeAll(bytes: Buffer, options?: DecoderOptions): { packets: Packet[]; error?: MqttError } {
  const packets: Packet[] = []
  const decoder = new Decoder((p) => packets.push(p), options)
  const error = decoder.push(bytes)
  if (error === undefined && decoder.buffered > 0) {
    return { packets, error: new MalformedPacketError(`incomplete packet: ${decoder.buffered} bytes left over`) }
  }
  return error === undefined ? { packets } : { packets, error }
}
