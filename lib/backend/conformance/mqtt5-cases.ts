import assert from 'node:assert/strict'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * MQTT 5 behaviour a backend owns (feature `mqtt5`, default true): session expiry, message expiry
 * in the offline queue, subscription options kept and honoured, and (with `sharedSubscriptions`)
 * the messages of a shared-subscription member whose session ends going to another member.
 */
export function mqtt5Cases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('MQTT 5', () => {
    describe('session expiry', () => {
      it('an away session is discarded with its queue once its Session Expiry Interval ran out (MQTT 5.0 3.1.2.11.2)', async () => {
        const a = await h.connect('exp', { clean: false, expiry: 1 })
        await h.subscribe(a, sub('t', 1))
        await h.disconnect(a)
        await h.publish(message('t', 'queued', 1))
        await sleep(1300)
        const back = await h.connect('exp', { clean: false, expiry: 1 })
        assert.equal(back.present, false)
        assert.deepEqual(await back.session.listSubscriptions(), [])
        await h.settle()
        assert.equal(back.client.deliveries.length, 0)
      })

      it('a session resumed within its interval is present with its queue', async () => {
        const a = await h.connect('exp', { clean: false, expiry: 60 })
        await h.subscribe(a, sub('t', 1))
        await h.disconnect(a)
        await h.publish(message('t', 'queued', 1))
        const back = await h.connect('exp', { clean: false, expiry: 60 })
        assert.equal(back.present, true)
        await h.deliveries(back.client, 1)
        assert.deepEqual(back.client.payloads(), ['queued'])
      })

      it('an interval set to 0 before terminate (DISCONNECT) ends the session with the connection', async () => {
        const a = await h.connect('exp', { clean: false, expiry: 60 })
        await h.subscribe(a, sub('t', 1))
        a.session.expiryInterval = 0
        await h.disconnect(a)
        const back = await h.connect('exp', { clean: false, expiry: 60 })
        assert.equal(back.present, false)
      })

      it('a message that expires in the offline queue is not delivered [MQTT-3.3.2-5]', async () => {
        const a = await h.connect('q', { clean: false, expiry: 60 })
        await h.subscribe(a, sub('t', 1))
        await h.disconnect(a)
        await h.publish(message('t', 'short', 1, { properties: { messageExpiryInterval: 1 } }))
        await h.publish(message('t', 'long', 1, { properties: { messageExpiryInterval: 60 } }))
        await sleep(1300)
        const back = await h.connect('q', { clean: false, expiry: 60 })
        await h.deliveries(back.client, 1)
        assert.deepEqual(back.client.payloads(), ['long'])
        // receivedAt travels with the message, so the engine can forward the remaining interval.
        assert.ok(back.client.deliveries[0]!.message.receivedAt !== undefined)
      })
    })

    describe('subscription options', () => {
      it('No Local: not delivered to the publishing client, not counted; others still get it [MQTT-3.8.3-3]', async () => {
        const me = await h.connect('me')
        const other = await h.connect('other')
        await h.subscribe(me, sub('t', 0, { noLocal: true }))
        await h.subscribe(other, sub('t', 0))
        const count = await h.publish(message('t', 'mine', 0, { origin: 'me' }), me)
        if (h.counts) assert.equal(count, 1)
        await h.deliveries(other.client, 1)
        assert.equal(me.client.deliveries.length, 0)
        await h.publish(message('t', 'theirs', 0, { origin: 'other' }), other)
        await h.deliveries(me.client, 1)
        assert.deepEqual(me.client.payloads(), ['theirs'])
      })

      it('options and identifiers are stored, passed to deliver and kept across a resume', async () => {
        const options = { noLocal: true, retainAsPublished: true, retainHandling: 1 as const, subscriptionIdentifiers: [12] }
        const a = await h.connect('opts', { clean: false, expiry: 60 })
        await h.subscribe(a, sub('t', 1, options))
        await h.publish(message('t', 'x', 1, { retain: true }))
        const [live] = await h.deliveries(a.client, 1)
        assert.deepEqual(live!.subscription, sub('t', 1, options))
        await h.disconnect(a)
        await h.publish(message('t', 'away', 1))
        const back = await h.connect('opts', { clean: false, expiry: 60 })
        assert.deepEqual(await back.session.listSubscriptions(), [sub('t', 1, options)])
        const [queued] = await h.deliveries(back.client, 1)
        assert.deepEqual(queued!.subscription.subscriptionIdentifiers, [12])
      })

      it('retained messages keep their MQTT 5 properties', async () => {
        const properties = { contentType: 'text/plain', userProperties: [['a', '1'] as const, ['a', '2'] as const], messageExpiryInterval: 60 }
        await h.backend.storeRetained(undefined, message('r', 'kept', 1, { retain: true, properties }))
        const c = await h.connect('c')
        await h.backend.queueRetained(c.client, sub('r', 1))
        const [got] = await h.deliveries(c.client, 1)
        assert.deepEqual(got!.message.properties, properties)
        assert.ok(got!.message.receivedAt !== undefined)
      })
    })

    if (h.features.sharedSubscriptions !== false) {
      describe('shared subscriptions', () => {
        it('the queued messages of a member whose session ends go to another member (MQTT 5.0 4.8.2)', async () => {
          const leaving = await h.connect('leaving')
          const staying = await h.connect('staying')
          const shared = sub('$share/g/t', 1)
          await h.subscribe(leaving, shared)
          await h.subscribe(staying, shared)
          // What the engine does at the end of a connection: undelivered shared messages are queued...
          await leaving.session.enqueue({ message: message('t', 'unsent', 1), subscription: shared })
          // ...and an unacknowledged QoS 1 delivery stays an outgoing record; a QoS 2 one must not move.
          await leaving.session.saveOutgoing({ kind: 'publish', packetId: 1, message: message('t', 'unacked', 1), subscription: shared })
          await leaving.session.saveOutgoing({ kind: 'publish', packetId: 2, message: message('t', 'qos2', 2), subscription: sub('$share/g/t', 2) })
          await h.disconnect(leaving)
          await h.deliveries(staying.client, 2)
          assert.deepEqual(staying.client.payloads().sort(), ['unacked', 'unsent'])
        })
      })
    }
  })
}
