/**
 * `TenantBackend` and its tenant directory, in one process (MemoryBackends, MemoryTenantDirectory):
 * the listing rule (a tenant is listed while it has a session), the race between a listing that
 * forgets a tenant and a session set up meanwhile, a directory that fails, and the unchanged
 * behaviour without a directory. The cluster case (Redis, two processes) is
 * spec/integration/redis/tenant-directory.spec.ts.
 */
import assert from 'node:assert/strict'
import { FakeClient, backendConformance } from '../../lib/backend/conformance/index.js'
import type { Backend } from '../../lib/backend/backend.js'
import type { BackendCounts } from '../../lib/backend/inspection.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { MemoryTenantDirectory } from '../../lib/tenancy/directory.js'

class TenantClient extends FakeClient {
  override readonly tenant: string | undefined
  constructor(clientId: string, tenant: string | undefined) {
    super(clientId, 5)
    this.tenant = tenant
  }
}

/** Sets a session up and accepts it, as the engine does; answers the client. */
async function open(backend: Backend, clientId: string, tenant: string | undefined, expiry = 0): Promise<TenantClient> {
  const client = new TenantClient(clientId, tenant)
  await backend.setup(client, true, expiry)
  await backend.queueOffline(client)
  return client
}

/** Ends a connection as the engine does (a session with expiry 0 goes with it). */
async function end(backend: Backend, client: TenantClient): Promise<void> {
  client.connected = false
  await backend.terminate(client)
}

/** The tenants recorded in `directory`, sorted ('-': the default tenant). */
function recorded(directory: MemoryTenantDirectory): string[] {
  return [...directory.entries().keys()].map((tenant) => tenant ?? '-').sort()
}

describe('TenantBackend – the tenant directory', () => {
  // The wrapper with a directory stays transparent (setup answers once the tenant is recorded).
  backendConformance(
    'TenantBackend(MemoryBackend, shared, directory)',
    () => new TenantBackend({ factory: () => new MemoryBackend({ maxQueuedMessages: 5, maxRetainedMessages: 8 }), shared: true, directory: new MemoryTenantDirectory() }),
    { maxQueuedMessages: 5, maxRetainedMessages: 8, tenants: true }
  )

  it('without a directory lists the tenants that have a backend here, at once, as before', async () => {
    const backend = new TenantBackend(() => new MemoryBackend())
    const alpha = await open(backend, 'alpha', 'acme')
    await open(backend, 'beta', undefined)
    const listed = backend.listTenants()
    assert.ok(Array.isArray(listed), 'a synchronous answer')
    assert.deepEqual(listed, ['acme', undefined])
    // A tenant whose last session ended keeps its backend, so stays listed.
    await end(backend, alpha)
    assert.deepEqual(backend.listTenants(), ['acme', undefined])
    await backend.close()
  })

  it('lists a tenant while it has a session: recorded at setup, forgotten by the listing after its last session', async () => {
    const directory = new MemoryTenantDirectory()
    const backend = new TenantBackend({ factory: () => new MemoryBackend(), shared: true, directory })
    assert.deepEqual(await backend.listTenants(), [])
    const alpha = await open(backend, 'alpha', 'acme')
    const kept = await open(backend, 'kept', 'globex', 300)
    await open(backend, 'plain', undefined)
    assert.deepEqual(await backend.listTenants(), [undefined, 'acme', 'globex'])
    await end(backend, alpha)
    await end(backend, kept)
    // acme's session went with its connection; globex's stays (expiry 300 s) while away.
    assert.deepEqual(await backend.listTenants(), [undefined, 'globex'])
    assert.deepEqual(recorded(directory), ['-', 'globex'])
    assert.equal(await backend.deleteSession('globex', 'kept'), true)
    assert.deepEqual(await backend.listTenants(), [undefined])
    // Retained messages alone do not make a tenant listed (the rule is sessions).
    await backend.storeRetained(undefined, { topic: 'r', payload: Buffer.from('x'), qos: 0, retain: true, tenant: 'acme' })
    assert.deepEqual(await backend.listTenants(), [undefined])
    await backend.close()
  })

  it('keeps a tenant whose session is set up while a listing checks it', async () => {
    const directory = new MemoryTenantDirectory()
    const inner = new MemoryBackend()
    // counts answers what it found, but only once the spec lets it.
    const counts = inner.counts.bind(inner)
    let counted: (() => void) | undefined
    const asked = new Promise<void>((resolve) => (counted = resolve))
    let answer: () => void = () => undefined
    const gate = new Promise<void>((resolve) => (answer = resolve))
    inner.counts = ((tenant: string | undefined): Promise<BackendCounts> => {
      const found = counts(tenant)
      counted?.()
      return gate.then(() => found)
    }) as unknown as MemoryBackend['counts']
    const backend = new TenantBackend({ factory: () => inner, shared: true, directory })
    await end(backend, await open(backend, 'first', 'acme'))
    // The listing read acme's generation and counted no session...
    const listing = backend.listTenants()
    await asked
    // ...then a session is set up and recorded before the listing forgets.
    await open(backend, 'second', 'acme')
    answer()
    assert.deepEqual(await listing, ['acme'])
    assert.deepEqual(recorded(directory), ['acme'])
    await backend.close()
  })

  it('accepts a session whose record failed, lists its tenant here and records it at the next chance', async () => {
    const directory = new MemoryTenantDirectory()
    let failing = true
    const record = directory.record.bind(directory)
    directory.record = (tenant) => {
      if (failing) throw new Error('directory away')
      record(tenant)
    }
    const backend = new TenantBackend({ factory: () => new MemoryBackend(), shared: true, directory })
    await open(backend, 'alpha', 'acme')
    assert.deepEqual(recorded(directory), [])
    assert.deepEqual(await backend.listTenants(), ['acme'])
    failing = false
    assert.deepEqual(await backend.listTenants(), ['acme'])
    assert.deepEqual(recorded(directory), ['acme'])
    await backend.close()
  })

  it('records nothing when the setup fails, and rejects the listing when the directory cannot be read', async () => {
    const directory = new MemoryTenantDirectory()
    const failing = new MemoryBackend()
    failing.setup = () => {
      throw new Error('no session')
    }
    const backend = new TenantBackend({ factory: () => failing, shared: true, directory })
    await assert.rejects(async () => await backend.setup(new TenantClient('c', 'acme'), true, 0), /no session/)
    assert.deepEqual(recorded(directory), [])
    directory.entries = () => {
      throw new Error('unreadable')
    }
    await assert.rejects(async () => await backend.listTenants(), /unreadable/)
    await backend.close()
  })
})
