import { spawnSync } from 'node:child_process'
import { expect } from 'chai'
import mqtt from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { until } from '../../http/helpers.js'
import { randomRoot, startNode } from './nodes.js'

/**
 * The per-tenant session index of the Redis backend: listings page through it and counts read its
 * size (no keyspace SCAN), every way a session ends removes it, and sessions stored before the
 * index existed are added once.
 */
describe('KeyvBackend – the session index behind listings and counts', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  /** One redis-cli command against the spec's server. */
  function cli(...args: string[]): string {
    const run = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(redis.port), ...args], { encoding: 'utf8' })
    if (run.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${run.stderr}`)
    return run.stdout.trim()
  }

  it('pages, searches and counts the sessions of the cluster from the index, and follows deletions', async () => {
    const root = randomRoot()
    const node = await startNode(redis.url, root)
    const broker = teardown.add(new Broker({ backend: node, logger: silentLogger }), (b) => b.close())
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    for (let i = 0; i < 5; i++) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `s-${i}`, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 })
      if (i < 3) await c.endAsync()
      else teardown.add(c, (client) => client.endAsync(true))
    }
    // A clean session ends with its connection and leaves the index.
    const clean = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'clean-1', reconnectPeriod: 0 })
    await clean.endAsync()
    await until(async () => (await node.listSessions(undefined, {})).total === 5)
    const page = await node.listSessions(undefined, { offset: 1, limit: 2 })
    expect([page.total, page.items.map((s) => s.clientId)]).to.deep.equal([5, ['s-1', 's-2']])
    expect((await node.listSessions(undefined, { search: '-3' })).items.map((s) => [s.clientId, s.connected])).to.deep.equal([['s-3', true]])
    expect((await node.counts(undefined)).sessions).to.equal(5)
    expect(cli('ZCARD', `${root}:default:sessions`)).to.equal('5')

    expect(await node.deleteSession(undefined, 's-0')).to.equal(true)
    expect((await node.counts(undefined)).sessions).to.equal(4)
    expect((await node.listSessions(undefined, {})).items.map((s) => s.clientId)).to.deep.equal(['s-1', 's-2', 's-3', 's-4'])
    // An away session whose expiry ran out leaves it too (the heartbeat's expiry sweep).
    const short = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'short', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 1 }, reconnectPeriod: 0 })
    await short.endAsync()
    expect((await node.counts(undefined)).sessions).to.equal(5)
    await until(async () => (await node.counts(undefined)).sessions === 4)
    expect(cli('EXISTS', `${root}:default:s:{short}`)).to.equal('0')
  })

  it('adds the sessions stored before the index existed, once, and prunes members without a session', async () => {
    const root = randomRoot()
    const node = await startNode(redis.url, root)
    const broker = teardown.add(new Broker({ backend: node, logger: silentLogger }), (b) => b.close())
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    for (const id of ['old-a', 'old-b']) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: id, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 0 })
      await c.endAsync()
    }
    // As if written by a version without the index.
    cli('DEL', `${root}:default:sessions`, `${root}:default:sessions:ok`)
    const other = teardown.add(await startNode(redis.url, root), (n) => n.close())
    await until(async () => (await other.listSessions(undefined, {})).total === 2)
    expect((await other.listSessions(undefined, {})).items.map((s) => s.clientId)).to.deep.equal(['old-a', 'old-b'])
    expect(cli('GET', `${root}:default:sessions:ok`)).to.equal('1')

    cli('ZADD', `${root}:default:sessions`, '0', 'ghost')
    const listed = await other.listSessions(undefined, {})
    expect(listed.items.map((s) => s.clientId)).to.deep.equal(['old-a', 'old-b'])
    await until(() => cli('ZSCORE', `${root}:default:sessions`, 'ghost') === '')
    expect((await other.counts(undefined)).sessions).to.equal(2)
  })
})
