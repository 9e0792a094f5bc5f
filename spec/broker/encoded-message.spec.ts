import { expect } from 'chai'
import { EncodedMessage, seedEncoded, templateFor, variantFor } from '../../lib/broker/encoded-message.js'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { PublishPacket, ProtocolLevel, QoS } from '../../lib/packet/index.js'
import type { Message } from '../../lib/session/session.js'

/** A PUBLISH encoded at `level`, decoded again: the packet and its raw bytes, as the engine gets them. */
function received(level: ProtocolLevel, qos: QoS, topic: string): { packet: PublishPacket; raw: Buffer } {
  const p: PublishPacket = { type: 'publish', topic, payload: Buffer.from('payload'), qos, retain: false, dup: false }
  if (qos > 0) p.packetId = 9
  let got: { packet: PublishPacket; raw: Buffer } | undefined
  const decoder: Decoder = new Decoder((packet) => { got = { packet: packet as PublishPacket, raw: decoder.rawPacket()! } }, { protocolLevel: level })
  expect(decoder.push(encode(p, level))).to.equal(undefined)
  return got!
}

function messageOf(packet: PublishPacket): Message {
  return { topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, origin: 'c' }
}

describe('encoded message – the received bytes as the first variant', () => {
  for (const level of [4, 5] as const) {
    it(`level ${level}: receivers at the publisher's level and QoS get the received bytes, without a template`, () => {
      const { packet, raw } = received(level, 1, 'a/ü')
      const message = messageOf(packet)
      seedEncoded(message, level, 1, false, false, raw)
      const encoded = (message as { encoded?: unknown }).encoded as EncodedMessage
      expect(encoded).to.be.instanceOf(EncodedMessage)
      expect(encoded.v4).to.equal(undefined)
      expect(encoded.v5).to.equal(undefined)
      const variant = variantFor(message, level, 1, false, false)
      expect(variant.bytes).to.equal(raw)
      expect(variant, 'the cache object is the variant (one object per message)').to.equal(encoded)
      expect(variant.packetIdOffset).to.equal(raw.length - packet.payload.length - (level === 5 ? 3 : 2))
      // Another variant is encoded by a template, which takes the seed over rather than encoding it again.
      const q0 = variantFor(message, level, 0, false, false)
      expect(q0.bytes).to.deep.equal(encode({ ...packet, qos: 0, packetId: undefined }, level))
      expect(templateFor(message, level).variant(1, false, false).bytes).to.equal(raw)
      // The other wire format never gets these bytes.
      const other = level === 5 ? 4 : 5
      expect(variantFor(message, other, 1, false, false).bytes).not.to.equal(raw)
    })
  }

  it('keeps nothing for bytes that are not the message (another topic of another length)', () => {
    const { packet, raw } = received(4, 1, 'a/b')
    seedEncoded(messageOf(packet), 4, 1, false, false, raw) // the seeding remembers topic a/b
    const message: Message = { ...messageOf(packet), topic: 'a/bc' }
    seedEncoded(message, 4, 1, false, false, raw)
    expect((message as { encoded?: unknown }).encoded).to.equal(undefined)
    expect(variantFor(message, 4, 1, false, false).bytes).not.to.equal(raw)
  })
})
