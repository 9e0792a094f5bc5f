import { expect } from 'chai'
import mqtt from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { listenHttp } from '../../lib/http/listen.js'
import { startRedisServer } from '../helpers/redis-server.js'
import type { RedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'
import { until } from './helpers.js'

describe('http – management API on the Redis backend', function () {
  this.timeout(30_000)
  const teardown = useTeardown()
  let redis: RedisServer

  before(async () => {
    redis = await startRedisServer()
  })
  after(async () => {
    await redis.dispose()
  })

  it("shows and deletes the retained messages another process stored, publishes to another process's subscriber, and answers 501 for sessions", async () => {
    const root = randomRoot()
    const a = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
    const b = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
    const { port } = await a.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const http = teardown.add(await listenHttp(b, { port: 0, defaultMetrics: false }), (h) => h.close())
    const client = teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 }), (c) => c.endAsync(true))
    await client.publishAsync('site/a/state', 'on', { retain: true, qos: 1 })
    const list = await fetch(`${http.url}/api/v1/retained?filter=site%2F%23`)
    expect(list.status).to.equal(200)
    expect(((await list.json()) as { items: { topic: string; payload: string }[] }).items.map((m) => [m.topic, m.payload])).to.deep.equal([['site/a/state', 'on']])
    expect((await fetch(`${http.url}/api/v1/retained/site/a/state`, { method: 'DELETE' })).status).to.equal(200)
    expect((await fetch(`${http.url}/api/v1/retained/site/a/state`)).status).to.equal(404)

    // Publish through process B's API to a subscriber on process A.
    await client.subscribeAsync('cmd/#', { qos: 1 })
    const got = new Promise<string>((resolve) => client.once('message', (_t, payload) => resolve(payload.toString())))
    await until(async () => {
      const answer = await fetch(`${http.url}/api/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"topic":"cmd/x","payload":"go","qos":1}' })
      return ((await answer.json()) as { matched: number | null }).matched !== 0
    })
    expect(await got).to.equal('go')

    const sessions = await fetch(`${http.url}/api/v1/sessions`)
    expect(sessions.status).to.equal(501)
    expect(((await sessions.json()) as { error: { message: string } }).error.message).to.match(/does not implement listSessions/)
  })
})
