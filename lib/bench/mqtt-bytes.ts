/**
 * Hand-encoded MQTT 3.1.1 packets and a streaming packet splitter for the load generator.
 *
 * The generator deliberately shares no code with the broker under test (nor with mqtt-packet):
 * every packet it sends is built here byte by byte, and every packet it receives is split here
 * without allocating per packet, so the generator stays cheap and neutral.
 */

/** MQTT control packet types (high nibble of the first byte), MQTT 3.1.1 §2.2.1. */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14
} as const

/** Number of bytes the Remaining Length variable byte integer takes for `n` (§2.2.3). */
export function varintSize (n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4
}

/** Writes `n` as a variable byte integer at `pos`; returns the position after it. */
export function writeVarint (buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    buf[pos++] = b
  } while (n > 0)
  return pos
}

function fixedHeader (b0: number, remaining: number): Buffer {
  const buf = Buffer.allocUnsafe(1 + varintSize(remaining) + remaining)
  buf[0] = b0
  writeVarint(buf, 1, remaining)
  return buf
}

/** CONNECT, protocol level 4 (3.1.1), clean session, no will, no credentials. */
export function encodeConnect (clientId: string, keepalive: number): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  const remaining = 10 + 2 + id.length
  const buf = fixedHeader(0x10, remaining)
  let pos = buf.length - remaining
  pos = buf.writeUInt16BE(4, pos)
  pos += buf.write('MQTT', pos, 'latin1')
  buf[pos++] = 4 // protocol level 3.1.1
  buf[pos++] = 0x02 // clean session
  pos = buf.writeUInt16BE(keepalive, pos)
  pos = buf.writeUInt16BE(id.length, pos)
  id.copy(buf, pos)
  return buf
}

/** SUBSCRIBE with one topic filter at `qos`. */
export function encodeSubscribe (packetId: number, filter: string, qos: number): Buffer {
  const f = Buffer.from(filter, 'utf8')
  const remaining = 2 + 2 + f.length + 1
  const buf = fixedHeader(0x82, remaining)
  let pos = buf.length - remaining
  pos = buf.writeUInt16BE(packetId, pos)
  pos = buf.writeUInt16BE(f.length, pos)
  pos += f.copy(buf, pos)
  buf[pos] = qos
  return buf
}

/** DISCONNECT (2 bytes). */
export const DISCONNECT = Buffer.from([0xe0, 0x00])

/** PINGREQ (2 bytes). */
export const PINGREQ = Buffer.from([0xc0, 0x00])

/**
 * A PUBLISH template for one topic and payload size. `write` stamps the packet into a batch
 * buffer; the caller then fills the payload (see `payloadOffset`) and, for QoS 1, the packet id.
 */
export class PublishTemplate {
  /** The whole packet, payload zero-filled. */
  readonly bytes: Buffer
  /** Offset of the packet id inside the packet (QoS 1/2), or -1 for QoS 0. */
  readonly idOffset: number
  /** Offset of the payload inside the packet. */
  readonly payloadOffset: number

  constructor (topic: string, payloadSize: number, qos: 0 | 1 | 2) {
    const t = Buffer.from(topic, 'utf8')
    const remaining = 2 + t.length + (qos > 0 ? 2 : 0) + payloadSize
    const buf = fixedHeader(0x30 | (qos << 1), remaining)
    let pos = buf.length - remaining
    pos = buf.writeUInt16BE(t.length, pos)
    pos += t.copy(buf, pos)
    this.idOffset = qos > 0 ? pos : -1
    if (qos > 0) pos = buf.writeUInt16BE(0, pos)
    this.payloadOffset = pos
    buf.fill(0x2e, pos) // '.' filler
    this.bytes = buf
  }

  get length (): number { return this.bytes.length }
}

/** Receiver of split packets: `b0` is the first byte, the body is `buf[start, end)`. */
export interface PacketSink {
  onPacket (b0: number, buf: Buffer, start: number, end: number): void
}

/**
 * A streaming MQTT packet splitter: feed it chunks as they arrive, in any split, and it calls
 * `sink.onPacket` once per complete packet. Packets wholly inside a chunk are handed over as a
 * range of that chunk (no copy); only a packet that straddles chunks is copied, once.
 * Throws on a Remaining Length longer than 4 bytes (a malformed stream is a generator failure).
 */
export class PacketSplitter {
  private pend: Buffer = Buffer.allocUnsafe(256)
  private plen = 0

  constructor (private readonly sink: PacketSink) {}

  /** Bytes held from an incomplete packet (0 between packets). */
  get pending (): number { return this.plen }

  /** Splits the first `n` bytes of `chunk` (default: all of it; a length instead of a view: no allocation per chunk). */
  push (chunk: Buffer, n: number = chunk.length): void {
    let pos = 0
    if (this.plen > 0) {
      pos = this.completePending(chunk, n)
      if (pos < 0) return
    }
    while (pos < n) {
      // Fixed header: type byte, then 1-4 bytes of Remaining Length.
      if (pos + 2 > n) break
      let len = 0
      let mul = 1
      let i = pos + 1
      let done = false
      while (i < n && i < pos + 5) {
        const b = chunk[i++]!
        len += (b & 127) * mul
        mul *= 128
        if ((b & 128) === 0) { done = true; break }
      }
      if (!done) {
        if (i >= pos + 5) throw new Error('malformed Remaining Length from broker')
        break
      }
      const end = i + len
      if (end > n) break
      this.sink.onPacket(chunk[pos]!, chunk, i, end)
      pos = end
    }
    if (pos < n) this.hold(chunk, pos, n)
  }

  private hold (chunk: Buffer, from: number, to: number): void {
    const need = this.plen + to - from
    if (need > this.pend.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, this.pend.length * 2))
      this.pend.copy(bigger, 0, 0, this.plen)
      this.pend = bigger
    }
    chunk.copy(this.pend, this.plen, from, to)
    this.plen += to - from
  }

  /**
   * Completes the held packet with the start of `chunk`; returns how many bytes of `chunk` were
   * used, or -1 if the whole chunk went into the (still incomplete) pending packet.
   */
  private completePending (chunk: Buffer, n: number): number {
    let used = 0
    // Make sure the whole fixed header is held (at most 5 bytes), one byte at a time: rare.
    let total = this.headerTotal()
    while (total < 0) {
      if (used >= n) return -1
      this.hold(chunk, used, used + 1)
      used++
      total = this.headerTotal()
    }
    const missing = total - this.plen
    if (missing > n - used) {
      this.hold(chunk, used, n)
      return -1
    }
    this.hold(chunk, used, used + missing)
    used += missing
    const p = this.pend
    this.plen = 0
    this.sink.onPacket(p[0]!, p, total - this.bodyLength(), total)
    return used
  }

  /** Total packet length if the held bytes contain the whole fixed header, else -1. */
  private headerTotal (): number {
    let len = 0
    let mul = 1
    for (let i = 1; i < this.plen && i < 5; i++) {
      const b = this.pend[i]!
      len += (b & 127) * mul
      mul *= 128
      if ((b & 128) === 0) return i + 1 + len
    }
    if (this.plen >= 5) throw new Error('malformed Remaining Length from broker')
    return -1
  }

  private bodyLength (): number {
    let len = 0
    let mul = 1
    for (let i = 1; i < 5; i++) {
      const b = this.pend[i]!
      len += (b & 127) * mul
      mul *= 128
      if ((b & 128) === 0) break
    }
    return len
  }
}
