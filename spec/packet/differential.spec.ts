import { expect } from 'chai'
import fc from 'fast-check'
import { generate, parser } from 'mqtt-packet'
import type { Packet as MqttPacket } from 'mqtt-packet'
import {
  Decoder,
  decodeAll,
  encode,
  encodedLength,
  MalformedPacketError,
  ProtocolError,
  ReasonCode,
  TopicNameInvalidError,
  UnsupportedProtocolVersionError
} from '../../lib/packet/index.js'
import type { MqttError, Packet, ProtocolLevel } from '../../lib/packet/index.js'
import { leveledArbitrary, packetArbitrary, PACKET_TYPES } from './arbitraries.js'
import type { LeveledPacket } from './arbitraries.js'
import { comparable, fromMqttPacket, toMqttPacket } from './mqtt-packet-map.js'

/**
 * Differential tests of our codec against mqtt-packet 9 (the codec of MQTT.js and Aedes), on valid
 * packets of every type at levels 3, 4 and 5:
 *   (a) our `encode` → mqtt-packet's parser decodes the same packet;
 *   (b) mqtt-packet's `generate` → our `Decoder` decodes the same packet;
 *   (c) our own round trip decodes exactly the packet encoded.
 * "The same" is `comparable()` of spec/packet/mqtt-packet-map.ts (user properties as a multiset,
 * absent reason code = 0). Where mqtt-packet is wrong or lenient, the arbitraries are narrowed
 * (mode 'mqtt-packet') and an explicit test below documents the disagreement and the statement of
 * the specification that decides it.
 *
 * Seeded: set FC_SEED to explore other cases; a failure prints the seed and path to replay it.
 */
const SEED = Number(process.env.FC_SEED ?? 0x4d515454)
const RUNS = 500

interface Parsed {
  packets: MqttPacket[]
  errors: Error[]
}

/** Feed `chunks` to one mqtt-packet parser at `level`. */
function theirParse(chunks: Buffer[], level: ProtocolLevel): Parsed {
  const p = parser({ protocolVersion: level })
  const out: Parsed = { packets: [], errors: [] }
  p.on('packet', (packet) => out.packets.push(packet))
  p.on('error', (error: Error) => out.errors.push(error))
  for (const c of chunks) p.parse(c)
  return out
}

/** Feed `chunks` to one of our decoders at `level`. */
function ourDecode(chunks: Buffer[], level: ProtocolLevel): { packets: Packet[]; error: MqttError | undefined; buffered: number } {
  const packets: Packet[] = []
  const d = new Decoder((p) => packets.push(p), { protocolLevel: level })
  let error: MqttError | undefined
  for (const c of chunks) error = d.push(c) ?? error
  return { packets, error, buffered: d.buffered }
}

/** Split `bytes` at the cut sizes (cycled), as a socket would deliver them. */
function split(bytes: Buffer, sizes: number[]): Buffer[] {
  if (sizes.length === 0) return [bytes]
  const out: Buffer[] = []
  let i = 0
  for (let o = 0; o < bytes.length; i++) {
    const n = sizes[i % sizes.length] as number
    out.push(bytes.subarray(o, o + n))
    o += n
  }
  return out
}

/** mqtt-packet's generate at the packet's level. */
function theirEncode(packet: Packet, level: ProtocolLevel): Buffer {
  return generate(toMqttPacket(packet, level), { protocolVersion: level })
}

/** A v5 DISCONNECT with remaining length 0 or 1 trips mqtt-packet's parser when more bytes follow (see below). */
function shortV5Disconnect(lp: LeveledPacket): boolean {
  return lp.level === 5 && lp.packet.type === 'disconnect' && encode(lp.packet, 5).length < 4
}

describe('packet differential – against mqtt-packet 9', () => {
  PACKET_TYPES.forEach((type, index) => {
    describe(type.toUpperCase(), () => {
      it(`(a) our encoding of every valid ${type} decodes to the same packet in mqtt-packet`, () => {
        fc.assert(
          fc.property(leveledArbitrary(type, { mode: 'mqtt-packet' }), ({ level, packet }) => {
            const bytes = encode(packet, level)
            const theirs = theirParse([bytes], level)
            expect(theirs.errors.map((e) => e.message)).to.deep.equal([])
            expect(theirs.packets).to.have.length(1)
            expect(comparable(fromMqttPacket(theirs.packets[0]!, level))).to.deep.equal(comparable(packet))
          }),
          { seed: SEED + index, numRuns: RUNS }
        )
      })

      it(`(b) mqtt-packet's encoding of every valid ${type} decodes to the same packet in ours`, () => {
        fc.assert(
          fc.property(leveledArbitrary(type, { mode: 'mqtt-packet' }), ({ level, packet }) => {
            const bytes = theirEncode(packet, level)
            const result = decodeAll(bytes, { protocolLevel: level })
            expect(result.error, String(result.error)).to.equal(undefined)
            expect(result.packets).to.have.length(1)
            expect(comparable(result.packets[0]!)).to.deep.equal(comparable(packet))
          }),
          { seed: SEED + 100 + index, numRuns: RUNS }
        )
      })

      it(`(c) our round trip of every valid ${type} gives back exactly the packet, at encodedLength bytes`, () => {
        fc.assert(
          fc.property(leveledArbitrary(type), ({ level, packet }) => {
            const bytes = encode(packet, level)
            expect(encodedLength(packet, level)).to.equal(bytes.length)
            const result = decodeAll(bytes, { protocolLevel: level })
            expect(result.error, String(result.error)).to.equal(undefined)
            expect(result.packets).to.deep.equal([packet])
          }),
          { seed: SEED + 200 + index, numRuns: RUNS }
        )
      })
    })
  })

  describe('streams of packets in random chunks', () => {
    const stream = (mode: 'full' | 'mqtt-packet') =>
      fc
        .constantFrom<ProtocolLevel>(3, 4, 5)
        .chain((level) =>
          fc.record({
            level: fc.constant(level),
            packets: fc.array(
              fc.constantFrom(...PACKET_TYPES.filter((t) => t !== 'auth' || level === 5)).chain((t) => packetArbitrary(t, level, { mode, maxPayload: 2000 })),
              { minLength: 1, maxLength: 12 }
            ),
            cuts: fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 })
          })
        )

    it('ours decodes a stream mqtt-packet generated, split anywhere', () => {
      fc.assert(
        fc.property(stream('mqtt-packet'), ({ level, packets, cuts }) => {
          const bytes = Buffer.concat(packets.map((p) => theirEncode(p, level)))
          const ours = ourDecode(split(bytes, cuts), level)
          expect(ours.error, String(ours.error)).to.equal(undefined)
          expect(ours.buffered).to.equal(0)
          expect(ours.packets.map(comparable)).to.deep.equal(packets.map(comparable))
        }),
        { seed: SEED + 300, numRuns: RUNS }
      )
    })

    it('mqtt-packet decodes a stream ours encoded, split anywhere', () => {
      fc.assert(
        fc.property(stream('mqtt-packet'), ({ level, packets, cuts }) => {
          const sent = packets.filter((packet) => !shortV5Disconnect({ level, packet }))
          const bytes = Buffer.concat(sent.map((p) => encode(p, level)))
          const theirs = theirParse(split(bytes, cuts), level)
          expect(theirs.errors.map((e) => e.message)).to.deep.equal([])
          expect(theirs.packets.map((p) => comparable(fromMqttPacket(p, level)))).to.deep.equal(sent.map(comparable))
        }),
        { seed: SEED + 301, numRuns: RUNS }
      )
    })

    it('ours decodes its own stream exactly, split anywhere', () => {
      fc.assert(
        fc.property(stream('full'), ({ level, packets, cuts }) => {
          const bytes = Buffer.concat(packets.map((p) => encode(p, level)))
          const ours = ourDecode(split(bytes, cuts), level)
          expect(ours.error, String(ours.error)).to.equal(undefined)
          expect(ours.buffered).to.equal(0)
          expect(ours.packets).to.deep.equal(packets)
        }),
        { seed: SEED + 302, numRuns: RUNS }
      )
    })
  })

  describe('where mqtt-packet disagrees with the specification', () => {
    it('an AUTH of remaining length 0 is Success without properties (MQTT 5.0 3.15.2.1): ours decodes it, mqtt-packet fails', () => {
      const bytes = Buffer.from([0xf0, 0x00])
      expect(decodeAll(bytes, { protocolLevel: 5 })).to.deep.equal({ packets: [{ type: 'auth' }] })
      expect(encode({ type: 'auth' }, 5)).to.deep.equal(bytes)
      expect(theirParse([bytes], 5).errors.map((e) => e.message)).to.deep.equal(['Invalid auth reason code'])
    })

    it('a DISCONNECT of remaining length 0 or 1 ends there (MQTT 5.0 3.14.2.1, 3.14.2.2.1): mqtt-packet reads on into the next packet', () => {
      const cases: [number[], Packet[]][] = [
        // DISCONNECT (remaining length 0) + PINGREQ
        [[0xe0, 0x00, 0xc0, 0x00], [{ type: 'disconnect' }, { type: 'pingreq' }]],
        // DISCONNECT (remaining length 1, reason 0x8F) + PINGREQ
        [[0xe0, 0x01, 0x8f, 0xc0, 0x00], [{ type: 'disconnect', reasonCode: 0x8f }, { type: 'pingreq' }]]
      ]
      for (const [bytes, packets] of cases) {
        expect(decodeAll(Buffer.from(bytes), { protocolLevel: 5 })).to.deep.equal({ packets })
        const theirs = theirParse([Buffer.from(bytes)], 5)
        expect(theirs.packets).to.have.length(0)
        expect(theirs.errors).to.have.length(1)
      }
    })

    it('a password without a user name is allowed at MQTT 5.0 (3.1.2.9): ours encodes it, mqtt-packet\'s generate refuses', () => {
      const packet: Packet = { type: 'connect', protocolName: 'MQTT', protocolLevel: 5, clean: true, keepalive: 30, clientId: 'c', password: Buffer.from('secret') }
      const bytes = encode(packet)
      expect(decodeAll(bytes)).to.deep.equal({ packets: [packet] })
      expect(comparable(fromMqttPacket(theirParse([bytes], 5).packets[0]!, 5))).to.deep.equal(comparable(packet))
      expect(() => theirEncode(packet, 5)).to.throw('Username is required to use password')
      // At 3.1.1 it is forbidden [MQTT-3.1.2-22]: both refuse to generate it (decoding: see below).
      expect(() => encode({ ...packet, protocolLevel: 4 })).to.throw(TypeError)
      expect(() => theirEncode({ ...packet, protocolLevel: 4 }, 4)).to.throw('Username is required to use password')
    })

    it('a zero-byte client id needs no Clean Start at MQTT 5.0 (3.1.3.1 [MQTT-3.1.3-6]): ours encodes it, mqtt-packet\'s generate refuses', () => {
      const packet: Packet = { type: 'connect', protocolName: 'MQTT', protocolLevel: 5, clean: false, keepalive: 0, clientId: '' }
      const bytes = encode(packet)
      expect(decodeAll(bytes)).to.deep.equal({ packets: [packet] })
      expect(comparable(fromMqttPacket(theirParse([bytes], 5).packets[0]!, 5))).to.deep.equal(comparable(packet))
      expect(() => theirEncode(packet, 5)).to.throw('clientId must be given if cleanSession set to 0')
    })

    it('user properties are kept unaltered and in order [MQTT-3.3.2-17] [MQTT-3.3.2-18]: mqtt-packet merges names and drops a repeated name\'s empty first value', () => {
      const packet: Packet = {
        type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false,
        properties: { userProperties: [['b', '1'], ['a', ''], ['b', '3'], ['a', 'y']] }
      }
      const bytes = encode(packet, 5)
      expect(decodeAll(bytes, { protocolLevel: 5 })).to.deep.equal({ packets: [packet] })
      const theirs = theirParse([bytes], 5).packets[0]!
      // Order across names is lost, and ['a', ''] vanished: mqtt-packet tests the first value for truthiness.
      expect(fromMqttPacket(theirs, 5)).to.have.nested.property('properties.userProperties').that.deep.equals([['b', '1'], ['b', '3'], ['a', 'y']])
    })

    // mqtt-packet's parser accepts each of these; the specification forbids them, and ours refuses
    // them with a typed error (the connection is closed) [MQTT-4.13.1-1] (3.1.1: [MQTT-4.8.0-1]).
    const forbidden: { name: string; level: ProtocolLevel; bytes: number[]; error: new (...args: never[]) => MqttError; reasonCode: number }[] = [
      // PUBLISH topic "a/+"
      { name: 'a wildcard in a PUBLISH topic name [MQTT-3.3.2-2]', level: 4, bytes: [0x30, 6, 0, 3, 0x61, 0x2f, 0x2b, 0x78], error: TopicNameInvalidError, reasonCode: ReasonCode.TopicNameInvalid },
      // PUBLISH topic "" at 3.1.1
      { name: 'an empty PUBLISH topic name [MQTT-4.7.3-1]', level: 4, bytes: [0x30, 3, 0, 0, 0x78], error: TopicNameInvalidError, reasonCode: ReasonCode.TopicNameInvalid },
      // PUBLISH QoS 0 with DUP
      { name: 'DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]', level: 4, bytes: [0x38, 4, 0, 1, 0x61, 0x78], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // PUBLISH QoS 1, packet id 0
      { name: 'packet identifier 0 [MQTT-2.2.1-3] (3.1.1: [MQTT-2.3.1-1])', level: 4, bytes: [0x32, 5, 0, 1, 0x61, 0, 0], error: ProtocolError, reasonCode: ReasonCode.ProtocolError },
      // topic "\0"
      { name: 'U+0000 in a UTF-8 string [MQTT-1.5.4-2] (3.1.1: [MQTT-1.5.3-2])', level: 4, bytes: [0x30, 4, 0, 1, 0x00, 0x78], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // topic 0xFF
      { name: 'ill-formed UTF-8 [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1])', level: 4, bytes: [0x30, 4, 0, 1, 0xff, 0x78], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // topic = UTF-8 encoding of the surrogate U+D800
      { name: 'an encoded surrogate in a UTF-8 string [MQTT-1.5.4-1] (3.1.1: [MQTT-1.5.3-1])', level: 4, bytes: [0x30, 6, 0, 3, 0xed, 0xa0, 0x80, 0x78], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // PINGREQ with remaining length 0 written on two bytes
      { name: 'a remaining length not minimally encoded [MQTT-1.5.5-1]', level: 5, bytes: [0xc0, 0x80, 0x00], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // SUBSCRIBE id 1, properties: subscription identifier 0; filter "a" QoS 0
      { name: 'subscription identifier 0 (MQTT 5.0 3.8.2.1.2)', level: 5, bytes: [0x82, 9, 0, 1, 2, 0x0b, 0x00, 0, 1, 0x61, 0x00], error: ProtocolError, reasonCode: ReasonCode.ProtocolError },
      // PUBLISH topic "a", properties: payload format indicator 0, then 1; payload "x"
      { name: 'a property included twice (MQTT 5.0 3.3.2.3.2)', level: 5, bytes: [0x30, 9, 0, 1, 0x61, 4, 0x01, 0, 0x01, 1, 0x78], error: ProtocolError, reasonCode: ReasonCode.ProtocolError },
      // CONNACK, properties: receive maximum 0
      { name: 'receive maximum 0 (MQTT 5.0 3.2.2.3.3)', level: 5, bytes: [0x20, 6, 0, 0, 3, 0x21, 0, 0], error: ProtocolError, reasonCode: ReasonCode.ProtocolError },
      // CONNECT "MQTT" 4, flags: password without user name, keepalive 0, client id "a", password ""
      { name: 'a password flag without user name flag at 3.1.1 [MQTT-3.1.2-22]', level: 4, bytes: [0x10, 15, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x42, 0, 0, 0, 1, 0x61, 0, 0], error: MalformedPacketError, reasonCode: ReasonCode.MalformedPacket },
      // CONNECT "MQIsdp" with level 4: the server may refuse it [MQTT-3.1.2-1] [MQTT-3.1.2-2]
      { name: 'protocol name "MQIsdp" with level 4 [MQTT-3.1.2-1]', level: 4, bytes: [0x10, 14, 0, 6, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70, 4, 2, 0, 0, 0, 0], error: UnsupportedProtocolVersionError, reasonCode: ReasonCode.UnsupportedProtocolVersion }
    ]
    for (const c of forbidden) {
      it(`${c.name}: mqtt-packet accepts it, ours refuses it (${c.error.name})`, () => {
        const bytes = Buffer.from(c.bytes)
        const theirs = theirParse([bytes], c.level)
        expect(theirs.errors).to.have.length(0)
        expect(theirs.packets).to.have.length(1)
        const ours = decodeAll(bytes, { protocolLevel: c.level })
        expect(ours.packets).to.have.length(0)
        expect(ours.error).to.be.instanceOf(c.error)
        expect(ours.error?.reasonCode).to.equal(c.reasonCode)
      })
    }
  })
})
