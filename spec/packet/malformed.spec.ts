import { expect } from 'chai'
import { MqttError, PacketTooLargeError, reasonCodeName } from '../../lib/packet/index.js'
import type { DecoderOptions } from '../../lib/packet/index.js'
import { malformedFixtures } from './fixtures/malformed.js'
import { byteByByte, randomSplits, seedFrom, whole } from './helpers/chunks.js'
import { feed } from './helpers/feed.js'
import type { FeedResult } from './helpers/feed.js'
import { filler, hex } from './helpers/hex.js'
import type { MalformedFixture } from './helpers/fixture.js'

/** A packet valid at every level in both directions: a PUBACK with packet id 1. */
const PUBACK = hex`40 02 00 01`

function optionsFor(fixture: MalformedFixture): DecoderOptions {
  return { protocolLevel: fixture.level, ...fixture.options }
}

/** The fed bytes ended in the expected error, nothing was decoded, and the decoder stays failed. */
function expectRefused(result: FeedResult, fixture: MalformedFixture, how: string): void {
  const { error, packets, decoder } = result
  expect(error, `${how}: push returned no error`).to.be.instanceOf(MqttError)
  const actual = error as MqttError
  expect(actual.constructor.name, `${how}: error class`).to.equal(fixture.error.name)
  expect(actual, `${how}: error class`).to.be.instanceOf(fixture.error)
  expect(reasonCodeName(actual.reasonCode), `${how}: reason code`).to.equal(reasonCodeName(fixture.reasonCode))
  expect(packets, `${how}: packets decoded`).to.have.length(0)
  expect(decoder.error, `${how}: decoder.error`).to.equal(actual)
  // After an error, every later push returns the same error and decodes nothing.
  expect(decoder.push(PUBACK), `${how}: push after the error`).to.equal(actual)
  expect(decoder.push(fixture.bytes), `${how}: second push after the error`).to.equal(actual)
  expect(packets, `${how}: packets decoded after the error`).to.have.length(0)
  if (actual instanceof PacketTooLargeError) {
    // Refused from the fixed header: nothing of the body was buffered.
    expect(decoder.buffered, `${how}: bytes buffered`).to.equal(0)
  }
}

describe('packet codec – malformed input', () => {
  for (const [theme, fixtures] of Object.entries(malformedFixtures)) {
    describe(theme, () => {
      for (const fixture of fixtures) {
        const title =
          `${fixture.name} [${fixture.cites.join('] [')}] → ` +
          `${fixture.error.name} ${reasonCodeName(fixture.reasonCode)}`
        describe(title, () => {
          const options = optionsFor(fixture)

          it('is refused when fed whole', () => {
            expectRefused(feed(whole(fixture.bytes), options), fixture, 'whole')
          })

          it('is refused when fed one byte at a time', () => {
            expectRefused(feed(byteByByte(fixture.bytes), options), fixture, 'byte by byte')
          })

          it('is refused in 5 random splits', () => {
            const seed = seedFrom(fixture.name)
            randomSplits(fixture.bytes, seed, 5).forEach((chunks, i) => {
              expectRefused(feed(chunks, options), fixture, `split ${i} (seed ${seed})`)
            })
          })

          it('is refused after a valid packet, which is still delivered', () => {
            const result = feed([Buffer.concat([PUBACK, fixture.bytes])], options)
            expect(result.packets).to.deep.equal([{ type: 'puback', packetId: 1 }])
            result.packets.length = 0
            expectRefused(result, fixture, 'after PUBACK')
          })
        })
      }
    })
  }

  describe('maximum packet size boundary', () => {
    // 131 bytes: 3 of fixed header, 128 of body.
    const packet = hex`30 80 01 00 01 "a" ${filler(125)}`

    it('accepts a packet of exactly maximumPacketSize bytes (the size counts the fixed header)', () => {
      const { error, packets } = feed([packet], { maximumPacketSize: 131 })
      expect(error).to.equal(undefined)
      expect(packets).to.have.length(1)
    })

    it('refuses it one byte under, with nothing of the body buffered, fed a byte at a time', () => {
      const result = feed(byteByByte(packet), { maximumPacketSize: 130 })
      expect(result.error).to.be.instanceOf(PacketTooLargeError)
      // The error comes with the last byte of the remaining length (index 2), not later.
      expect(result.errorChunk).to.equal(2)
      expect(result.decoder.buffered).to.equal(0)
    })
  })

  describe('never throws', () => {
    it('returns an error or nothing for every fixture prefix and every single-byte corruption', () => {
      const all = Object.values(malformedFixtures).flat()
      for (const fixture of all) {
        for (let end = 0; end <= fixture.bytes.length; end++) {
          feed([fixture.bytes.subarray(0, end)], optionsFor(fixture))
        }
        for (let i = 0; i < fixture.bytes.length; i++) {
          const corrupt = Buffer.from(fixture.bytes)
          corrupt[i] = (corrupt[i] as number) ^ 0xff
          feed([corrupt], optionsFor(fixture))
        }
      }
    })
  })
})
