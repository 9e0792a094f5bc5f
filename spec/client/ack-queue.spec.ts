import { expect } from 'chai'
import fc from 'fast-check'
import { AckQueue } from '../../lib/client/inbound.js'

describe('client – AckQueue (ordered acknowledgements)', () => {
  it('sends every acknowledgement once, in arrival order, whatever order messages are acked in (also across compaction)', function () {
    // Pure CPU (60 runs of up to 3,000 messages): generous on a loaded machine.
    this.timeout(60_000)
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 1, max: 200 }), (count, seed, lag) => {
        const sent: number[] = []
        const queue = new AckQueue((_qos, packetId) => sent.push(packetId))
        const states: { acked: boolean }[] = []
        let random = seed
        const next = (): number => (random = (random * 1_103_515_245 + 12_345) % 2 ** 31)
        let acked = 0
        /** Every message before this index is acked (the oldest open one is at or after it). */
        let oldestOpen = 0
        for (let i = 0; i < count; i++) {
          const state = { acked: false }
          states.push(state)
          queue.push((i % 65_535) + 1, 1, state)
          // Ack a random earlier message now and then, and the oldest ones once `lag` are open.
          const pick = states[next() % states.length]!
          if (!pick.acked) {
            pick.acked = true
            acked++
            queue.flush()
          }
          while (queue.pending > lag) {
            while (states[oldestOpen]!.acked) oldestOpen++
            states[oldestOpen]!.acked = true
            acked++
            queue.flush()
          }
          expect(queue.pending).to.be.at.most(count)
        }
        for (const state of states) state.acked = true
        queue.flush()
        expect(acked).to.be.at.most(count)
        expect(queue.pending).to.equal(0)
        expect(sent).to.deep.equal(states.map((_, i) => (i % 65_535) + 1))
      }),
      { numRuns: 60 }
    )
  })

  it('an already acked message pushed behind unacked ones waits for them', () => {
    const sent: number[] = []
    const queue = new AckQueue((_qos, packetId) => sent.push(packetId))
    const first = { acked: false }
    queue.push(1, 1, first)
    queue.push(2, 2, { acked: true })
    expect(sent).to.deep.equal([])
    expect(queue.pending).to.equal(2)
    first.acked = true
    queue.flush()
    expect(sent).to.deep.equal([1, 2])
    expect(queue.pending).to.equal(0)
    queue.push(3, 1, { acked: true })
    expect(sent).to.deep.equal([1, 2, 3])
  })
})
