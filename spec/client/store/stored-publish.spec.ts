import { expect } from 'chai'
import { encode, PublishTemplate } from '../../../lib/packet/index.js'
import { decodeStoredPublish } from '../../../lib/client/store/stored-publish.js'

describe('decodeStoredPublish', () => {
  for (const level of [3, 4, 5] as const) {
    it(`decodes a stored QoS 1/2 PUBLISH whose packet id bytes are 0 (level ${level})`, () => {
      const properties = level === 5 ? { userProperties: [['k', 'v']] as [string, string][] } : undefined
      const template = new PublishTemplate({ topic: 'a/b', payload: Buffer.from('payload 42'), properties }, level)
      for (const qos of [1, 2] as const) {
        const bytes = template.variant(qos, true, false).bytes
        const before = Buffer.from(bytes)
        const p = decodeStoredPublish(bytes, level, 77)
        expect(p).to.include({ type: 'publish', topic: 'a/b', qos, retain: true, dup: false, packetId: 77 })
        expect(p?.payload.toString()).to.equal('payload 42')
        if (level === 5) expect(p?.properties?.userProperties).to.deep.equal([['k', 'v']])
        expect(bytes.equals(before), 'the stored bytes are not modified').to.equal(true)
        expect(decodeStoredPublish(bytes, level)?.packetId).to.equal(undefined)
      }
    })
  }

  it('decodes a stored PUBLISH that carries its packet id, and QoS 0', () => {
    const q1 = encode({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, retain: false, dup: false, packetId: 9 }, 4)
    expect(decodeStoredPublish(q1, 4, 9)).to.include({ topic: 't', packetId: 9 })
    const q0 = encode({ type: 'publish', topic: 't', payload: Buffer.from('x'), qos: 0, retain: false, dup: false }, 4)
    expect(decodeStoredPublish(q0, 4)).to.include({ topic: 't', qos: 0 })
  })

  it('answers undefined for bytes that are not a PUBLISH', () => {
    expect(decodeStoredPublish(Buffer.from([0x32, 0x05, 0x00]), 4)).to.equal(undefined)
    expect(decodeStoredPublish(encode({ type: 'pingreq' }, 4), 4)).to.equal(undefined)
    expect(decodeStoredPublish(Buffer.alloc(0), 4)).to.equal(undefined)
  })
})
