import { expect } from 'chai'
import { OutputBatch, SharedTake } from '../../lib/broker/output-batch.js'
import { decodeAll, encode, PublishTemplate } from '../../lib/packet/index.js'
import { shortAck, SHORT_ACKS } from '../../lib/packet/ack.js'

describe('OutputBatch', () => {
  it('is empty at first and takes nothing', () => {
    const batch = new OutputBatch()
    expect(batch.empty).to.equal(true)
    expect(batch.take()).to.equal(undefined)
  })

  it('joins packets into one buffer, patching each receiver packet id into shared bytes', () => {
    const template = new PublishTemplate({ topic: 't', payload: Buffer.from('x') }, 4)
    const variant = template.variant(1, false, false)
    const batch = new OutputBatch()
    batch.pushPublish(variant, 1)
    batch.push(Buffer.from([0xd0, 0x00])) // PINGRESP
    batch.pushPublish(variant, 513)
    expect(batch.length).to.equal(variant.bytes.length * 2 + 2)
    const bytes = batch.take()!
    expect(batch.empty).to.equal(true)
    const { packets, error } = decodeAll(bytes)
    expect(error).to.equal(undefined)
    expect(packets.map((p) => (p.type === 'publish' ? p.packetId : p.type))).to.deep.equal([1, 'pingresp', 513])
    // The template's own bytes are left untouched.
    expect(variant.bytes[variant.packetIdOffset]).to.equal(0)
    expect(variant.bytes[variant.packetIdOffset + 1]).to.equal(0)
  })

  it('passes a single ready buffer through without copying', () => {
    const batch = new OutputBatch()
    const ping = Buffer.from([0xd0, 0x00])
    batch.push(ping)
    expect(batch.take()).to.equal(ping)
  })

  it('patches the packet id of a batch of one PUBLISH, and of a first part followed by others', () => {
    const template = new PublishTemplate({ topic: 't', payload: Buffer.from('x') }, 4)
    const variant = template.variant(1, false, false)
    const batch = new OutputBatch()
    const ids = (bytes: Buffer): unknown[] => decodeAll(bytes).packets.map((p) => (p.type === 'publish' ? p.packetId : p.type))
    batch.pushPublish(variant, 42)
    expect(ids(batch.take()!)).to.deep.equal([42])
    batch.pushPublish(variant, 43)
    batch.pushPublish(variant, 44)
    expect(ids(batch.take()!)).to.deep.equal([43, 44])
    batch.push(Buffer.from([0xd0, 0x00]))
    batch.pushPublish(variant, 45)
    expect(ids(batch.take()!)).to.deep.equal(['pingresp', 45])
    expect(variant.bytes[variant.packetIdOffset + 1]).to.equal(0)
  })

  it('reuses its slots: each batch carries only its own packets, after small and after very large batches', () => {
    const template = new PublishTemplate({ topic: 't', payload: Buffer.from('x') }, 4)
    const variant = template.variant(1, false, false)
    const batch = new OutputBatch()
    const ids = (bytes: Buffer): unknown[] => decodeAll(bytes).packets.map((p) => (p.type === 'publish' ? p.packetId : p.type))
    for (let i = 1; i <= 3; i++) batch.pushPublish(variant, i)
    expect(ids(batch.take()!)).to.deep.equal([1, 2, 3])
    batch.pushPublish(variant, 9)
    batch.push(Buffer.from([0xd0, 0x00]))
    expect(ids(batch.take()!)).to.deep.equal([9, 'pingresp'])
    for (let i = 1; i <= 1500; i++) batch.pushPublish(variant, i) // beyond the kept slots
    expect(ids(batch.take()!)).to.have.length(1500)
    batch.pushPublish(variant, 7)
    batch.pushPublish(variant, 8)
    expect(batch.length).to.equal(variant.bytes.length * 2)
    expect(ids(batch.take()!)).to.deep.equal([7, 8])
    expect(batch.empty).to.equal(true)
  })

  it('writes the short acknowledgements from shared templates, each with its own packet id', () => {
    const batch = new OutputBatch()
    const types = ['puback', 'pubrec', 'pubrel', 'pubcomp'] as const
    types.forEach((type, i) => batch.pushPublish(shortAck({ type, packetId: 258 + i })!, 258 + i))
    const expected = Buffer.concat(types.map((type, i) => encode({ type, packetId: 258 + i }, 4)))
    expect(batch.take()).to.deep.equal(expected)
    for (const type of types) expect([...SHORT_ACKS[type].bytes.subarray(2)]).to.deep.equal([0, 0])
    expect(shortAck({ type: 'puback', packetId: 1, reasonCode: 0x10 }), 'a reason code').to.equal(undefined)
    expect(shortAck({ type: 'puback', packetId: 1, properties: { reasonString: 'x' } }), 'properties').to.equal(undefined)
    expect(shortAck({ type: 'puback', packetId: 0 }), 'id 0').to.equal(undefined)
    expect(shortAck({ type: 'puback', packetId: 65_536 }), 'id too large').to.equal(undefined)
  })

  describe('with a SharedTake', () => {
    const ids = (bytes: Buffer): unknown[] => decodeAll(bytes).packets.map((p) => (p.type === 'publish' ? (p.packetId ?? 0) : p.type))

    it('gives batches with the same parts and packet ids one Buffer, and its own to a batch that differs', () => {
      const q0 = new PublishTemplate({ topic: 'a', payload: Buffer.from('x') }, 4).variant(0, false, false)
      const q1 = new PublishTemplate({ topic: 'b', payload: Buffer.from('y') }, 4).variant(1, false, false)
      const shared = new SharedTake()
      const [a, b, c, d] = [new OutputBatch(shared), new OutputBatch(shared), new OutputBatch(shared), new OutputBatch(shared)]
      for (const batch of [a, b, c, d]) batch.pushPublish(q0, 0)
      a.pushPublish(q1, 5)
      b.pushPublish(q1, 5)
      c.pushPublish(q1, 6) // another packet id: other bytes
      d.pushPublish(q1, 5)
      d.push(Buffer.from([0xd0, 0x00])) // one part more
      const [ta, tb, tc, td] = [a.take()!, b.take()!, c.take()!, d.take()!]
      expect(tb).to.equal(ta)
      expect(shared.hits).to.equal(1)
      expect(tc).not.to.equal(ta)
      expect(td).not.to.equal(tc)
      expect(ids(ta)).to.deep.equal([0, 5])
      expect(ids(tc)).to.deep.equal([0, 6])
      expect(ids(td)).to.deep.equal([0, 5, 'pingresp'])
      // The Buffer handed out first was not written again by the batches built after it.
      expect(ids(tb)).to.deep.equal([0, 5])
    })

    it('compares parts by identity: equal bytes from another template are built again', () => {
      const one = new PublishTemplate({ topic: 't', payload: Buffer.from('x') }, 4).variant(0, false, false)
      const other = new PublishTemplate({ topic: 't', payload: Buffer.from('x') }, 4).variant(0, false, false)
      const shared = new SharedTake()
      const [a, b] = [new OutputBatch(shared), new OutputBatch(shared)]
      a.pushPublish(one, 0)
      a.pushPublish(one, 0)
      b.pushPublish(other, 0)
      b.pushPublish(other, 0)
      const ta = a.take()!
      const tb = b.take()!
      expect(tb).not.to.equal(ta)
      expect(tb.equals(ta)).to.equal(true)
      expect(shared.hits).to.equal(0)
    })

    it('does not keep very large batches', () => {
      const variant = new PublishTemplate({ topic: 't', payload: Buffer.alloc(300 * 1024) }, 4).variant(0, false, false)
      const shared = new SharedTake()
      const [a, b] = [new OutputBatch(shared), new OutputBatch(shared)]
      for (const batch of [a, b]) for (let i = 0; i < 4; i++) batch.pushPublish(variant, 0)
      const ta = a.take()!
      expect(shared.out).to.equal(undefined)
      expect(b.take()).not.to.equal(ta)
    })
  })
})
