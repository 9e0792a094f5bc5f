import assert from 'node:assert/strict'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

/** The offline queue of persistent sessions whose client is away. */
export function offlineCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('offline queue', () => {
    it('keeps QoS 1 and 2 messages for an away persistent session and delivers them in order [MQTT-3.1.2-5]', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t', 2))
      await h.disconnect(first)
      await h.publish(message('t', 'q1', 1))
      await h.publish(message('t', 'q0', 0))
      await h.publish(message('t', 'q2', 2))
      await h.publish(message('t', 'q1b', 1))
      const second = await h.connect('a', { clean: false })
      assert.equal(second.present, true)
      const got = await h.deliveries(second.client, 3)
      assert.deepEqual(second.client.payloads(), ['q1', 'q2', 'q1b'])
      assert.deepEqual(
        got.map((d) => d.subscription.topicFilter),
        ['t', 't', 't']
      )
      assert.equal(first.client.late.length, 0)
    })

    it('queues at the subscription QoS: a QoS 0 subscription keeps nothing', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t', 0))
      await h.disconnect(first)
      await h.publish(message('t', 'x', 1))
      const second = await h.connect('a', { clean: false })
      await h.settle()
      assert.equal(second.client.deliveries.length, 0)
    })

    it('delivers live again after the queue was drained', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t', 1))
      await h.disconnect(first)
      await h.publish(message('t', 'queued', 1))
      const second = await h.connect('a', { clean: false })
      await h.publish(message('t', 'live', 1))
      await h.deliveries(second.client, 2)
      assert.deepEqual(second.client.payloads(), ['queued', 'live'])
    })

    it('does not queue a message whose Message Expiry Interval has run out [MQTT-3.3.2-5]', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t', 1))
      await h.disconnect(first)
      const long = Date.now() - 60_000
      await h.publish(message('t', 'expired', 1, { properties: { messageExpiryInterval: 10 }, receivedAt: long }))
      await h.publish(message('t', 'fresh', 1, { properties: { messageExpiryInterval: 3600 } }))
      const second = await h.connect('a', { clean: false })
      await h.deliveries(second.client, 1)
      assert.deepEqual(second.client.payloads(), ['fresh'])
    })

    it('queues nothing for a session that ended (expiry 0)', async () => {
      const first = await h.connect('a', { clean: true })
      await h.subscribe(first, sub('t', 1))
      await h.disconnect(first)
      await h.publish(message('t', 'x', 1))
      const second = await h.connect('a', { clean: false })
      await h.settle()
      assert.equal(second.client.deliveries.length, 0)
    })

    const max = h.features.maxQueuedMessages
    if (max !== undefined) {
      it(`is bounded: beyond ${max} messages the new ones are refused, the first ${max} kept`, async () => {
        const first = await h.connect('a', { clean: false })
        await h.subscribe(first, sub('t', 1))
        await h.disconnect(first)
        for (let i = 0; i < max + 3; i++) await h.publish(message('t', `m${i}`, 1))
        const second = await h.connect('a', { clean: false })
        await h.deliveries(second.client, max)
        assert.deepEqual(
          second.client.payloads(),
          Array.from({ length: max }, (_, i) => `m${i}`)
        )
      })

      it('when full, Session.enqueue evicts the oldest QoS 0 message first, else refuses the new one', async () => {
        const c = await h.connect('a', { clean: false })
        const s = c.session
        assert.equal(await s.enqueue({ message: message('t', 'zero', 0), subscription: sub('t', 1) }), true)
        for (let i = 1; i < max; i++) {
          assert.equal(await s.enqueue({ message: message('t', `one${i}`, 1), subscription: sub('t', 1) }), true)
        }
        // Full: the QoS 0 message makes room.
        assert.equal(await s.enqueue({ message: message('t', 'new', 1), subscription: sub('t', 1) }), true)
        // Full of QoS 1: the new one is refused.
        assert.equal(await s.enqueue({ message: message('t', 'refused', 1), subscription: sub('t', 1) }), false)
        // The queue is read back the way the engine has it read: queueOffline on the next connection.
        await h.disconnect(c)
        const next = await h.connect('a', { clean: false })
        const drained = (await h.deliveries(next.client, max)).map((d) => d.message.payload.toString())
        assert.equal(drained.length, max)
        assert.equal(drained.includes('zero'), false)
        assert.equal(drained.includes('refused'), false)
        assert.equal(drained[drained.length - 1], 'new')
      })
    }
  })
}
