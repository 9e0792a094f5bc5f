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
})
