import { expect } from 'chai'
import { EncodedMessage, seedBytes, seedEncoded, templateFor, variantFor } from '../../lib/broker/encoded-message.js'
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

  for (const level of [3, 4] as const) {
    it(`level ${level}, QoS 0: the received bytes alone are the cache (no cache object), written as they are to QoS 0 receivers at levels 3 and 4`, () => {
      const { packet, raw } = received(level, 0, 'a/ü')
      const message = messageOf(packet)
      seedEncoded(message, level, 0, false, false, raw)
      expect((message as { encoded?: unknown }).encoded).to.equal(raw)
      for (const receiver of [3, 4] as const) expect(seedBytes(message, receiver, 0, false, false)).to.equal(raw)
      // Not the variant of a receiver at level 5, with RETAIN or DUP: those go through variantFor.
      expect(seedBytes(message, 5, 0, false, false)).to.equal(undefined)
      expect(seedBytes(message, 4, 0, true, false)).to.equal(undefined)
      expect(seedBytes(message, 4, 0, false, true)).to.equal(undefined)
    })
  }

  it('level 4, QoS 0: another variant turns the bytes into the seed of a cache object (not encoded again)', () => {
    const { packet, raw } = received(4, 0, 'a/b')
    const message = messageOf(packet)
    seedEncoded(message, 4, 0, false, false, raw)
    const retained = variantFor(message, 4, 0, true, false)
    expect(retained.bytes).to.deep.equal(encode({ ...packet, retain: true }, 4))
    const encoded = (message as { encoded?: unknown }).encoded as EncodedMessage
    expect(encoded).to.be.instanceOf(EncodedMessage)
    expect(encoded.bytes).to.equal(raw)
    expect(variantFor(message, 4, 0, false, false).bytes).to.equal(raw)
    expect(templateFor(message, 4).variant(0, false, false).bytes).to.equal(raw)
    expect(variantFor(message, 5, 0, false, false).bytes).to.deep.equal(encode(packet, 5))
    // Once a cache object, the bytes are served by it: seedBytes answers for a Buffer cache only.
    expect(seedBytes(message, 4, 0, false, false)).to.equal(undefined)
  })

  it('keeps a retained QoS 0 message\'s bytes for receivers that get it with RETAIN, and only those', () => {
    const p: PublishPacket = { type: 'publish', topic: 'r', payload: Buffer.from('x'), qos: 0, retain: true, dup: false }
    const raw = encode(p, 4)
    let decoded: PublishPacket | undefined
    const decoder: Decoder = new Decoder((packet) => { decoded = packet as PublishPacket }, { protocolLevel: 4 })
    expect(decoder.push(raw)).to.equal(undefined)
    const message = messageOf(decoded!)
    seedEncoded(message, 4, 0, true, false, raw)
    expect(seedBytes(message, 4, 0, true, false)).to.equal(raw)
    expect(seedBytes(message, 4, 0, false, false)).to.equal(undefined)
    expect(variantFor(message, 4, 0, false, false).bytes).to.deep.equal(encode({ ...p, retain: false }, 4))
  })

  it('keeps nothing for bytes that are not the message (another topic of another length)', () => {
    const { packet, raw } = received(4, 1, 'a/b')
    seedEncoded(messageOf(packet), 4, 1, false, false, raw) // the seeding remembers topic a/b
    const message: Message = { ...messageOf(packet), topic: 'a/bc' }
    seedEncoded(message, 4, 1, false, false, raw)
    expect((message as { encoded?: unknown }).encoded).to.equal(undefined)
    expect(variantFor(message, 4, 1, false, false).bytes).not.to.equal(raw)
  })
})
