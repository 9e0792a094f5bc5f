import { expect } from 'chai'
import { PacketSplitter, PublishTemplate } from '../../lib/bench/mqtt-bytes.js'
import type { Conn } from '../../lib/bench/conn.js'
import { Publisher, type Tally } from '../../lib/bench/roles.js'
import { fullGc } from '../../lib/bench/full-gc.js'

/** Two complete PUBLISH packets (QoS 0) back to back. */
function twoPublishes(): Buffer {
  const tpl = new PublishTemplate('t', 16, 0)
  return Buffer.concat([tpl.bytes, tpl.bytes])
}

const noTally: Tally = { deliveries: 0, duplicates: 0, foreign: 0, acked: 0, lastDeliveryAt: 0, check() {} }

describe('load generator – the latency scenario allocates nothing per message', () => {
  it('splits only the first n bytes of a shared read buffer (no view per chunk)', () => {
    const seen: number[] = []
    const splitter = new PacketSplitter({ onPacket: (b0, _buf, start, end) => { seen.push(b0, end - start) } })
    const packets = twoPublishes()
    const shared = Buffer.alloc(1024, 0xff) // garbage after the bytes read: must be ignored
    packets.copy(shared, 0, 0, packets.length / 2)
    splitter.push(shared, packets.length / 2)
    expect(seen).to.have.length(2)
    expect(splitter.pending).to.equal(0)
    // The next read puts half of the second packet at the start; the rest comes after.
    packets.copy(shared, 0, packets.length / 2, packets.length / 2 + 5)
    splitter.push(shared, 5)
    expect(splitter.pending).to.equal(5)
    packets.copy(shared, 0, packets.length / 2 + 5)
    splitter.push(shared, packets.length / 2 - 5)
    expect(seen).to.have.length(4)
    expect(splitter.pending).to.equal(0)
  })

  it('paced publishing fills the same buffer again once the socket holds none of it', () => {
    const writes: Buffer[] = []
    let pendingOutput = 0
    const conn = { closed: false, handler: undefined, get pendingOutput() { return pendingOutput }, write: (b: Buffer) => { writes.push(b); return true } }
    const pub = new Publisher(conn as unknown as Conn, 0, 't', 16, 0, 10, 1, 1, noTally)
    pub.publishNow(1)
    pub.publishNow(1)
    expect(writes[1]).to.equal(writes[0]) // the same Buffer object: nothing allocated
    expect(writes[1]!.readUInt32BE(writes[1]!.length - 16 + 2)).to.equal(1) // sequence number of the second message
    pendingOutput = writes[1]!.length // the socket still holds the last write: never overwrite it
    pub.publishNow(1)
    expect(writes[2]).to.not.equal(writes[1])
    expect(writes[1]!.readUInt32BE(writes[1]!.length - 16 + 2)).to.equal(1)
    expect(pub.sent).to.equal(3)
  })

  it('collects the whole heap on demand without --expose-gc', async () => {
    const weak = new WeakRef({ big: new Array(1000).fill(1) })
    await new Promise((resolve) => setImmediate(resolve)) // a WeakRef's target lives to the end of the job that made it
    fullGc()
    expect(weak.deref()).to.equal(undefined)
  })
})
