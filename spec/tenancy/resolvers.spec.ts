import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  TENANT_ID_PATTERN,
  TenantError,
  byClientIdPrefix,
  byFunction,
  byListener,
  byUsernameDomain,
  isValidTenant,
  resolveTenant,
  validateTenant
} from '../../lib/tenancy/index.js'
import type { TenantRequest, TenantResolution } from '../../lib/tenancy/index.js'
import { validateTenant as keyvValidateTenant } from '../../lib/backend/keyv/index.js'

function request(clientId: string, username?: string, listener?: string): TenantRequest {
  return { clientId, username, listener, protocolLevel: 5 }
}

async function resolved(answer: Promise<TenantResolution | TenantError>): Promise<TenantResolution> {
  const r = await answer
  if (r instanceof TenantError) throw new Error(`refused: ${r.message}`)
  return r
}

async function refused(answer: Promise<TenantResolution | TenantError>): Promise<number> {
  const r = await answer
  assert.ok(r instanceof TenantError, `expected a refusal, got ${JSON.stringify(r)}`)
  return r.reasonCode
}

describe('tenancy – tenant ids', () => {
  it('accepts lower-case ids of 1..63 characters and nothing that could reach another key', () => {
    for (const ok of ['a', 'acme', 'a-b_c', '0tenant', 'x'.repeat(63)]) assert.ok(isValidTenant(ok), ok)
    for (const bad of ['', 'Acme', 'a:b', 'a*', 'a?', '[a]', 'a{b}', 'a@b', 'a/b', '-a', '_a', 'x'.repeat(64), 'a b', 'é']) {
      assert.equal(isValidTenant(bad), false, bad)
      assert.throws(() => validateTenant(bad), TypeError)
    }
  })

  it('is the rule KeyvBackend validates with', () => {
    assert.equal(keyvValidateTenant, validateTenant)
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (s) => {
        assert.equal(isValidTenant(s), TENANT_ID_PATTERN.test(s))
        if (isValidTenant(s)) assert.ok(!/[:*?[\]\\{}@/]/.test(s))
      })
    )
  })
})

describe('tenancy – resolvers', () => {
  describe('byUsernameDomain', () => {
    it('takes the tenant from user@tenant and strips it from the user name by default', async () => {
      const r = await resolved(resolveTenant(byUsernameDomain(), request('c1', 'alice@acme')))
      assert.deepEqual(r, { tenant: 'acme', clientId: 'c1', username: 'alice' })
      // The last separator splits: e-mail-like user names keep their own '@'.
      const e = await resolved(resolveTenant(byUsernameDomain(), request('c1', 'bob@example.com@globex')))
      assert.deepEqual(e, { tenant: 'globex', clientId: 'c1', username: 'bob@example.com' })
    })

    it('keeps the domain when strip is false, and supports another separator', async () => {
      assert.equal((await resolved(resolveTenant(byUsernameDomain({ strip: false }), request('c', 'alice@acme')))).username, 'alice@acme')
      const r = await resolved(resolveTenant(byUsernameDomain({ separator: '#' }), request('c', 'alice#acme')))
      assert.deepEqual([r.tenant, r.username], ['acme', 'alice'])
    })

    it('refuses with 0x86 a missing user name, a missing domain, an empty user or an invalid tenant', async () => {
      for (const username of [undefined, 'alice', '@acme', 'alice@Acme', 'alice@a:b', 'alice@']) {
        assert.equal(await refused(resolveTenant(byUsernameDomain(), request('c', username))), 0x86, String(username))
      }
    })

    it('gives the default tenant to user names without a domain when not required', async () => {
      const r = await resolved(resolveTenant(byUsernameDomain({ required: false }), request('c', 'alice')))
      assert.deepEqual(r, { tenant: undefined, clientId: 'c', username: 'alice' })
    })
  })

  describe('byClientIdPrefix', () => {
    it('takes the tenant from tenant:clientid and strips it from the client id by default', async () => {
      assert.deepEqual(await resolved(resolveTenant(byClientIdPrefix(), request('acme:sensor:1', 'u'))), {
        tenant: 'acme',
        clientId: 'sensor:1',
        username: 'u'
      })
      const kept = await resolved(resolveTenant(byClientIdPrefix({ strip: false, separator: '.' }), request('acme.s1')))
      assert.deepEqual([kept.tenant, kept.clientId], ['acme', 'acme.s1'])
    })

    it('refuses with 0x85 no prefix, an empty id after it, an invalid tenant, or an empty client id', async () => {
      for (const clientId of ['sensor', 'acme:', 'Acme:s', 'a*:s', ':s', '']) {
        assert.equal(await refused(resolveTenant(byClientIdPrefix(), request(clientId))), 0x85, clientId)
      }
    })

    it('gives the default tenant to ids without a prefix when not required', async () => {
      assert.equal((await resolved(resolveTenant(byClientIdPrefix({ required: false }), request('')))).tenant, undefined)
    })
  })

  describe('byListener', () => {
    it('gives each listener its fixed tenant, the default tenant to others', async () => {
      const resolver = byListener({ 'tcp:1883': 'acme', internal: undefined })
      assert.equal((await resolved(resolveTenant(resolver, request('c', 'u', 'tcp:1883')))).tenant, 'acme')
      assert.equal((await resolved(resolveTenant(resolver, request('c', 'u', 'internal')))).tenant, undefined)
      assert.equal((await resolved(resolveTenant(resolver, request('c', 'u', 'ws:8080')))).tenant, undefined)
      assert.equal((await resolved(resolveTenant(resolver, request('c', 'u')))).tenant, undefined)
    })

    it('refuses unknown listeners with 0x87 when told to, and invalid tenants at construction', async () => {
      const resolver = byListener(new Map([['a', 'acme']]), { unknown: 'refuse' })
      assert.equal(await refused(resolveTenant(resolver, request('c', 'u', 'b'))), 0x87)
      assert.throws(() => byListener({ a: 'Bad Tenant' }), TypeError)
    })
  })

  describe('byFunction and resolveTenant', () => {
    it('accepts a tenant id, undefined, a TenantError, sync or async', async () => {
      assert.equal((await resolved(resolveTenant(byFunction(() => 'acme'), request('c')))).tenant, 'acme')
      assert.equal((await resolved(resolveTenant(byFunction(async () => undefined), request('c')))).tenant, undefined)
      const code = await refused(resolveTenant(byFunction(() => new TenantError(0x87, 'no')), request('c')))
      assert.equal(code, 0x87)
    })

    it('refuses an invalid tenant id with 0x85 and a throwing resolver with 0x80, never throws', async () => {
      assert.equal(await refused(resolveTenant(byFunction(() => 'Not:Valid'), request('c'))), 0x85)
      assert.equal(
        await refused(
          resolveTenant(() => {
            throw new Error('boom')
          }, request('c'))
        ),
        0x80
      )
      assert.equal(
        await refused(
          resolveTenant(() => {
            throw new TenantError(0x86, 'bad')
          }, request('c'))
        ),
        0x86
      )
    })
  })
})
