import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FakeClient, backendConformance, message, sub } from '../../lib/backend/conformance/index.js'
import type { Backend, Credentials } from '../../lib/backend/backend.js'
import { KeyvBackend } from '../../lib/backend/keyv/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import type { ProtocolLevel } from '../../lib/packet/types.js'
import type { Session } from '../../lib/session/session.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisServer } from '../helpers/redis-server.js'

class TenantClient extends FakeClient {
  override readonly tenant: string | undefined
  constructor(clientId: string, tenant: string | undefined, protocolLevel: ProtocolLevel = 5) {
    super(clientId, protocolLevel)
    this.tenant = tenant
  }
}

function credentials(clientId: string): Credentials {
  return {
    clientId,
    username: undefined,
    password: undefined,
    connect: { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, keepalive: 0, clientId } as unknown as Credentials['connect']
  }
}

interface Conn {
  client: TenantClient
  session: Session
  present: boolean
}

async function open(backend: Backend, clientId: string, tenant: string | undefined, clean = true): Promise<Conn> {
  const client = new TenantClient(clientId, tenant)
  const { session, present } = await backend.setup(client, clean, clean ? 0 : 0xffff_ffff)
  await backend.queueOffline(client)
  return { client, session, present }
}

async function settle(backend: Backend, conns: Conn[], count: number, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (conns.some((c) => c.client.deliveries.length < count) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  // Anything extra (a crossing) would arrive now.
  await new Promise((r) => setTimeout(r, backend instanceof TenantBackend && slowKinds.has(backend) ? 150 : 5))
}

const slowKinds = new WeakSet<TenantBackend>()

// One redis-server for this file (hooks in a describe: at the top level they would run around
// every spec file of the run).
describe('TenantBackend', () => {
  let server: RedisServer | undefined

  before(async function () {
    this.timeout(10_000)
    server = await startRedisServer()
  })

  after(async () => {
    await server?.dispose()
  })

  // The wrapper is transparent: the whole backend conformance suite passes through it.
  backendConformance('TenantBackend(MemoryBackend)', () => new TenantBackend(() => new MemoryBackend({ maxQueuedMessages: 5, maxRetainedMessages: 8 })), {
    maxQueuedMessages: 5,
    maxRetainedMessages: 8,
    tenants: true
  })

  const kinds: [string, () => TenantBackend][] = [
    ['MemoryBackend', () => new TenantBackend(() => new MemoryBackend())],
    [
      'KeyvBackend',
      () => {
        const root = `tb${randomBytes(4).toString('hex')}`
        const made = new TenantBackend(
          (tenant) =>
            new KeyvBackend({ url: (server as RedisServer).url, prefix: root, namespace: tenant ?? 'default', awaitQos0: true, log: () => undefined })
        )
        slowKinds.add(made)
        return made
      }
    ]
  ]

  for (const [kind, make] of kinds) {
    describe(`TenantBackend over ${kind}`, function () {
      this.timeout(10_000)
      let backend: TenantBackend

      beforeEach(() => {
        backend = make()
      })

      afterEach(async () => {
        await backend.close()
      })

      it('keeps the same client ids and topics of two tenants apart: sessions, subscriptions, deliveries', async () => {
        const acme = await open(backend, 'dev', 'acme', false)
        const globex = await open(backend, 'dev', 'globex', false)
        // The second connection is no takeover of the first: another tenant, another session.
        assert.equal(globex.present, false)
        assert.deepEqual(acme.client.closes, [])
        await backend.subscribe(acme.client, [sub('t/#', 0)])
        await backend.subscribe(globex.client, [sub('t/+', 0)])
        const publisher = await open(backend, 'pub', 'acme')
        assert.equal(await backend.publish(publisher.client, message('t/1', 'for-acme')), 1)
        assert.equal(await backend.publish(undefined, { ...message('t/1', 'broker-globex'), tenant: 'globex' }), 1)
        assert.equal(await backend.publish(undefined, message('t/1', 'broker-default')), 0)
        await settle(backend, [acme, globex], 1)
        assert.deepEqual(acme.client.payloads(), ['for-acme'])
        assert.deepEqual(globex.client.payloads(), ['broker-globex'])
        assert.deepEqual(backend.tenants.sort(), [undefined, 'acme', 'globex'].sort())
      })

      it('keeps retained messages per tenant, broker-made ones routed by message.tenant', async () => {
        await backend.storeRetained(new TenantClient('p', 'acme'), { ...message('r/1', 'acme-r'), retain: true })
        await backend.storeRetained(undefined, { ...message('r/1', 'globex-r'), retain: true, tenant: 'globex' })
        const a = await open(backend, 'x', 'acme')
        const g = await open(backend, 'x', 'globex')
        const d = await open(backend, 'x', undefined)
        for (const c of [a, g, d]) await backend.queueRetained(c.client, sub('r/#', 0))
        assert.deepEqual(a.client.payloads(), ['acme-r'])
        assert.deepEqual(g.client.payloads(), ['globex-r'])
        assert.deepEqual(d.client.payloads(), [])
      })

      it('takes a session over within a tenant only [MQTT-3.1.4-3]', async () => {
        const first = await open(backend, 'same', 'acme', false)
        const other = await open(backend, 'same', 'globex', false)
        const second = await open(backend, 'same', 'acme', false)
        assert.equal(second.present, true)
        assert.deepEqual(
          first.client.closes.map((c) => c.reasonCode),
          [0x8e]
        )
        assert.deepEqual(other.client.closes, [])
        assert.equal(other.client.connected, true)
      })

      it('keeps an offline queue in its tenant', async () => {
        const away = await open(backend, 'q', 'acme', false)
        await backend.subscribe(away.client, [sub('q', 1)])
        away.client.connected = false
        await backend.terminate(away.client)
        await backend.publish(new TenantClient('p', 'globex'), message('q', 'wrong-tenant', 1))
        await backend.publish(new TenantClient('p', 'acme'), message('q', 'right-tenant', 1))
        const back = await open(backend, 'q', 'acme', false)
        await settle(backend, [back], 1)
        assert.deepEqual(back.client.payloads(), ['right-tenant'])
      })

      it('refuses bad tenant ids: authenticate denies 0x85, other calls throw, no backend is made', async () => {
        for (const bad of ['Acme', 'a:b', 'a*', '{a}', '']) {
          const client = new TenantClient('c', bad)
          assert.deepEqual(await backend.authenticate(client, credentials('c')), { result: 'deny', reasonCode: 0x85, reasonString: 'invalid tenant' })
          assert.throws(() => backend.setup(client, true, 0), TypeError)
          assert.throws(() => backend.publish(undefined, { ...message('t', 'x'), tenant: bad }), TypeError)
        }
        assert.deepEqual(backend.tenants, [])
      })
    })
  }

  describe('TenantBackend – lifecycle', () => {
    it('makes each tenant backend once, lazily, and closes every one', async () => {
      const made: (string | undefined)[] = []
      const closed: (string | undefined)[] = []
      const backend = new TenantBackend((tenant) => {
        made.push(tenant)
        const inner = new MemoryBackend()
        const close = inner.close.bind(inner)
        inner.close = () => {
          closed.push(tenant)
          return close()
        }
        return inner
      })
      assert.deepEqual(made, [])
      await open(backend, 'a', 'acme')
      await open(backend, 'b', 'acme')
      await backend.publish(undefined, message('t', 'x'))
      assert.deepEqual(made, ['acme', undefined])
      await backend.close()
      assert.deepEqual(closed.sort(), [undefined, 'acme'].sort())
      assert.throws(() => backend.backendOf('other'), TypeError)
    })

    it('refuses a new tenant beyond maxTenants with 0x97 Quota exceeded', async () => {
      const backend = new TenantBackend({ factory: () => new MemoryBackend(), maxTenants: 2 })
      const allow = { result: 'allow' }
      assert.deepEqual(await backend.authenticate(new TenantClient('c', 'a'), credentials('c')), allow)
      assert.deepEqual(await backend.authenticate(new TenantClient('c', 'b'), credentials('c')), allow)
      assert.deepEqual(await backend.authenticate(new TenantClient('c', 'a'), credentials('c')), allow)
      const denied = await backend.authenticate(new TenantClient('c', 'c'), credentials('c'))
      assert.equal(denied.result === 'deny' && denied.reasonCode, 0x97)
      await backend.close()
    })
  })
})
