import assert from 'node:assert/strict'
import { ReasonCode } from '../../packet/reason-codes.js'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

/** Session lifecycle: create, resume, clean, present flag, takeover, terminate. */
export function sessionCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('sessions', () => {
    it('creates a new session: present is false, clientId and expiry are set', async () => {
      const c = await h.connect('a', { clean: false, expiry: 300 })
      assert.equal(c.present, false)
      assert.equal(c.session.clientId, 'a')
      assert.equal(c.session.expiryInterval, 300)
      assert.deepEqual(await c.session.listSubscriptions(), [])
    })

    it('resumes a persistent session after the client left: present is true, subscriptions kept', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 1))
      await h.disconnect(first)
      const second = await h.connect('a', { clean: false })
      assert.equal(second.present, true)
      const subs = await second.session.listSubscriptions()
      assert.deepEqual(
        subs.map((s) => [s.topicFilter, s.qos]),
        [['t/1', 1]]
      )
    })

    it('resumed subscriptions route to the new connection', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 1))
      await h.disconnect(first)
      const second = await h.connect('a', { clean: false })
      await h.publish(message('t/1', 'hello', 1))
      const got = await h.deliveries(second.client, 1)
      assert.deepEqual(second.client.payloads(), ['hello'])
      assert.equal(got[0]?.subscription.topicFilter, 't/1')
      assert.equal(first.client.late.length, 0)
    })

    it('a clean session discards the stored one: present is false, no subscription left [MQTT-3.1.2-4]', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 1))
      await h.disconnect(first)
      const second = await h.connect('a', { clean: true })
      assert.equal(second.present, false)
      assert.deepEqual(await second.session.listSubscriptions(), [])
      const count = await h.publish(message('t/1', 'x', 1))
      if (h.counts) assert.equal(count, 0)
      await h.settle()
      assert.equal(second.client.deliveries.length, 0)
    })

    it('a session with expiry 0 ends with its connection: the next setup is not present [MQTT-3.1.2-6]', async () => {
      const first = await h.connect('a', { clean: true })
      await h.subscribe(first, sub('t/1', 1))
      await h.disconnect(first)
      const count = await h.publish(message('t/1', 'x', 1))
      if (h.counts) assert.equal(count, 0)
      const second = await h.connect('a', { clean: false })
      assert.equal(second.present, false)
      assert.deepEqual(await second.session.listSubscriptions(), [])
      await h.settle()
      assert.equal(second.client.deliveries.length, 0)
    })

    it('a persistent session keeps its subscriptions while away: publish still counts them', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 1))
      await h.disconnect(first)
      const count = await h.publish(message('t/1', 'x', 1))
      if (h.counts) assert.equal(count, 1)
    })

    it('takeover closes the previous connection with 0x8E Session taken over [MQTT-3.1.4-3]', async () => {
      const first = await h.connect('a', { clean: false })
      const second = await h.connect('a', { clean: false })
      assert.equal(first.client.closes.length, 1)
      assert.equal(first.client.closes[0]?.reasonCode, ReasonCode.SessionTakenOver)
      assert.equal(first.client.connected, false)
      assert.equal(second.present, true)
      assert.equal(second.client.closes.length, 0)
    })

    it('takeover with clean start closes the previous connection and starts afresh', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 1))
      const second = await h.connect('a', { clean: true })
      assert.equal(first.client.closes[0]?.reasonCode, ReasonCode.SessionTakenOver)
      assert.equal(second.present, false)
      assert.deepEqual(await second.session.listSubscriptions(), [])
    })

    for (const [title, options] of [
      ['3.1.1 Clean Session 1', { clean: true, protocolLevel: 4 }],
      ['MQTT 5 Clean Start 0 with Session Expiry 0', { clean: false, expiry: 0 }]
    ] as const) {
      it(`taking over a live connection whose session ends with it (${title}) starts a new session: present is false [MQTT-3.1.2-6] [MQTT-3.2.2-3]`, async () => {
        const first = await h.connect('a', options)
        await h.subscribe(first, sub('t/1', 1))
        const second = await h.connect('a', { clean: false })
        assert.equal(first.client.closes[0]?.reasonCode, ReasonCode.SessionTakenOver)
        assert.equal(second.present, false)
        assert.deepEqual(await second.session.listSubscriptions(), [])
        const count = await h.publish(message('t/1', 'x', 1))
        if (h.counts) assert.equal(count, 0)
        await h.settle()
        assert.equal(second.client.deliveries.length, 0)
        assert.equal(first.client.late.length, 0)
        // The new session is persistent and is resumed by the next connection.
        await h.subscribe(second, sub('t/2', 1))
        const third = await h.connect('a', { clean: false })
        assert.equal(third.present, true)
        assert.deepEqual((await third.session.listSubscriptions()).map((s) => s.topicFilter), ['t/2'])
      })
    }

    it('after a takeover messages go to the new connection only', async () => {
      const first = await h.connect('a', { clean: false })
      await h.subscribe(first, sub('t/1', 0))
      const second = await h.connect('a', { clean: false })
      await h.publish(message('t/1', 'after', 0))
      await h.deliveries(second.client, 1)
      assert.deepEqual(second.client.payloads(), ['after'])
      assert.equal(first.client.deliveries.length, 0)
      assert.equal(first.client.late.length, 0)
    })

    it('sessions of different client ids are independent', async () => {
      const a = await h.connect('a', { clean: false })
      const b = await h.connect('b', { clean: false })
      assert.equal(a.client.closes.length, 0)
      assert.equal(b.present, false)
      await h.subscribe(a, sub('t/a', 0))
      assert.deepEqual(await b.session.listSubscriptions(), [])
    })
  })
}
