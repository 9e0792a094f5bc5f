import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { useTeardown } from '../helpers/teardown.js'
import { setup } from './helpers.js'

const FILE = fileURLToPath(new URL('../../docs/openapi.yaml', import.meta.url))

interface OpenApi {
  openapi: string
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
}

describe('http – docs/openapi.yaml matches the served API', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  it('every documented operation exists (no 404 "no such endpoint", no 405), and every served endpoint is documented', async () => {
    const doc = parse(readFileSync(FILE, 'utf8')) as OpenApi
    expect(doc.openapi).to.match(/^3\.1\./)
    const s = await setup(teardown)
    const client = await s.connect({ clientId: 'c' })
    await client.subscribeAsync('t')
    const operations: string[] = []
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item)) {
        if (!['get', 'post', 'delete', 'put', 'patch'].includes(method)) continue
        operations.push(`${method.toUpperCase()} ${path}`)
        const concrete = path.replace('{client_id}', 'c').replace('{topic}', 't')
        const suffix = concrete.endsWith('/subscriptions') && method === 'delete' ? '?topic_filter=t' : ''
        const init = method === 'post' ? { method: 'POST', json: path.endsWith('/publish') ? { topic: 't' } : { topic_filter: 'x' } } : { method: method.toUpperCase() }
        const answer = await s.call(concrete + suffix, init)
        expect(answer.status, `${method} ${path}`).to.not.equal(405)
        expect(JSON.stringify(answer.body ?? ''), `${method} ${path}`).to.not.contain('no such endpoint')
        expect(Object.keys(item[method]!.responses), `${method} ${path} documents its answer`).to.include(String(answer.status))
      }
    }
    // The endpoints the handler serves (kept in step with lib/http/api.ts and handler.ts).
    expect(operations.sort()).to.deep.equal(
      [
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
        'GET /api/v1/overview',
        'GET /api/v1/clients',
        'GET /api/v1/clients/{client_id}',
        'DELETE /api/v1/clients/{client_id}',
        'GET /api/v1/sessions',
        'GET /api/v1/sessions/{client_id}',
        'DELETE /api/v1/sessions/{client_id}',
        'GET /api/v1/sessions/{client_id}/subscriptions',
        'POST /api/v1/sessions/{client_id}/subscriptions',
        'DELETE /api/v1/sessions/{client_id}/subscriptions',
        'GET /api/v1/retained',
        'GET /api/v1/retained/{topic}',
        'DELETE /api/v1/retained/{topic}',
        'POST /api/v1/publish',
        'GET /api/v1/tenants'
      ].sort()
    )
  })
})
