import { expect } from 'chai'
import mqtt from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { listenHttp } from '../../lib/http/listen.js'
import { useRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'
import { until } from './helpers.js'

describe('http – management API on the Redis backend', function () {
  this.timeout(30_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  it("shows and deletes the retained messages another process stored, publishes to another process's subscriber, and lists the whole cluster's sessions", async () => {
    const root = randomRoot()
    const a = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
    const b = teardown.add(new Broker({ backend: await startNode(redis.url, root), logger: silentLogger }), (b) => b.close())
    const { port } = await a.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const http = teardown.add(await listenHttp(b, { port: 0, defaultMetrics: false, publicMetrics: true }), (h) => h.close())
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

    // Sessions of the whole cluster, from process B: the live client of A and an away session.
    const away = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: 'away-1', clean: false, reconnectPeriod: 0 })
    await away.subscribeAsync('alerts/#', { qos: 1 })
    await away.endAsync()
    await until(async () => {
      const list = (await (await fetch(`${http.url}/api/v1/sessions`)).json()) as { items: { client_id: string; connected: boolean }[] }
      return list.items.some((i) => i.client_id === 'away-1' && !i.connected)
    })
    const sessions = (await (await fetch(`${http.url}/api/v1/sessions`)).json()) as { items: { client_id: string; connected: boolean; subscriptions: number }[]; total: number }
    const live = sessions.items.find((i) => i.connected)
    expect(live?.subscriptions).to.equal(1)
    expect(sessions.items.find((i) => i.client_id === 'away-1')).to.deep.include({ connected: false, subscriptions: 1 })
    const one = (await (await fetch(`${http.url}/api/v1/sessions/away-1`)).json()) as { subscriptions: { topic_filter: string; qos: number }[] }
    expect(one.subscriptions.map((s) => [s.topic_filter, s.qos])).to.deep.equal([['alerts/#', 1]])
    expect((await fetch(`${http.url}/api/v1/sessions/nobody`)).status).to.equal(404)
    // Stored totals Redis can count: sessions, subscriptions and retained messages, in the metrics too.
    const metrics = await (await fetch(`${http.url}/metrics`, { headers: {} })).text()
    expect(metrics).to.match(/^mqtt_subscriptions\{tenant="_default"\} 2$/m)
    expect(metrics).to.match(/^mqtt_retained_messages\{tenant="_default"\} 0$/m)
    expect(metrics).to.match(/^mqtt_sessions\{tenant="_default"\} 2$/m)
    expect(metrics).to.not.match(/^mqtt_queued_messages\{/m)
    // An away session is deleted in Redis, from any process.
    const deleted = await fetch(`${http.url}/api/v1/sessions/away-1`, { method: 'DELETE' })
    expect(deleted.status).to.equal(200)
    expect((await fetch(`${http.url}/api/v1/sessions/away-1`)).status).to.equal(404)
  })
})
