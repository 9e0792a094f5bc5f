import assert from 'node:assert/strict'
import { ReasonCode } from '../../packet/reason-codes.js'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

/** MQTT 5 shared subscriptions `$share/{group}/{filter}` (feature `sharedSubscriptions`). */
export function sharedCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('shared subscriptions', () => {
    it('delivers each message to one member of each group [MQTT-4.8.2-3]', async () => {
      const g1 = [await h.connect('g1a'), await h.connect('g1b')]
      const g2 = [await h.connect('g2a'), await h.connect('g2b'), await h.connect('g2c')]
      for (const c of g1) await h.subscribe(c, sub('$share/one/jobs/+', 1))
      for (const c of g2) await h.subscribe(c, sub('$share/two/jobs/#', 1))
      const plain = await h.connect('plain')
      await h.subscribe(plain, sub('jobs/+', 1))
      const n = 6
      for (let i = 0; i < n; i++) {
        const count = await h.publish(message('jobs/x', `j${i}`, 1))
        // One per group plus the ordinary subscription.
        if (h.counts) assert.equal(count, 3)
      }
      const total = (cs: typeof g1): number => cs.reduce((sum, c) => sum + c.client.deliveries.length, 0)
      await h.until(() => plain.client.deliveries.length >= n && total(g1) >= n && total(g2) >= n)
      assert.equal(total(g1), n)
      assert.equal(total(g2), n)
      assert.equal(plain.client.deliveries.length, n)
      const all1 = g1.flatMap((c) => c.client.payloads()).sort()
      assert.deepEqual(all1, Array.from({ length: n }, (_, i) => `j${i}`).sort())
      const d = g1[0]?.client.deliveries[0]
      if (d !== undefined) assert.equal(d.subscription.topicFilter, '$share/one/jobs/+')
    })

    it('spreads messages over the live members', async () => {
      const members = [await h.connect('m1'), await h.connect('m2')]
      for (const c of members) await h.subscribe(c, sub('$share/g/t', 0))
      for (let i = 0; i < 10; i++) await h.publish(message('t', `m${i}`))
      await h.until(() => members.every((c) => c.client.deliveries.length > 0))
      assert.equal(
        members.reduce((sum, c) => sum + c.client.deliveries.length, 0),
        10
      )
      for (const c of members) assert.ok(c.client.deliveries.length > 0, `${c.client.clientId} got nothing`)
    })

    it("skips a member whose deliver answers 'dropped'", async () => {
      const refusing = await h.connect('refusing')
      const taking = await h.connect('taking')
      refusing.client.result = 'dropped'
      await h.subscribe(refusing, sub('$share/g/t', 1))
      await h.subscribe(taking, sub('$share/g/t', 1))
      for (let i = 0; i < 4; i++) await h.publish(message('t', `m${i}`, 1))
      await h.deliveries(taking.client, 4)
      assert.deepEqual(taking.client.payloads(), ['m0', 'm1', 'm2', 'm3'])
    })

    it('goes to the live member while another member is away', async () => {
      const away = await h.connect('away', { clean: false })
      const live = await h.connect('live')
      await h.subscribe(away, sub('$share/g/t', 1))
      await h.subscribe(live, sub('$share/g/t', 1))
      await h.disconnect(away)
      for (let i = 0; i < 4; i++) await h.publish(message('t', `m${i}`, 1))
      await h.deliveries(live.client, 4)
      assert.equal(live.client.deliveries.length, 4)
      const back = await h.connect('away', { clean: false })
      await h.settle()
      assert.equal(back.client.deliveries.length, 0)
    })

    it('queues for an away member when no member is live', async () => {
      const away = await h.connect('away', { clean: false })
      await h.subscribe(away, sub('$share/g/t', 1))
      await h.disconnect(away)
      const count = await h.publish(message('t', 'kept', 1))
      if (h.counts) assert.equal(count, 1)
      const back = await h.connect('away', { clean: false })
      await h.deliveries(back.client, 1)
      assert.deepEqual(back.client.payloads(), ['kept'])
    })

    it('unsubscribing leaves the group; the last member leaving ends it', async () => {
      const a = await h.connect('a')
      const b = await h.connect('b')
      await h.subscribe(a, sub('$share/g/t', 0))
      await h.subscribe(b, sub('$share/g/t', 0))
      assert.deepEqual(await h.backend.unsubscribe(a.client, ['$share/g/t']), [ReasonCode.Success])
      for (let i = 0; i < 3; i++) await h.publish(message('t', `m${i}`))
      await h.deliveries(b.client, 3)
      assert.equal(a.client.deliveries.length, 0)
      assert.equal(b.client.deliveries.length, 3)
      assert.deepEqual(await h.backend.unsubscribe(b.client, ['$share/g/t', '$share/g/t']), [
        ReasonCode.Success,
        ReasonCode.NoSubscriptionExisted
      ])
      const count = await h.publish(message('t', 'none'))
      if (h.counts) assert.equal(count, 0)
    })

    it('a member that ends its session leaves the group', async () => {
      const a = await h.connect('a')
      const b = await h.connect('b')
      await h.subscribe(a, sub('$share/g/t', 0))
      await h.subscribe(b, sub('$share/g/t', 0))
      await h.disconnect(a)
      for (let i = 0; i < 3; i++) await h.publish(message('t', `m${i}`))
      await h.deliveries(b.client, 3)
      assert.equal(b.client.deliveries.length, 3)
      assert.equal(a.client.late.length, 0)
    })
  })
}
