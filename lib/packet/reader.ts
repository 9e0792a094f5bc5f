import { MalformedPacketError, ProtocolError } from './errors.js'
import { utf8Problem, decodeString } from './utf8.js'

/**
 * A cursor over one packet body `buf[pos, end)`. Each read checks the bounds and throws a
 * `MalformedPacketError` when the body ends early; the decoder catches it at its entry point, so
 * errors never leave `Decoder.push`.
 */
export class Reader {
  buf: Buffer
  pos: number
  end: number

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get remaining(): number {
    return this.end - this.pos
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw short(what)
    return this.buf[this.pos++] as number
  }

  u16(what: string): number {
    const p = this.pos
    if (p + 2 > this.end) throw short(what)
    this.pos = p + 2
    return ((this.buf[p] as number) << 8) | (this.buf[p + 1] as number)
  }

  u32(what: string): number {
    const p = this.pos
    if (p + 4 > this.end) throw short(what)
    this.pos = p + 4
    return this.buf.readUInt32BE(p)
  }

  /** A Variable Byte Integer: at most 4 bytes, minimally encoded [MQTT-1.5.5-1]. */
  varint(what: string): number {
    let value = 0
    let multiplier = 1
    for (let i = 0; i < 4; i++) {
      const byte = this.u8(what)
      value += (byte & 0x7f) * multiplier
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) {
          throw new MalformedPacketError(`${what}: Variable Byte Integer not minimally encoded [MQTT-1.5.5-1]`)
        }
        return value
      }
      multiplier *= 128
    }
    throw new MalformedPacketError(`${what}: Variable Byte Integer longer than 4 bytes [MQTT-1.5.5-1]`)
  }

  /** A UTF-8 Encoded String (two-byte length + bytes), validated [MQTT-1.5.4-1] [MQTT-1.5.4-2]. */
  string(what: string): string {
    const length = this.u16(what)
    const start = this.pos
    const end = start + length
    if (end > this.end) throw short(what)
    this.pos = end
    const problem = utf8Problem(this.buf, start, end)
    if (problem !== undefined) throw new MalformedPacketError(`${what}: ${problem}`)
    return decodeString(this.buf, start, end)
  }

  /** Binary Data (two-byte length + bytes), as a view of the input. */
  binary(what: string): Buffer {
    const length = this.u16(what)
    const start = this.pos
    const end = start + length
    if (end > this.end) throw short(what)
    this.pos = end
    return this.buf.subarray(start, end)
  }

  /** The rest of the body, as a view of the input. */
  rest(): Buffer {
    const view = this.buf.subarray(this.pos, this.end)
    this.pos = this.end
    return view
  }

  /** The body must be fully consumed: bytes left over mean the remaining length was wrong. */
  done(what: string): void {
    if (this.pos !== this.end) {
      throw new MalformedPacketError(`${what}: ${this.end - this.pos} unexpected bytes at the end of the packet`)
    }
  }
}

function short(what: string): MalformedPacketError {
  return new MalformedPacketError(`${what}: packet ends before the field does`)
}

/** A protocol error about a field, for the per-packet decoders. */
export function protocolError(message: string): ProtocolError {
  return new ProtocolError(message)
}
