import assert from 'node:assert/strict'
import { ReasonCode } from '../../packet/reason-codes.js'
import { message, sub } from './harness.js'
import type { Connection, Harness, MochaGlobals } from './harness.js'

/** Subscribe, unsubscribe and publish fan-out, wildcards, `$` topics, overlapping subscriptions. */
export function routingCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('subscribe and unsubscribe', () => {
    it('answers the granted QoS per subscription and stores them in the session', async () => {
      const c = await h.connect('a')
      const results = await h.subscribe(c, sub('a/0', 0), sub('a/1', 1), sub('a/2', 2))
      assert.deepEqual(results, [0, 1, 2])
      const stored = (await c.session.listSubscriptions()).map((s) => [s.topicFilter, s.qos]).sort()
      assert.deepEqual(stored, [
        ['a/0', 0],
        ['a/1', 1],
        ['a/2', 2]
      ])
    })

    it('a repeated subscription replaces the previous one: one delivery at the new QoS [MQTT-3.8.4-3]', async () => {
      const c = await h.connect('a')
      await h.subscribe(c, sub('t', 0))
      await h.subscribe(c, sub('t', 2))
      assert.equal((await c.session.listSubscriptions()).length, 1)
      const count = await h.publish(message('t', 'x', 2))
      if (h.counts) assert.equal(count, 1)
      const got = await h.deliveries(c.client, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.subscription.qos, 2)
    })

    it('unsubscribe answers 0x00 for an existing subscription and 0x11 otherwise', async () => {
      const c = await h.connect('a')
      await h.subscribe(c, sub('t/1', 1))
      const results = await h.backend.unsubscribe(c.client, ['t/1', 't/2'])
      assert.deepEqual(results, [ReasonCode.Success, ReasonCode.NoSubscriptionExisted])
      assert.deepEqual(await c.session.listSubscriptions(), [])
    })

    it('no delivery after unsubscribe', async () => {
      const c = await h.connect('a')
      await h.subscribe(c, sub('t/1', 1))
      await h.backend.unsubscribe(c.client, ['t/1'])
      const count = await h.publish(message('t/1', 'x', 1))
      if (h.counts) assert.equal(count, 0)
      await h.settle()
      assert.equal(c.client.deliveries.length, 0)
    })
  })

  describe('publish', () => {
    it('reaches no one without subscribers (count 0)', async () => {
      await h.connect('a')
      const count = await h.publish(message('nobody/listens', 'x'))
      if (h.counts) assert.equal(count, 0)
    })

    it('fans out to every subscriber exactly once and counts them', async () => {
      const clients: Connection[] = []
      for (let i = 0; i < 5; i++) {
        const c = await h.connect(`c${i}`)
        await h.subscribe(c, sub('news', 1))
        clients.push(c)
      }
      const other = await h.connect('other')
      await h.subscribe(other, sub('sport', 1))
      const count = await h.publish(message('news', 'n1', 1))
      if (h.counts) assert.equal(count, 5)
      for (const c of clients) {
        const got = await h.deliveries(c.client, 1)
        assert.equal(got.length, 1)
        assert.equal(got[0]?.message.topic, 'news')
        assert.equal(got[0]?.message.payload.toString(), 'n1')
        assert.equal(got[0]?.message.qos, 1)
        assert.equal(got[0]?.subscription.topicFilter, 'news')
        assert.equal(got[0]?.isRetained, false)
      }
      assert.equal(other.client.deliveries.length, 0)
    })

    it('delivers messages of one publisher in the order published [MQTT-4.6.0-5]', async () => {
      const c = await h.connect('a')
      await h.subscribe(c, sub('t', 1))
      for (let i = 0; i < 10; i++) await h.publish(message('t', `m${i}`, 1))
      await h.deliveries(c.client, 10)
      assert.deepEqual(
        c.client.payloads(),
        Array.from({ length: 10 }, (_, i) => `m${i}`)
      )
    })

    it('matches + (one level) and # (this level and below) [MQTT-4.7.1-2] [MQTT-4.7.1-3]', async () => {
      const plus = await h.connect('plus')
      await h.subscribe(plus, sub('sport/+/player', 0))
      const hash = await h.connect('hash')
      await h.subscribe(hash, sub('sport/#', 0))
      const all = await h.connect('all')
      await h.subscribe(all, sub('#', 0))
      for (const topic of ['sport', 'sport/tennis/player', 'sport/tennis/player/x', 'sport//player', 'other']) {
        await h.publish(message(topic, topic))
      }
      await h.deliveries(all.client, 5)
      assert.deepEqual(plus.client.payloads().sort(), ['sport//player', 'sport/tennis/player'])
      assert.deepEqual(hash.client.payloads().sort(), [
        'sport',
        'sport//player',
        'sport/tennis/player',
        'sport/tennis/player/x'
      ])
      assert.equal(all.client.deliveries.length, 5)
    })

    it('does not match $ topics with a leading + or # [MQTT-4.7.2-1]', async () => {
      const hash = await h.connect('hash')
      await h.subscribe(hash, sub('#', 0))
      const plus = await h.connect('plus')
      await h.subscribe(plus, sub('+/info', 0))
      const sys = await h.connect('sys')
      await h.subscribe(sys, sub('$SYS/#', 0))
      const count = await h.publish(message('$SYS/info', 'x'))
      if (h.counts) assert.equal(count, 1)
      await h.deliveries(sys.client, 1)
      assert.equal(sys.client.deliveries.length, 1)
      assert.equal(hash.client.deliveries.length, 0)
      assert.equal(plus.client.deliveries.length, 0)
    })

    it('overlapping subscriptions: one delivery at the highest QoS with every identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3]', async () => {
      const c = await h.connect('a')
      await h.subscribe(
        c,
        sub('a/+', 0, { subscriptionIdentifiers: [1] }),
        sub('a/#', 2, { subscriptionIdentifiers: [2] }),
        sub('a/b', 1)
      )
      await h.publish(message('a/b', 'x', 2))
      const got = await h.deliveries(c.client, 1)
      assert.equal(got.length, 1)
      assert.equal(got[0]?.subscription.qos, 2)
      assert.deepEqual([...(got[0]?.subscription.subscriptionIdentifiers ?? [])].sort(), [1, 2])
    })

    it('topic levels compare exactly, case-sensitive [MQTT-4.7.3-4]', async () => {
      const c = await h.connect('a')
      await h.subscribe(c, sub('ACCOUNTS', 0))
      const count = await h.publish(message('Accounts', 'x'))
      if (h.counts) assert.equal(count, 0)
      await h.settle()
      assert.equal(c.client.deliveries.length, 0)
    })
  })
}
