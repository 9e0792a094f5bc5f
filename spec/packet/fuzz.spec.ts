import { expect } from 'chai'
import fc from 'fast-check'
import type { Arbitrary } from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { Decoder, decodeAll, encode, MqttError } from '../../lib/packet/index.js'
import type { Packet, ProtocolLevel } from '../../lib/packet/index.js'
import { anyPacketArbitrary, fillBytes } from './arbitraries.js'

/**
 * Fuzzing the decoder (well over 100,000 inputs in total): pure random bytes, random bodies behind
 * well-formed fixed headers, and mutations of valid encodings (bit flips, byte changes,
 * truncations, insertions, deletions, corrupted length fields, concatenations), each fed in random
 * chunkings to a Decoder with a maximum packet size. Every run must:
 * - yield packets and/or exactly one typed `MqttError` (numeric reason code), never an exception;
 *   once failed, every later push returns that same error and decodes nothing more;
 * - never hold more than `maximumPacketSize` bytes (`buffered`);
 * - produce only packets that re-encode at the level they were decoded at, without throwing, to
 *   bytes that decode back to an equal packet.
 * 
 * Seeded: set FC_SEED to explore other inputs; a failure prints the seed and path to replay it.
 */
const SEED = Number(process.env.FC_SEED ?? 0x46555a5a)
const MAX = 4096
/** FUZZ_SCALE=10 runs ten times as many inputs (for a long exploratory run); default 1. */
const SCALE = Number(process.env.FUZZ_SCALE ?? 1)

interface Sample {
  level: ProtocolLevel
  bytes: Buffer
}

/** Valid encodings to mutate: mostly small, some larger than MAX (to meet PacketTooLargeError). */
const corpus: Sample[] = fc
  .sample(anyPacketArbitrary({ maxPayload: 6000 }), { seed: SEED, numRuns: 800 })
  .map(({ level, packet }) => ({ level, bytes: encode(packet, level) }))

/** Split `bytes` at the cut sizes (cycled). */
function split(bytes: Buffer, sizes: number[]): Buffer[] {
  if (sizes.length === 0) return [bytes]
  const out: Buffer[] = []
  for (let o = 0, i = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length] as number
    out.push(bytes.subarray(o, o + n))
    o += n
  }
  return out
}

const REASON_ZERO_IS_SHORT = new Set<Packet['type']>(['puback', 'pubrec', 'pubrel', 'pubcomp', 'disconnect', 'auth'])

/**
 * The packet as it decodes after re-encoding: a reason code 0x00 without properties is encoded in
 * the short form (remaining length 2 for acks, 0 for DISCONNECT/AUTH), which decodes without
 * `reasonCode` (MQTT 5.0 3.4.2.1, 3.14.2.1, 3.15.2.1).
 */
function canonical(packet: Packet): Packet {
  if (REASON_ZERO_IS_SHORT.has(packet.type) && 'reasonCode' in packet && packet.reasonCode === 0 && packet.properties === undefined) {
    const { reasonCode: _zero, ...rest } = packet
    return rest as Packet
  }
  return packet
}

let packetsSeen = 0
let errorsSeen = 0

/** Feed the chunks to a fresh decoder and check every invariant listed above. */
function check(level: ProtocolLevel, chunks: Buffer[]): void {
  const decoded: { packet: Packet; level: ProtocolLevel }[] = []
  const decoder: Decoder = new Decoder(
    (packet) => decoded.push({ packet, level: packet.type === 'connect' ? packet.protocolLevel : decoder.protocolLevel }),
    { maximumPacketSize: MAX, protocolLevel: level }
  )
  let failure: MqttError | undefined
  const input = (): string => chunks.map((c) => c.toString('hex')).join(' ')
  // Plain checks in this loop (it runs once per chunk, byte-sized chunks included): chai is slow.
  for (const chunk of chunks) {
    const before = decoded.length
    let result: MqttError | undefined
    try {
      result = decoder.push(chunk)
    } catch (error) {
      throw new Error(`push threw ${String(error)}; input ${input()}`)
    }
    if (failure !== undefined) {
      if (result !== failure) throw new Error(`a failed decoder returned ${String(result)} instead of ${String(failure)}; input ${input()}`)
      if (decoded.length !== before) throw new Error(`a failed decoder decoded more packets; input ${input()}`)
    } else if (result !== undefined) {
      if (!(result instanceof MqttError) || typeof result.reasonCode !== 'number') {
        throw new Error(`push returned something else than a typed MqttError: ${String(result)}; input ${input()}`)
      }
      failure = result
    }
    if (decoder.error !== failure) throw new Error(`decoder.error is ${String(decoder.error)}, push returned ${String(failure)}; input ${input()}`)
    if (decoder.buffered > MAX) throw new Error(`buffered ${decoder.buffered} > maximumPacketSize ${MAX}; input ${input()}`)
  }
  if (failure !== undefined) errorsSeen++
  for (const { packet, level: at } of decoded) {
    packetsSeen++
    let bytes: Buffer
    try {
      bytes = encode(packet, at)
    } catch (error) {
      throw new Error(`decoded packet does not re-encode at level ${at}: ${String(error)}; input ${input()}`)
    }
    const again = decodeAll(bytes, { protocolLevel: at })
    if (again.error !== undefined) throw new Error(`re-encoded packet does not decode: ${String(again.error)}; bytes ${bytes.toString('hex')}; input ${input()}`)
    // isDeepStrictEqual compares Buffers natively (chai walks them byte by byte); chai explains a failure.
    if (again.packets.length !== 1 || !isDeepStrictEqual(again.packets[0], canonical(packet))) {
      expect(again.packets).to.deep.equal([canonical(packet)])
    }
  }
}

const levelArb: Arbitrary<ProtocolLevel> = fc.constantFrom(3, 4, 5)
const cutsArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 6 }) },
  { weight: 1, arbitrary: fc.constant<number[]>([1]) },
  { weight: 1, arbitrary: fc.array(fc.integer({ min: 1, max: 2048 }), { minLength: 1, maxLength: 3 }) }
)

/** One mutation of a byte string; positions are taken modulo its length. */
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'u16'; at: number; value: number }
  | { op: 'length'; value: number; width: number }
  | { op: 'repeat'; at: number; count: number }

const mutationArb: Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0x00, 0x7f, 0x80, 0xff), fc.integer({ min: 0, max: 255 })) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  // Overwrite two bytes: string and binary length prefixes, packet ids, property lengths.
  fc.record({ op: fc.constant('u16' as const), at: fc.nat(), value: fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0xffff), fc.integer({ min: 0, max: 0xffff })) }),
  // Replace the remaining length of the first packet by another varint (possibly over-long).
  fc.record({ op: fc.constant('length' as const), value: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0x0fffffff })), width: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 40 }) })
)

function varintBytes(value: number, width: number): number[] {
  const out: number[] = []
  do {
    let b = value & 0x7f
    value = Math.floor(value / 128)
    if (value > 0) b |= 0x80
    out.push(b)
  } while (value > 0)
  // Pad to `width` bytes with continuation bytes (non-minimal, or longer than 4 bytes).
  while (out.length < width) {
    out[out.length - 1] = (out[out.length - 1] as number) | 0x80
    out.push(0)
  }
  return out
}

function mutate(input: Buffer, m: Mutation): Buffer {
  const n = input.length
  if (n === 0) return m.op === 'insert' ? Buffer.from(m.bytes) : input
  switch (m.op) {
    case 'flip': {
      const out = Buffer.from(input)
      out[m.at % n] = (out[m.at % n] as number) ^ (1 << m.bit)
      return out
    }
    case 'set': {
      const out = Buffer.from(input)
      out[m.at % n] = m.value
      return out
    }
    case 'truncate':
      return input.subarray(0, m.at % n)
    case 'insert': {
      const at = m.at % (n + 1)
      return Buffer.concat([input.subarray(0, at), m.bytes, input.subarray(at)])
    }
    case 'delete': {
      const at = m.at % n
      return Buffer.concat([input.subarray(0, at), input.subarray(at + m.count)])
    }
    case 'u16': {
      if (n < 2) return input
      const out = Buffer.from(input)
      out.writeUInt16BE(m.value, m.at % (n - 1))
      return out
    }
    case 'length': {
      // Skip the first packet's varint (1..4 bytes) and write another in its place.
      let end = 1
      while (end < n && end < 5 && ((input[end] as number) & 0x80) !== 0) end++
      return Buffer.concat([input.subarray(0, 1), Buffer.from(varintBytes(m.value, m.width)), input.subarray(end + 1)])
    }
    case 'repeat': {
      const at = m.at % n
      const slice = input.subarray(at, at + m.count)
      return Buffer.concat([input.subarray(0, at), slice, slice, input.subarray(at + slice.length)])
    }
  }
}

describe('packet fuzz – decoder on random and mutated input (maximumPacketSize 4096)', function () {
  this.timeout(60_000)

  after(() => {
    // Guard against a vacuous fuzz: both outcomes must have been exercised many times.
    expect(packetsSeen).to.be.greaterThan(10_000 * SCALE)
    expect(errorsSeen).to.be.greaterThan(10_000 * SCALE)
  })

  it('random bytes in random chunks: packets and/or one typed error, bounded buffer (30,000 runs)', () => {
    fc.assert(
      fc.property(levelArb, fc.uint8Array({ maxLength: 600 }), cutsArb, (level, bytes, cuts) => {
        check(level, split(Buffer.from(bytes), cuts))
      }),
      { seed: SEED + 1, numRuns: Math.round(30_000 * SCALE) }
    )
  })

  it('random bodies behind well-formed fixed headers (30,000 runs)', () => {
    const packetArb = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 64 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 5000 }) }), fc.integer())
      .map(([first, length, seed]) => Buffer.concat([Buffer.from([first, ...varintBytes(length, 0)]), fillBytes(length, seed)]))
    fc.assert(
      fc.property(levelArb, fc.array(packetArb, { minLength: 1, maxLength: 4 }), cutsArb, (level, packets, cuts) => {
        check(level, split(Buffer.concat(packets), cuts))
      }),
      { seed: SEED + 2, numRuns: Math.round(30_000 * SCALE) }
    )
  })

  it('mutated valid encodings and their concatenations (90,000 runs)', () => {
    const baseArb = fc
      .array(fc.integer({ min: 0, max: corpus.length - 1 }), { minLength: 1, maxLength: 4 })
      .map((picks) => ({ level: corpus[picks[0] as number]!.level, bytes: Buffer.concat(picks.map((i) => corpus[i]!.bytes)) }))
    fc.assert(
      fc.property(baseArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), cutsArb, (base, mutations, cuts) => {
        const bytes = mutations.reduce(mutate, base.bytes)
        check(base.level, split(bytes, cuts))
      }),
      { seed: SEED + 3, numRuns: Math.round(90_000 * SCALE) }
    )
  })

  it('unmutated valid encodings decode completely in any chunking (the corpus itself)', () => {
    for (const { level, bytes } of corpus) {
      for (const cuts of [[1], [3, 7], [bytes.length]]) {
        const packets: Packet[] = []
        const d = new Decoder((p) => packets.push(p), { protocolLevel: level })
        for (const c of split(bytes, cuts)) expect(d.push(c)).to.equal(undefined)
        expect(packets).to.have.length(1)
        expect(d.buffered).to.equal(0)
      }
    }
  })
})
