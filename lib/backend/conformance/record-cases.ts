import assert from 'node:assert/strict'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

/** What a Session keeps for the engine: packet ids, inflight records both ways, will, subscriptions. */
export function recordCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('session records', () => {
    it('hands out packet ids in 1..65535, never one in the outgoing store [MQTT-2.2.1-3]', async () => {
      const { session } = await h.connect('a', { clean: false })
      const seen = new Set<number>()
      for (let i = 0; i < 5; i++) {
        const id = session.nextPacketId()
        assert.ok(id >= 1 && id <= 65_535, `id ${id} out of range`)
        assert.equal(seen.has(id), false)
        seen.add(id)
        await session.saveOutgoing({ kind: 'publish', packetId: id, message: message('t', `p${i}`, 1) })
      }
      // Through a whole cycle, no id still in flight comes back.
      for (let i = 0; i < 65_535; i++) {
        const id = session.nextPacketId()
        assert.ok(id >= 1 && id <= 65_535)
        if (seen.has(id)) assert.fail(`packet id ${id} is in use`)
      }
      await session.deleteOutgoing([...seen][0] as number)
    })

    it('stores, finds, replaces and deletes outgoing records, listed oldest first [MQTT-4.4.0-1]', async () => {
      const { session } = await h.connect('a', { clean: false })
      for (const id of [7, 3, 9]) {
        await session.saveOutgoing({ kind: 'publish', packetId: id, message: message('t', `p${id}`, 2) })
      }
      const found = await session.getOutgoing(3)
      assert.equal(found?.kind, 'publish')
      if (found?.kind === 'publish') assert.equal(found.message.payload.toString(), 'p3')
      // PUBREC received for 7: the PUBLISH becomes a PUBREL, still the oldest exchange.
      await session.saveOutgoing({ kind: 'pubrel', packetId: 7 })
      assert.deepEqual(
        (await session.listOutgoing()).map((r) => [r.packetId, r.kind]),
        [
          [7, 'pubrel'],
          [3, 'publish'],
          [9, 'publish']
        ]
      )
      await session.deleteOutgoing(3)
      assert.equal(await session.getOutgoing(3), undefined)
      assert.deepEqual(
        (await session.listOutgoing()).map((r) => r.packetId),
        [7, 9]
      )
    })

    it('remembers incoming QoS 2 packet ids until released', async () => {
      const { session } = await h.connect('a', { clean: false })
      assert.equal(await session.hasIncoming(5), false)
      await session.saveIncoming(5)
      assert.equal(await session.hasIncoming(5), true)
      assert.equal(await session.hasIncoming(6), false)
      await session.deleteIncoming(5)
      assert.equal(await session.hasIncoming(5), false)
    })

    it('takes the will the engine writes and its removal (saveWill, clearWill)', async () => {
      const first = await h.connect('a', { clean: false })
      await first.session.saveWill({ topic: 'w', payload: Buffer.from('1'), qos: 1, retain: false })
      await first.session.saveWill({ topic: 'w', payload: Buffer.from('2'), qos: 0, retain: true })
      await first.session.clearWill()
      await first.session.saveOutgoing({ kind: 'pubrel', packetId: 4 })
      await h.disconnect(first)
      const second = await h.connect('a', { clean: false })
      assert.equal(second.present, true)
      assert.deepEqual((await second.session.listOutgoing()).map((r) => r.packetId), [4])
    })

    it('lists what subscribe granted and unsubscribe left, across a resume (read by the engine for Retain Handling 1)', async () => {
      const first = await h.connect('a', { clean: false })
      assert.deepEqual(await h.subscribe(first, sub('x', 2), sub('y', 1)), [2, 1])
      // Retain Handling 1 asks: does this filter exist already? It must, once subscribe resolved.
      assert.deepEqual((await first.session.listSubscriptions()).map((s) => s.topicFilter).sort(), ['x', 'y'])
      assert.deepEqual(await h.backend.unsubscribe(first.client, ['x']), [0])
      await h.disconnect(first)
      const second = await h.connect('a', { clean: false })
      assert.deepEqual(await second.session.listSubscriptions(), [sub('y', 1)])
    })

    it('keeps inflight records across a resume of a persistent session', async () => {
      const first = await h.connect('a', { clean: false })
      await first.session.saveOutgoing({ kind: 'publish', packetId: 1, message: message('t', 'p', 1) })
      await first.session.saveIncoming(2)
      await h.disconnect(first)
      const second = await h.connect('a', { clean: false })
      assert.equal(second.present, true)
      assert.deepEqual(
        (await second.session.listOutgoing()).map((r) => r.packetId),
        [1]
      )
      assert.equal(await second.session.hasIncoming(2), true)
    })
  })
}
