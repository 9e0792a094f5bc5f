import assert from 'node:assert/strict'
import { message, sub } from './harness.js'
import type { Connection, Harness, MochaGlobals } from './harness.js'
import type { StoredSubscription } from '../../session/session.js'

/** The retained message store: store, replace, delete, wildcard lookup, bound. */
export function retainedCases(h: Harness, { describe, it }: MochaGlobals): void {
  /** queueRetained for `subscription`, then the payloads delivered, sorted. */
  async function lookup(c: Connection, subscription: StoredSubscription, expected: number): Promise<string[]> {
    const before = c.client.deliveries.length
    await h.backend.queueRetained(c.client, subscription)
    const got = await h.deliveries(c.client, before + expected)
    return got
      .slice(before)
      .map((d) => d.message.payload.toString())
      .sort()
  }

  const retain = { retain: true }

  describe('retained messages', () => {
    it('delivers a stored retained message to a new subscription, marked retained [MQTT-3.3.1-6] [MQTT-3.3.1-9]', async () => {
      await h.backend.storeRetained(undefined, message('r/1', 'v1', 1, retain))
      const c = await h.connect('a')
      const s = sub('r/1', 1)
      await h.backend.queueRetained(c.client, s)
      const got = await h.deliveries(c.client, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.isRetained, true)
      assert.equal(got[0]?.message.topic, 'r/1')
      assert.equal(got[0]?.message.payload.toString(), 'v1')
      assert.equal(got[0]?.message.qos, 1)
      assert.equal(got[0]?.subscription.topicFilter, 'r/1')
    })

    it('keeps one message per topic: a new one replaces it [MQTT-3.3.1-5]', async () => {
      await h.backend.storeRetained(undefined, message('r/1', 'old', 0, retain))
      await h.backend.storeRetained(undefined, message('r/1', 'new', 0, retain))
      const c = await h.connect('a')
      assert.deepEqual(await lookup(c, sub('r/1'), 1), ['new'])
    })

    it('an empty payload deletes the retained message and is not stored [MQTT-3.3.1-10] [MQTT-3.3.1-11]', async () => {
      await h.backend.storeRetained(undefined, message('r/1', 'v', 0, retain))
      await h.backend.storeRetained(undefined, message('r/1', '', 0, retain))
      const c = await h.connect('a')
      assert.deepEqual(await lookup(c, sub('r/#'), 0), [])
    })

    it('keeps its own copy: changing the published payload buffer later changes nothing', async () => {
      const m = message('r/1', 'abc', 0, retain)
      await h.backend.storeRetained(undefined, m)
      m.payload.write('xyz')
      const c = await h.connect('a')
      assert.deepEqual(await lookup(c, sub('r/1'), 1), ['abc'])
    })

    it('wildcard filters find every matching retained message, not $ topics [MQTT-4.7.2-1]', async () => {
      for (const topic of ['a', 'a/b', 'a/c', 'a/b/c', 'b/b', '$SYS/a']) {
        await h.backend.storeRetained(undefined, message(topic, topic, 0, retain))
      }
      const c = await h.connect('a')
      assert.deepEqual(await lookup(c, sub('a/+'), 2), ['a/b', 'a/c'])
      assert.deepEqual(await lookup(c, sub('a/#'), 4), ['a', 'a/b', 'a/b/c', 'a/c'])
      assert.deepEqual(await lookup(c, sub('+/b'), 2), ['a/b', 'b/b'])
      assert.deepEqual(await lookup(c, sub('#'), 5), ['a', 'a/b', 'a/b/c', 'a/c', 'b/b'])
      assert.deepEqual(await lookup(c, sub('$SYS/#'), 1), ['$SYS/a'])
      assert.deepEqual(await lookup(c, sub('x/#'), 0), [])
    })

    it('does not deliver an expired retained message [MQTT-3.3.2-5]', async () => {
      const long = Date.now() - 60_000
      await h.backend.storeRetained(
        undefined,
        message('r/old', 'old', 0, { retain: true, properties: { messageExpiryInterval: 1 }, receivedAt: long })
      )
      await h.backend.storeRetained(undefined, message('r/new', 'new', 0, retain))
      const c = await h.connect('a')
      assert.deepEqual(await lookup(c, sub('r/#'), 1), ['new'])
    })

    const max = h.features.maxRetainedMessages
    if (max !== undefined) {
      it(`is bounded: a message on a new topic beyond ${max} is refused, replacing still works`, async () => {
        for (let i = 0; i < max + 2; i++) await h.backend.storeRetained(undefined, message(`b/${i}`, `v${i}`, 0, retain))
        await h.backend.storeRetained(undefined, message('b/0', 'replaced', 0, retain))
        const c = await h.connect('a')
        const got = await lookup(c, sub('b/#'), max)
        assert.equal(got.length, max)
        assert.equal(got.includes('replaced'), true)
        assert.equal(got.includes(`v${max}`), false)
      })
    }

    if (h.features.sharedSubscriptions !== false) {
      it('sends no retained message for a shared subscription (MQTT 5.0 section 3.3.1.3)', async () => {
        await h.backend.storeRetained(undefined, message('r/1', 'v', 0, retain))
        const c = await h.connect('a')
        assert.deepEqual(await lookup(c, sub('$share/g/r/1'), 0), [])
      })
    }
  })
}
