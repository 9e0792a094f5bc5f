import { expect } from 'chai'
import { OutputBatch } from '../../lib/broker/output-batch.js'
import { decodeAll, PublishTemplate } from '../../lib/packet/index.js'

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
})
