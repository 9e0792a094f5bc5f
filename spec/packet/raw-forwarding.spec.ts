import { expect } from 'chai'
import { Decoder, encode, PublishTemplate } from '../../lib/packet/index.js'
import type { Packet, PublishPacket, ProtocolLevel, QoS } from '../../lib/packet/index.js'

/** Decode `bytes` and capture, for each packet, what `rawPacket()` gave during `onPacket`. */
function decodeWithRaw(chunks: Buffer[], level: ProtocolLevel): { packet: Packet; raw: Buffer | undefined }[] {
  const out: { packet: Packet; raw: Buffer | undefined }[] = []
  const decoder: Decoder = new Decoder((packet) => out.push({ packet, raw: decoder.rawPacket() }), { protocolLevel: level })
  for (const chunk of chunks) expect(decoder.push(chunk)).to.equal(undefined)
  expect(decoder.rawPacket()).to.equal(undefined) // only while onPacket runs
  return out
}

function publish(qos: QoS, topic = 'a/b', payload = 'hello'): PublishPacket {
  const p: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }
  if (qos > 0) p.packetId = 7
  return p
}

describe('packet – forwarding received PUBLISH bytes', () => {
  it('rawPacket() is the whole packet, header included, for packets that lie in one chunk', () => {
    const a = encode(publish(0), 4)
    const b = encode({ type: 'pingreq' }, 4)
    const c = encode(publish(1, 'x', ''), 4)
    const got = decodeWithRaw([Buffer.concat([a, b, c])], 4)
    expect(got.map((g) => g.raw?.toString('hex'))).to.deep.equal([a, b, c].map((x) => x.toString('hex')))
  })

  it('rawPacket() is undefined for a packet split across chunks', () => {
    const a = encode(publish(1), 4)
    const got = decodeWithRaw([a.subarray(0, 5), a.subarray(5)], 4)
    expect(got).to.have.length(1)
    expect(got[0]!.raw).to.equal(undefined)
  })

  for (const level of [4, 5] as const) {
    for (const qos of [0, 1, 2] as const) {
      it(`a template seeded with received bytes (level ${level}, QoS ${qos}) serves them unchanged and patches the packet id`, () => {
        const bytes = encode(publish(qos, 'sensors/ü/1', 'payload'), level)
        const [{ packet, raw }] = decodeWithRaw([bytes], level) as [{ packet: PublishPacket; raw: Buffer }]
        const template = new PublishTemplate({ topic: packet.topic, payload: packet.payload }, level)
        expect(template.seed(qos, false, false, raw)).to.equal(true)
        expect(template.variant(qos, false, false).bytes).to.equal(raw) // the very bytes, no copy
        // Same bytes as encoding from scratch, with the receiver's own packet id.
        const fresh = new PublishTemplate({ topic: packet.topic, payload: packet.payload }, level)
        expect(template.encode(qos, false, false, qos > 0 ? 300 : undefined)).to.deep.equal(
          fresh.encode(qos, false, false, qos > 0 ? 300 : undefined)
        )
      })
    }
  }

  it('refuses bytes that are not this content at this variant', () => {
    const bytes = encode(publish(1), 4)
    const [{ packet, raw }] = decodeWithRaw([bytes], 4) as [{ packet: PublishPacket; raw: Buffer }]
    const template = new PublishTemplate({ topic: packet.topic, payload: packet.payload }, 4)
    expect(template.seed(0, false, false, raw), 'other QoS').to.equal(false)
    expect(template.seed(1, true, false, raw), 'other retain flag').to.equal(false)
    const copied = new PublishTemplate({ topic: packet.topic, payload: Buffer.from(packet.payload) }, 4)
    expect(copied.seed(1, false, false, raw), 'payload not a view of the bytes').to.equal(false)
    const other = new PublishTemplate({ topic: 'a/c', payload: packet.payload }, 4)
    expect(other.seed(1, false, false, Buffer.from(raw)), 'other bytes').to.equal(false)
    const withProps = new PublishTemplate({ topic: packet.topic, payload: packet.payload, properties: { contentType: 't' } }, 5)
    expect(withProps.seed(1, false, false, raw), 'MQTT 5 properties').to.equal(false)
  })
})
