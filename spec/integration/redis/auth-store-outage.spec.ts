/**
 * `RedisUserStore` when Redis is away: started before Redis is up, it connects once Redis comes and
 * serves its users; across a Redis restart it reconnects, and re-reads what it knew, so that a
 * change made while its connections were still coming back (its pub/sub message missed, the version
 * counter of a Redis that lost its data equal again) is not missed.
 */
import { expect } from 'chai'
import mqtt from 'mqtt'
import { withAccessControl } from '../../../lib/auth/access-backend.js'
import type { AuthRequest, AuthVerdict } from '../../../lib/auth/authenticator.js'
import { RedisUserStore } from '../../../lib/auth/redis-store.js'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { MemoryBackend } from '../../../lib/backend/memory-backend.js'
import { freePort, startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'

const request = (username: string, password = 'pw'): AuthRequest => ({ username, password: Buffer.from(password), clientId: `c-${username}` }) as AuthRequest

/** Asks `store` until `check` holds of its verdict (a rejection counts as not yet); the last verdict. */
async function eventually(store: RedisUserStore, username: string, check: (v: AuthVerdict) => boolean, ms: number): Promise<AuthVerdict | string> {
  const deadline = Date.now() + ms
  let last: AuthVerdict | string = 'none'
  while (Date.now() < deadline) {
    last = await store.authenticate(request(username)).catch((error: unknown) => `rejected: ${String(error)}`)
    if (typeof last !== 'string' && check(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return last
}

describe('access control – RedisUserStore across Redis outages', function () {
  this.timeout(60000)
  const teardown = useTeardown()
  let server: RedisServer | undefined
  afterEach(async () => {
    await server?.dispose()
    server = undefined
  })

  it('started while Redis is down: connects once Redis is up and lets its users in (MQTT.js)', async () => {
    const port = await freePort()
    const users = teardown.add(new RedisUserStore({ url: `redis://127.0.0.1:${port}`, prefix: 'late' }), (s) => s.close())
    const backend = withAccessControl(new MemoryBackend(), { authenticators: [users], bruteForce: false })
    const broker = teardown.add(new Broker({ backend, logger: silentLogger }), (b) => b.close())
    const { port: mqttPort } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const connect = (): Promise<number> =>
      new Promise((resolve) => {
        const client = mqtt.connect({ host: '127.0.0.1', port: mqttPort, username: 'u', password: 'pw', reconnectPeriod: 0, connectTimeout: 10000 })
        client.on('connect', () => {
          client.end(true)
          resolve(0)
        })
        client.on('error', (error) => {
          client.end(true)
          resolve((error as { code?: number }).code ?? -1)
        })
        client.on('close', () => resolve(-1))
      })
    // Redis down: the CONNECT is answered within the store's waitMs (not left hanging until the
    // connect timeout closes it): 3.1.1 return code 3, Server unavailable.
    const asked = Date.now()
    expect(await connect()).to.equal(3)
    expect(Date.now() - asked).to.be.below(8000)
    server = await startRedisServer({ port })
    const admin = teardown.add(new RedisUserStore({ url: server.url, prefix: 'late' }), (s) => s.close())
    await admin.ready()
    await admin.setUser(undefined, 'u', 'pw')
    await users.ready()
    let code = -2
    for (let i = 0; i < 50 && code !== 0; i++) code = await connect()
    expect(code).to.equal(0)
  })

  it('close() ends a store that never reached Redis at once (it used to wait for Redis forever)', async () => {
    const port = await freePort()
    const users = new RedisUserStore({ url: `redis://127.0.0.1:${port}` })
    const failed = users.authenticate(request('u')).then(
      () => 'answered',
      () => 'rejected'
    )
    const closed = users.close().then(() => 'closed')
    const late = new Promise((resolve) => setTimeout(() => resolve('still open after 2 s'), 2000))
    expect(await Promise.race([closed, late])).to.equal('closed')
    expect(await failed).to.equal('rejected')
  })

  it('a Redis restart that lost its data: the store reconnects and serves what Redis now holds', async () => {
    server = await startRedisServer()
    const users = teardown.add(new RedisUserStore({ url: server.url, prefix: 'restart', pollMs: 250 }), (s) => s.close())
    await users.ready()
    const before = teardown.add(new RedisUserStore({ url: server.url, prefix: 'restart' }), (s) => s.close())
    await before.ready()
    await before.setUser(undefined, 'old', 'pw')
    expect(await eventually(users, 'old', (v) => v.result === 'allow', 5000)).to.include({ result: 'allow' })
    await server.stop()
    // Known users keep being served from memory while Redis is away.
    expect(await users.authenticate(request('old'))).to.include({ result: 'allow' })
    // An outage of a few seconds: the store's reconnection back-off grows to about two seconds.
    await new Promise((resolve) => setTimeout(resolve, 4000))
    await server.restart() // no persistence: 'old' is gone, the version counter starts again
    // A change made at once, by a process that connected first: its pub/sub message may come
    // before the store's connections are back.
    const after = teardown.add(new RedisUserStore({ url: server.url, prefix: 'restart' }), (s) => s.close())
    await after.ready()
    await after.setUser(undefined, 'new', 'pw')
    expect(await eventually(users, 'new', (v) => v.result === 'allow', 8000)).to.include({ result: 'allow' })
    expect(await eventually(users, 'old', (v) => v.result === 'ignore', 8000)).to.include({ result: 'ignore' })
  })
  it('a tenant first asked during an outage waits (within waitMs) for Redis to come back, not refused at once', async () => {
    server = await startRedisServer()
    const users = teardown.add(new RedisUserStore({ url: server.url, prefix: 'gap', waitMs: 8000 }), (s) => s.close())
    await users.ready()
    const admin = teardown.add(new RedisUserStore({ url: server.url, prefix: 'gap' }), (s) => s.close())
    await admin.ready()
    await admin.setUser('acme', 'u', 'pw')
    await server.stop()
    // `acme` was never read by `users`: it must be loaded from Redis, which is away for a moment.
    const asked = users.authenticate({ ...request('u'), tenant: 'acme' } as AuthRequest).then(
      (verdict) => verdict.result,
      (error: unknown) => `rejected: ${String(error)}`
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    await server.restart() // no persistence: the user is gone; what counts is an answer, not a refusal
    expect(await asked).to.equal('ignore')
  })
})
