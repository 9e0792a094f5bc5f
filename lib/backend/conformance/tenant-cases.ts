import assert from 'node:assert/strict'
import { message, sub } from './harness.js'
import type { Harness, MochaGlobals } from './harness.js'

/**
 * Tenant isolation (`Backend.capabilities.tenants`): the declaration matches the feature flag, and
 * a backend that declares it keeps client ids, sessions, subscriptions, retained messages and
 * takeovers of one tenant away from every other.
 */
export function tenantCases(h: Harness, { describe, it }: MochaGlobals): void {
  describe('tenants', () => {
    const declared = h.features.tenants === true
    it(`declares capabilities.tenants ${declared ? 'true' : 'absent or false'} (the Broker checks it against a tenantResolver)`, async () => {
      assert.equal(h.backend.capabilities?.tenants === true, declared)
    })
    if (!declared) return

    it('the same client id in two tenants: two sessions, no takeover', async () => {
      const acme = await h.connect('a', { clean: false, tenant: 'acme' })
      await h.subscribe(acme, sub('t', 1))
      const beta = await h.connect('a', { clean: false, tenant: 'beta' })
      assert.equal(beta.present, false)
      assert.deepEqual(await beta.session.listSubscriptions(), [])
      await h.settle()
      assert.deepEqual(acme.client.closes, [])
      assert.equal(acme.client.connected, true)
    })

    it("a publish reaches only its own tenant's subscribers; a broker message goes by message.tenant", async () => {
      const acme = await h.connect('a', { tenant: 'acme' })
      const beta = await h.connect('b', { tenant: 'beta' })
      const plain = await h.connect('c')
      for (const c of [acme, beta, plain]) await h.subscribe(c, sub('t/#', 0))
      await h.publish(message('t/1', 'from-acme'), acme)
      await h.publish({ ...message('t/2', 'for-beta'), tenant: 'beta' })
      await h.publish(message('t/3', 'default'))
      await h.until(() => acme.client.deliveries.length >= 1 && beta.client.deliveries.length >= 1 && plain.client.deliveries.length >= 1)
      assert.deepEqual(acme.client.payloads(), ['from-acme'])
      assert.deepEqual(beta.client.payloads(), ['for-beta'])
      assert.deepEqual(plain.client.payloads(), ['default'])
    })

    it("retained messages and away sessions' queues stay in their tenant", async () => {
      const writer = await h.connect('w', { tenant: 'acme' })
      await h.backend.storeRetained(writer.client, message('r', 'acme-retained', 1, { retain: true }))
      const away = await h.connect('s', { clean: false, tenant: 'beta' })
      await h.subscribe(away, sub('q', 1))
      await h.disconnect(away)
      await h.publish(message('q', 'acme-q', 1), writer)
      const reader = await h.connect('s', { clean: false, tenant: 'beta' })
      assert.equal(reader.present, true)
      await h.backend.queueRetained(reader.client, sub('r', 1))
      const same = await h.connect('x', { tenant: 'acme' })
      await h.backend.queueRetained(same.client, sub('r', 1))
      await h.deliveries(same.client, 1)
      assert.deepEqual(same.client.payloads(), ['acme-retained'])
      assert.deepEqual(reader.client.payloads(), [])
    })
  })
}
