import type { MqttError } from '../../../lib/packet/errors.js'
import type { Packet, ProtocolLevel } from '../../../lib/packet/types.js'

/**
 * A golden vector: one packet object and its exact bytes on the wire, written by hand from the
 * specification (sections 2 and 3 of MQTT 5.0 / 3.1.1), never produced by our encoder.
 */
export interface GoldenFixture {
  /** Says what is special about this vector; used as the test name. */
  name: string
  /** Protocol level the bytes are read and written at (CONNECT carries its own). */
  level: ProtocolLevel
  /** Specification statements this vector exercises, e.g. 'MQTT-3.4.2-1' or '3.4.2.1'. */
  cites: string[]
  /** The packet the bytes decode to (and, unless `decodeOnly`, encode from). */
  packet: Packet
  /** The bytes, from the `hex` template tag. */
  bytes: Buffer
  /**
   * The bytes are legal to receive and decode to `packet`, but our encoder writes `packet` in
   * another legal form (e.g. a v5 PUBACK with reason 0x00 and remaining length 3). No encode check;
   * the round trip checks that encode∘decode is stable instead of equality with `packet`.
   */
  decodeOnly?: boolean
  /**
   * The encoder writes `packet` as `bytes`, but `bytes` decode to another object (e.g. a v5 PUBACK
   * object with an explicit reason code 0x00, written in the short form). No decode check.
   */
  encodeOnly?: boolean
}

/** A constructor of an MqttError subclass, for asserting the class of a decoding error. */
export type ErrorClass = abstract new (...args: never[]) => MqttError

/** Decoder options a malformed fixture may need besides its level. */
export interface MalformedDecoderOptions {
  maximumPacketSize?: number
  role?: 'server' | 'client' | 'any'
}

/**
 * Bytes that a conforming receiver refuses, and how: the error class and the MQTT 5 reason code.
 * The test name is the fixture name followed by its cites.
 */
export interface MalformedFixture {
  name: string
  /** The decoder's `protocolLevel` (CONNECT fixtures: the level the decoder starts at). */
  level: ProtocolLevel
  /** Specification statements (or sections, where the statement has no id) that decide the case. */
  cites: string[]
  bytes: Buffer
  error: ErrorClass
  reasonCode: number
  options?: MalformedDecoderOptions
}

/**
 * Makes a packet comparable with chai's deep equal: Buffers and other byte arrays become
 * `{ bytes: '<hex>' }` (so a view and a copy with the same bytes are equal, and a Buffer never
 * equals a string), arrays and plain objects are copied recursively. Keys whose value is
 * `undefined` are kept, so an `undefined`-valued key does not equal an absent one.
 */
export function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex') }
  if (Array.isArray(value)) return value.map(normalize)
  if (value !== null && typeof value === 'object') {
    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) copy[key] = normalize(item)
    return copy
  }
  return value
}
