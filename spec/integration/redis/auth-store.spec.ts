/**
 * Users and ACL rules in Redis, shared by two brokers on one real redis-server: changes made through
 * one are effective on both within a second; tenants never see each other's users.
 */
import { expect } from 'chai'
import mqtt from 'mqtt'
import type { MqttClient, Packet } from 'mqtt'
import { withAccessControl } from '../../../lib/auth/access-backend.js'
import type { AccessControlBackend } from '../../../lib/auth/access-backend.js'
import { RedisUserStore } from '../../../lib/auth/redis-store.js'
import { SCRAM_SHA_256, ScramClient } from '../../../lib/auth/scram.js'
import { FakeClient } from '../../../lib/backend/conformance/index.js'
import { runPasswd } from '../../../lib/auth/passwd-command.js'
import { PassThrough, Readable } from 'node:stream'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { MemoryBackend } from '../../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../../lib/backend/tenant-backend.js'
import { byUsernameDomain } from '../../../lib/tenancy/resolvers.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'

describe('access control – users and rules in Redis, two brokers', function () {
  this.timeout(30000)
  const teardown = useTeardown()
  let server: RedisServer | undefined
  let prefix = ''
  let n = 0

  before(async () => {
    server = await startRedisServer()
  })
  after(async () => {
    await server?.dispose()
  })
  beforeEach(() => {
    prefix = `auth${++n}`
  })

  async function store(): Promise<RedisUserStore> {
    const s = teardown.add(new RedisUserStore({ url: server!.url, prefix, pollMs: 0 }), (x) => x.close())
    await s.ready()
    return s
  }

  /** A broker (its own store, its own Redis connections) with tenants from user@tenant. */
  async function broker(): Promise<{ port: number; users: RedisUserStore; backend: AccessControlBackend }> {
    const users = await store()
    const backend = withAccessControl(new TenantBackend(() => new MemoryBackend()), { authenticators: [users], bruteForce: false })
    const b = teardown.add(
      new Broker({
        backend,
        tenantResolver: byUsernameDomain(),
        logger: silentLogger
      }),
      (x) => x.close()
    )
    return { port: (await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })).port, users, backend }
  }

  async function connect(port: number, clientId: string, username: string, password: string): Promise<MqttClient> {
    const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { protocolVersion: 5, clientId, username, password, reconnectPeriod: 0 })
    teardown.defer(() => c.endAsync(true))
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve())
      c.once('error', reject)
    })
    return c
  }

  async function refusal(port: number, clientId: string, username: string, password: string): Promise<number | undefined> {
    return await connect(port, clientId, username, password).then(
      () => undefined,
      (e: { code?: number }) => e.code
    )
  }

  /** Retry `attempt` until it holds; resolves with the time it took (ms). */
  async function within(ms: number, attempt: () => Promise<boolean>): Promise<number> {
    const start = Date.now()
    while (!(await attempt())) {
      if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    return Date.now() - start
  }

  it('a user added through one store can connect to both brokers within a second; a deleted one cannot', async () => {
    const one = await broker()
    const two = await broker()
    const admin = await store()
    // Both brokers have seen tenant acme (so the change is pushed to a cache they hold).
    expect(await refusal(one.port, 'x1', 'alice@acme', 'pw')).to.equal(0x86)
    expect(await refusal(two.port, 'x2', 'alice@acme', 'pw')).to.equal(0x86)
    await admin.setUser('acme', 'alice', 'pw', { acl: [{ filter: 'acme/#', access: 'readwrite' }] })
    // Both processes know her within a second (measured on their stores: a login's scrypt is slow
    // on a busy machine and not part of the propagation)...
    const took = await within(1000, async () => one.users.hasUser('acme', 'alice') === true && two.users.hasUser('acme', 'alice') === true)
    expect(took).to.be.below(1000)
    // ...and she can connect to both.
    expect(await refusal(one.port, 'a1', 'alice@acme', 'pw')).to.equal(undefined)
    expect(await refusal(two.port, 'a2', 'alice@acme', 'pw')).to.equal(undefined)
    // Tenants never see each other's users.
    expect(await refusal(one.port, 'a3', 'alice@beta', 'pw')).to.equal(0x86)
    // Live connections of alice on both brokers are closed when she is deleted (0x98).
    const live = [await connect(one.port, 'l1', 'alice@acme', 'pw'), await connect(two.port, 'l2', 'alice@acme', 'pw')]
    const closed = live.map((c) => new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode))))
    await admin.deleteUser('acme', 'alice')
    expect(await Promise.all(closed)).to.deep.equal([0x98, 0x98])
    expect(await refusal(two.port, 'a4', 'alice@acme', 'pw')).to.equal(0x86)
  })

  it('a rule removed in Redis stops deliveries on both brokers', async () => {
    const one = await broker()
    const two = await broker()
    const admin = await store()
    await admin.setUser('acme', 'sub', 'pw', { acl: [{ filter: 'feed/#', access: 'readwrite' }] })
    await admin.setUser('acme', 'pub', 'pw', { acl: [{ filter: 'feed/#', access: 'readwrite' }, { filter: 'other/#', access: 'write' }] })
    const subs = await Promise.all(
      [one, two].map(async (b, i) =>
        within(5000, async () => (await refusal(b.port, `probe${i}`, 'sub@acme', 'pw')) === undefined).then(() =>
          connect(b.port, `s${i}`, 'sub@acme', 'pw')
        )
      )
    )
    const got: string[][] = [[], []]
    subs.forEach((c, i) => c.on('message', (_t, payload) => got[i]!.push(payload.toString())))
    for (const c of subs) await c.subscribeAsync('feed/#', { qos: 1 })
    // Each broker has its own MemoryBackend: publish on each.
    const pubs = [await connect(one.port, 'p1', 'pub@acme', 'pw'), await connect(two.port, 'p2', 'pub@acme', 'pw')]
    for (const [i, p] of pubs.entries()) await p.publishAsync('feed/a', `before${i}`, { qos: 1 })
    await within(2000, async () => got[0]!.length === 1 && got[1]!.length === 1)
    const generations = [one, two].map((b) => b.backend.access.generation)
    await admin.setUserAcl('acme', 'sub', [{ filter: 'other/#', access: 'readwrite' }])
    // Within a second both brokers have the change...
    const took = await within(1000, async () => [one, two].every((b, i) => b.backend.access.generation > generations[i]!))
    expect(took).to.be.below(1000)
    // ...and deliver no more feed/... to the subscriber (feed/ then other/, in order on each broker).
    for (const c of subs) await c.subscribeAsync('other/#', { qos: 1 })
    for (const [i, p] of pubs.entries()) {
      await p.publishAsync('feed/a', `after${i}`, { qos: 1 })
      await p.publishAsync('other/a', `other${i}`, { qos: 1 })
    }
    await within(5000, async () => got[0]!.length === 2 && got[1]!.length === 2)
    expect(got).to.deep.equal([
      ['before0', 'other0'],
      ['before1', 'other1']
    ])
  })

  it('mqtt-broker passwd --redis adds and deletes users of a tenant, live', async () => {
    const one = await broker()
    expect(await refusal(one.port, 'c0', 'carol@acme', 'carol-pw')).to.equal(0x86)
    const io = (input: string): { stdin: Readable; stdout: PassThrough; stderr: PassThrough } => ({
      stdin: Readable.from([input]),
      stdout: new PassThrough(),
      stderr: new PassThrough()
    })
    const args = ['--redis', server!.url, '--prefix', prefix, '--tenant', 'acme']
    expect(await runPasswd([...args, 'carol'], io('carol-pw\n'))).to.equal(0)
    await within(1000, async () => one.users.hasUser('acme', 'carol') === true)
    expect(await refusal(one.port, 'c1', 'carol@acme', 'carol-pw')).to.equal(undefined)
    // Rules from the command line: carol's own, then the tenant's; bad JSON or rules change nothing.
    const carol = await connect(one.port, 'c9', 'carol@acme', 'carol-pw')
    const codes = async (): Promise<number[]> =>
      await new Promise((resolve) => {
        const onPacket = (packet: Packet): void => {
          if (packet.cmd !== 'suback') return
          carol.off('packetreceive', onPacket)
          resolve(packet.granted as number[])
        }
        carol.on('packetreceive', onPacket)
        carol.subscribe(['mine/x', 'team/x'], { qos: 0 }, () => undefined)
      })
    // No rule at all: everything allowed (acl_default).
    expect(await codes()).to.deep.equal([0, 0])
    let generation = one.backend.access.generation
    expect(await runPasswd([...args, '--set-acl', '[{"filter":"mine/#","access":"read"}]', 'carol'], io(''))).to.equal(0)
    await within(1000, async () => one.backend.access.generation > generation)
    expect(await codes()).to.deep.equal([0, 0x87])
    generation = one.backend.access.generation
    expect(await runPasswd([...args, '--set-tenant-acl', '[{"filter":"team/#","access":"readwrite"}]'], io(''))).to.equal(0)
    await within(1000, async () => one.backend.access.generation > generation)
    expect(await codes()).to.deep.equal([0, 0])
    const bad = io('')
    expect(await runPasswd([...args, '--set-acl', '[{"filter":"a/#/b","access":"read"}]', 'carol'], bad)).to.equal(1)
    expect(await runPasswd([...args, '--set-acl', 'not json', 'carol'], io(''))).to.equal(1)
    expect(await runPasswd([...args, '--set-tenant-acl', '[]', 'carol'], io(''))).to.equal(2)
    expect(await runPasswd([...args, '-D', 'carol'], io(''))).to.equal(0)
    await within(1000, async () => one.users.hasUser('acme', 'carol') === false)
    expect(await refusal(one.port, 'c2', 'carol@acme', 'carol-pw')).to.equal(0x86)
    expect(await runPasswd([...args, '-D', 'carol'], io(''))).to.equal(1)
  })

  it('SCRAM-SHA-256 takes the users of the connection\'s tenant from Redis', async () => {
    const users = await store()
    await users.setUser('acme', 'sam', 'scram-pw', { scram: true })
    const b = withAccessControl(new MemoryBackend(), { authenticators: [users], bruteForce: false })
    class TenantClient extends FakeClient {
      override readonly tenant: string | undefined
      constructor(id: string, tenant: string | undefined) {
        super(id)
        this.tenant = tenant
      }
    }
    const exchange = async (tenant: string | undefined, password: string): Promise<string> => {
      const client = new TenantClient('s1', tenant)
      const scram = new ScramClient('sam', password)
      const connect = { type: 'connect', protocolLevel: 5, clientId: 's1', clean: true, keepalive: 0 } as const
      const first = { clientId: 's1', username: 'sam', password: undefined, connect, authenticationMethod: SCRAM_SHA_256, authenticationData: scram.first() }
      const challenge = await b.authenticate(client, first)
      if (challenge.result !== 'continue') return challenge.result
      const answer = await b.authenticate(client, { ...first, authenticationData: scram.final(challenge.properties.authenticationData!) })
      if (answer.result !== 'allow') return answer.result
      return scram.verify(answer.properties!.authenticationData!) ? 'verified' : 'unverified'
    }
    expect(await exchange('acme', 'scram-pw')).to.equal('verified')
    expect(await exchange('acme', 'wrong')).to.equal('deny')
    // Another tenant has no sam.
    expect(await exchange('beta', 'scram-pw')).to.equal('deny')
    await b.close()
  })
})
