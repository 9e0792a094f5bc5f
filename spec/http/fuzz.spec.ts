import { expect } from 'chai'
import fc from 'fast-check'
import { useTeardown } from '../helpers/teardown.js'
import { setup } from './helpers.js'

const SEGMENTS = ['api', 'v1', 'clients', 'sessions', 'subscriptions', 'retained', 'publish', 'tenants', 'overview', 'metrics', 'healthz', 'readyz', 'dashboard', 'c1', '%2F', '%ZZ', '%00', '..', '', '#', '+', '$SYS', 'a%2Fb']
const QUERIES = ['', '?tenant=acme', '?tenant=BAD!', '?limit=-1', '?limit=1e9', '?offset=x', '?filter=%23', '?filter=a%2F%23%2Fb', '?topic_filter=', '?search=%00', '?tenant=&user=x']

describe('http – random requests never crash the broker or answer without a JSON error', function () {
  this.timeout(120_000)
  const teardown = useTeardown()

  it('answers every random method, path, query and body with a status below 500 (or 501/503 with a JSON error)', async () => {
    const s = await setup(teardown)
    const client = await s.connect({ clientId: 'c1', clean: false })
    await client.subscribeAsync('a/#', { qos: 1 })
    await client.publishAsync('a/b', 'x', { retain: true })
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string(),
      fc.json(),
      fc.record({ topic: fc.oneof(fc.string(), fc.constantFrom('a/b', 'a/+', '', '$SYS/x')), payload: fc.oneof(fc.string(), fc.integer()), qos: fc.oneof(fc.integer({ min: -1, max: 3 }), fc.string()), retain: fc.oneof(fc.boolean(), fc.string()), properties: fc.oneof(fc.object(), fc.constant(null)) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      fc.record({ topic_filter: fc.oneof(fc.string(), fc.constantFrom('a/#', '#/a', '$share/g/x')), qos: fc.integer({ min: -1, max: 3 }) }, { requiredKeys: [] }).map((v) => JSON.stringify(v))
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'HEAD'),
        fc.array(fc.constantFrom(...SEGMENTS), { minLength: 0, maxLength: 5 }),
        fc.constantFrom(...QUERIES),
        body,
        fc.constantFrom('application/json', 'text/plain', ''),
        async (method, segments, query, payload, type) => {
          const path = `/${['api', 'v1', ...segments].join('/')}${query}`
          const headers: Record<string, string> = type === '' ? {} : { 'content-type': type }
          const answer = await s.call(path, { method, headers, body: method === 'GET' || method === 'HEAD' ? undefined : payload })
          if (method === 'HEAD') return answer.status < 500
          const isError = answer.status >= 400
          const ok = answer.status < 500 || answer.status === 501 || answer.status === 503
          return ok && (!isError || typeof (answer.body as { error?: { code?: unknown } } | undefined)?.error?.code === 'string')
        }
      ),
      { numRuns: 300 }
    )
    // Still serving HTTP and MQTT (the random requests may have kicked c1: a new client works).
    expect((await s.call('/readyz')).status).to.equal(200)
    const after = await s.connect({ clientId: 'after' })
    await after.publishAsync('a/c', 'still here', { qos: 1 })
  })
})
