import { expect } from 'chai'
import { encode, encodedLength } from '../../lib/packet/index.js'
import type { DecoderOptions, Packet, PacketType, PropertyName, ProtocolLevel } from '../../lib/packet/index.js'
import { goldenFixtures } from './fixtures/index.js'
import { byteByByte, randomSplits, seedFrom, whole } from './helpers/chunks.js'
import { feed } from './helpers/feed.js'
import { normalize } from './helpers/fixture.js'
import type { GoldenFixture } from './helpers/fixture.js'

/** Fixtures above this size are left out of the concatenation tests (they run alone). */
const CONCAT_LIMIT = 65_536

/**
 * The MQTT 5 properties each packet may carry (5.0 section 2.2.2.2, table 2-4), written out here
 * from the specification so the coverage test does not trust the codec's own table.
 */
const PROPERTIES_BY_PACKET: Readonly<Partial<Record<PacketType | 'will', readonly PropertyName[]>>> = {
  connect: [
    'sessionExpiryInterval', 'receiveMaximum', 'maximumPacketSize', 'topicAliasMaximum',
    'requestResponseInformation', 'requestProblemInformation', 'userProperties',
    'authenticationMethod', 'authenticationData'
  ],
  will: [
    'willDelayInterval', 'payloadFormatIndicator', 'messageExpiryInterval', 'contentType',
    'responseTopic', 'correlationData', 'userProperties'
  ],
  connack: [
    'sessionExpiryInterval', 'receiveMaximum', 'maximumQoS', 'retainAvailable', 'maximumPacketSize',
    'assignedClientIdentifier', 'topicAliasMaximum', 'reasonString', 'userProperties',
    'wildcardSubscriptionAvailable', 'subscriptionIdentifiersAvailable', 'sharedSubscriptionAvailable',
    'serverKeepAlive', 'responseInformation', 'serverReference', 'authenticationMethod', 'authenticationData'
  ],
  publish: [
    'payloadFormatIndicator', 'messageExpiryInterval', 'topicAlias', 'responseTopic', 'correlationData',
    'userProperties', 'subscriptionIdentifiers', 'contentType'
  ],
  puback: ['reasonString', 'userProperties'],
  pubrec: ['reasonString', 'userProperties'],
  pubrel: ['reasonString', 'userProperties'],
  pubcomp: ['reasonString', 'userProperties'],
  subscribe: ['subscriptionIdentifiers', 'userProperties'],
  suback: ['reasonString', 'userProperties'],
  unsubscribe: ['userProperties'],
  unsuback: ['reasonString', 'userProperties'],
  disconnect: ['sessionExpiryInterval', 'reasonString', 'userProperties', 'serverReference'],
  auth: ['authenticationMethod', 'authenticationData', 'reasonString', 'userProperties']
}

/** Decoder options for a fixture: CONNECT sets the level itself; every other packet needs it. */
function optionsFor(fixture: GoldenFixture): DecoderOptions {
  return fixture.packet.type === 'connect' ? {} : { protocolLevel: fixture.level }
}

/** The decoder roles that receive a packet (5.0 section 2.1.2 table 2-1: direction of flow). */
function receivingRoles(packet: Packet): ('server' | 'client')[] {
  switch (packet.type) {
    case 'connect':
    case 'subscribe':
    case 'unsubscribe':
    case 'pingreq':
      return ['server']
    case 'connack':
    case 'suback':
    case 'unsuback':
    case 'pingresp':
      return ['client']
    case 'publish':
      // A client never sends subscription identifiers [MQTT-3.3.4-6].
      return packet.properties?.subscriptionIdentifiers === undefined ? ['server', 'client'] : ['client']
    default:
      return ['server', 'client']
  }
}

/** Byte-exact comparison with a readable hex diff for small buffers. */
function expectBytes(actual: Buffer, expected: Buffer, what: string): void {
  if (expected.length <= 1024) {
    expect(actual.toString('hex'), what).to.equal(expected.toString('hex'))
  } else {
    expect(actual.length, `${what}: length`).to.equal(expected.length)
    expect(actual.equals(expected), `${what}: bytes`).to.equal(true)
  }
}

/** Decodes `chunks` and expects exactly `expected`, nothing buffered and no error. */
function expectDecodes(chunks: readonly Buffer[], options: DecoderOptions, expected: readonly Packet[], how: string): void {
  const { packets, error, decoder } = feed(chunks, options)
  expect(error, `${how}: error`).to.equal(undefined)
  expect(packets.length, `${how}: number of packets`).to.equal(expected.length)
  expect(normalize(packets), how).to.deep.equal(normalize(expected))
  expect(decoder.buffered, `${how}: bytes left buffered`).to.equal(0)
}

function defineFixture(fixture: GoldenFixture): void {
  const options = optionsFor(fixture)
  describe(`${fixture.name} [${fixture.cites.join('] [')}]`, () => {
    if (!fixture.encodeOnly) {
      it('decodes fed whole', () => {
        expectDecodes(whole(fixture.bytes), options, [fixture.packet], 'whole')
      })

      it('decodes fed one byte at a time', () => {
        expectDecodes(byteByByte(fixture.bytes), options, [fixture.packet], 'byte by byte')
      })

      it('decodes in 20 random splits', () => {
        const seed = seedFrom(fixture.name)
        randomSplits(fixture.bytes, seed).forEach((chunks, i) => {
          const cuts = chunks.map((c) => c.length).join('+')
          expectDecodes(chunks, options, [fixture.packet], `split ${i} (seed ${seed}, ${cuts})`)
        })
      })

      for (const role of receivingRoles(fixture.packet)) {
        it(`decodes with a ${role}-role decoder, which receives it`, () => {
          expectDecodes(whole(fixture.bytes), { ...options, role }, [fixture.packet], `role ${role}`)
        })
      }

      if (fixture.packet.type === 'connect') {
        it('sets the decoder protocol level to the CONNECT level', () => {
          const { decoder } = feed([fixture.bytes], { protocolLevel: fixture.level === 5 ? 4 : 5 })
          expect(decoder.protocolLevel).to.equal(fixture.level)
        })
      }
    }

    if (!fixture.decodeOnly) {
      it('encodes to the bytes', () => {
        expectBytes(encode(fixture.packet, fixture.level), fixture.bytes, 'encode')
        expect(encodedLength(fixture.packet, fixture.level), 'encodedLength').to.equal(fixture.bytes.length)
      })
    }

    if (fixture.encodeOnly) {
      it('re-encodes what it decodes to the same bytes', () => {
        const { packets, error } = feed([fixture.bytes], options)
        expect(error).to.equal(undefined)
        expect(packets.length).to.equal(1)
        expectBytes(encode(packets[0] as Packet, fixture.level), fixture.bytes, 'encode(decode(bytes))')
      })
    } else {
      it('round trips: decode(encode(packet))', () => {
        const encoded = encode(fixture.packet, fixture.level)
        const { packets, error } = feed([encoded], options)
        expect(error).to.equal(undefined)
        expect(packets.length).to.equal(1)
        const decoded = packets[0] as Packet
        if (fixture.decodeOnly) {
          // Our encoder writes another legal form: encoding is stable from there on.
          expectBytes(encode(decoded, fixture.level), encoded, 'encode(decode(encode(packet)))')
        } else {
          expect(normalize(decoded)).to.deep.equal(normalize(fixture.packet))
        }
      })
    }
  })
}

describe('packet codec – golden vectors', () => {
  for (const [kind, fixtures] of Object.entries(goldenFixtures)) {
    describe(kind, () => {
      for (const fixture of fixtures) defineFixture(fixture)
    })
  }

  describe('coverage of the fixtures', () => {
    const all = Object.values(goldenFixtures).flat()
    const levelsOf: Record<PacketType, ProtocolLevel[]> = {
      connect: [3, 4, 5], connack: [3, 4, 5], publish: [3, 4, 5], puback: [3, 4, 5], pubrec: [3, 4, 5],
      pubrel: [3, 4, 5], pubcomp: [3, 4, 5], subscribe: [3, 4, 5], suback: [3, 4, 5], unsubscribe: [3, 4, 5],
      unsuback: [3, 4, 5], pingreq: [3, 4, 5], pingresp: [3, 4, 5], disconnect: [3, 4, 5], auth: [5]
    }

    it('has a two-way fixture for every packet type at every level where it exists', () => {
      const missing: string[] = []
      for (const [type, levels] of Object.entries(levelsOf)) {
        for (const level of levels) {
          const found = all.some((f) => f.packet.type === type && f.level === level && !f.encodeOnly && !f.decodeOnly)
          if (!found) missing.push(`${type}@${level}`)
        }
      }
      expect(missing).to.deep.equal([])
    })

    it('uses every MQTT 5 property in every packet type that allows it', () => {
      const missing: string[] = []
      for (const [kind, names] of Object.entries(PROPERTIES_BY_PACKET)) {
        const seen = new Set<string>()
        for (const f of all) {
          if (f.level !== 5 || f.encodeOnly) continue
          const p = f.packet
          const props = kind === 'will' ? (p.type === 'connect' ? p.will?.properties : undefined) : p.type === kind && 'properties' in p ? p.properties : undefined
          for (const name of Object.keys(props ?? {})) seen.add(name)
        }
        for (const name of names) if (!seen.has(name)) missing.push(`${kind}.${name}`)
      }
      expect(missing).to.deep.equal([])
    })
  })

  describe('several fixtures concatenated into one chunk', () => {
    const all = Object.values(goldenFixtures).flat()
    for (const level of [3, 4, 5] as ProtocolLevel[]) {
      // A CONNECT of the level first: decoding it sets the level for the rest.
      const connect = all.find((f) => f.packet.type === 'connect' && f.level === level && !f.encodeOnly)
      const rest = all.filter(
        (f) => f.level === level && f.packet.type !== 'connect' && !f.encodeOnly && f.bytes.length <= CONCAT_LIMIT
      )
      if (connect === undefined) throw new Error(`no CONNECT fixture at level ${level}`)
      const sequence = [connect, ...rest]
      const bytes = Buffer.concat(sequence.map((f) => f.bytes))
      const expected = sequence.map((f) => f.packet)

      it(`decodes ${sequence.length} level-${level} packets from one chunk, the CONNECT setting the level`, () => {
        expectDecodes([bytes], {}, expected, 'one chunk')
      })

      it(`decodes ${sequence.length} level-${level} packets fed one byte at a time`, () => {
        expectDecodes(byteByByte(bytes), {}, expected, 'byte by byte')
      })

      it(`decodes ${sequence.length} level-${level} packets in 20 random splits`, () => {
        const seed = seedFrom(`concat ${level}`)
        randomSplits(bytes, seed).forEach((chunks, i) => {
          expectDecodes(chunks, {}, expected, `split ${i} (seed ${seed})`)
        })
      })

      it(`decodes level-${level} packets with a decoder constructed at that level, without a CONNECT`, () => {
        const restBytes = Buffer.concat(rest.map((f) => f.bytes))
        expectDecodes([restBytes], { protocolLevel: level }, rest.map((f) => f.packet), 'one chunk')
      })
    }
  })
})
