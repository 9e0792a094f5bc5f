import { expect } from 'chai'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { Packet } from '../../lib/packet/types.js'

/** A fixed header announcing `remaining` body bytes for packet type byte `first`. */
function header(first: number, remaining: number): Buffer {
  const bytes = [first]
  do {
    let byte = remaining % 128
    remaining = Math.floor(remaining / 128)
    if (remaining > 0) byte |= 0x80
    bytes.push(byte)
  } while (remaining > 0)
  return Buffer.from(bytes)
}

describe('decoder – memory follows the bytes that arrived', () => {
  it('allocates nothing near an announced 200 MB body until it arrives', () => {
    const decoder = new Decoder(() => undefined, { role: 'server', protocolLevel: 4 })
    const before = process.memoryUsage().arrayBuffers
    expect(decoder.push(Buffer.concat([header(0x30, 200 * 1024 * 1024), Buffer.alloc(10)]))).to.equal(undefined)
    const grown = process.memoryUsage().arrayBuffers - before
    expect(grown).to.be.below(1024 * 1024)
    expect(decoder.allocated).to.be.at.most(4096)
    expect(decoder.buffered).to.equal(10 + 0) // header bytes are not held once parsed
  })

  it('grows in bounded steps: never more than twice what arrived (plus one small block)', () => {
    const decoder = new Decoder(() => undefined, { role: 'server', protocolLevel: 4 })
    decoder.push(header(0x30, 100 * 1024 * 1024))
    let arrived = 0
    const piece = Buffer.alloc(7000, 1)
    for (let i = 0; i < 600; i++) {
      decoder.push(piece)
      arrived += piece.length
      expect(decoder.allocated).to.be.at.most(Math.max(2 * arrived, 4096) + 1024 * 1024)
      expect(decoder.allocated).to.be.at.least(arrived)
    }
  })

  it('joins a body split byte by byte and across blocks into the right packet', () => {
    const payload = Buffer.alloc(3 * 1024 * 1024 + 17)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff
    const bytes = encode({ type: 'publish', topic: 'a/b', payload, qos: 1, packetId: 9, retain: false, dup: false }, 4)
    const got: Packet[] = []
    const decoder = new Decoder((p) => got.push(p), { role: 'server', protocolLevel: 4 })
    // The first 200 bytes one at a time, then uneven pieces.
    for (let i = 0; i < 200; i++) expect(decoder.push(bytes.subarray(i, i + 1))).to.equal(undefined)
    let pos = 200
    let step = 1
    while (pos < bytes.length) {
      const end = Math.min(bytes.length, pos + step)
      expect(decoder.push(bytes.subarray(pos, end))).to.equal(undefined)
      pos = end
      step = (step * 3 + 11) % 200_000
    }
    expect(got).to.have.length(1)
    const packet = got[0]!
    expect(packet.type).to.equal('publish')
    if (packet.type !== 'publish') return
    expect(packet.topic).to.equal('a/b')
    expect(Buffer.compare(Buffer.from(packet.payload), payload)).to.equal(0)
    expect(decoder.buffered).to.equal(0)
    expect(decoder.allocated).to.equal(0)
  })
})
