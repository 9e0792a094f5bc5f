import { readFileSync } from 'node:fs'
import { expect } from 'chai'
import { Ajv2020 } from 'ajv/dist/2020.js'
import mqtt from 'mqtt'
import { parse } from 'yaml'
import type { IClientOptions, MqttClient } from 'mqtt'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import type { KeyvBackend } from '../../lib/backend/keyv/index.js'
import { listenHttp } from '../../lib/http/listen.js'
import type { HttpListener } from '../../lib/http/listen.js'
import { useRedisServer } from '../helpers/redis-server.js'
import { useTeardown } from '../helpers/teardown.js'
import { randomRoot, startNode } from '../integration/redis/nodes.js'
import { until } from './helpers.js'

interface ClientItem {
  client_id: string
  username: string | null
  listener: string | null
  transport: string | null
  node: string | null
}
interface ClientPage {
  items: ClientItem[]
  total: number
  scope: string
}
interface ErrorBody {
  error: { status: number; code: string; message: string }
}

/** Validates a JSON body against a schema of docs/openapi.yaml (`#/components/schemas/<name>`). */
function schemaCheck(): (name: string, value: unknown) => void {
  const doc = parse(readFileSync(new URL('../../docs/openapi.yaml', import.meta.url), 'utf8')) as Record<string, unknown>
  const ajv = new Ajv2020({ strict: false, validateFormats: false })
  ajv.addSchema({ $id: 'openapi', components: doc.components })
  return (name, value) => {
    const validate = ajv.getSchema(`openapi#/components/schemas/${name}`)
    if (validate === undefined) throw new Error(`no schema ${name}`)
    expect(validate(value), `${name}: ${JSON.stringify(validate.errors)}`).to.equal(true)
  }
}

/**
 * Two broker processes' worth of `Broker`s on one real redis-server: the management API of one
 * shows and steers the clients and sessions connected to the other (MQTT.js clients).
 */
describe('http – management API across a Redis cluster', function () {
  this.timeout(60_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  interface Cluster {
    a: Broker
    b: Broker
    nodeA: KeyvBackend
    nodeB: KeyvBackend
    portA: number
    portB: number
    /** The HTTP listener of B. */
    http: HttpListener
    call(path: string, init?: RequestInit & { json?: unknown }): Promise<{ status: number; body: unknown }>
    connect(port: number, options?: IClientOptions): Promise<MqttClient>
  }

  async function cluster(): Promise<Cluster> {
    const root = randomRoot()
    const nodeA = await startNode(redis.url, root)
    const nodeB = await startNode(redis.url, root)
    const a = teardown.add(new Broker({ backend: nodeA, logger: silentLogger }), (b) => b.close())
    const b = teardown.add(new Broker({ backend: nodeB, logger: silentLogger }), (b) => b.close())
    const portA = (await a.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: 'tcp-a' })).port
    const portB = (await b.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: 'tcp-b' })).port
    const http = teardown.add(await listenHttp(b, { port: 0, defaultMetrics: false }), (h) => h.close())
    return {
      a,
      b,
      nodeA,
      nodeB,
      portA,
      portB,
      http,
      async call(path, init = {}) {
        const headers = new Headers(init.headers)
        let body = init.body
        if (init.json !== undefined) {
          headers.set('content-type', 'application/json')
          body = JSON.stringify(init.json)
        }
        const response = await fetch(`${http.url}/api/v1${path}`, { ...init, headers, body })
        expect(response.headers.get('content-type')).to.match(/^application\/json/)
        return { status: response.status, body: await response.json() }
      },
      async connect(port, options = {}) {
        return teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, protocolVersion: 5, ...options }), (c) => c.endAsync(true))
      }
    }
  }

  /** The DISCONNECT reason code the broker sends to `client`, once it does. */
  function disconnectedWith(client: MqttClient): Promise<number | undefined> {
    return new Promise((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)))
  }

  it('lists, filters, pages and shows the clients of every node from any node', async () => {
    const c = await cluster()
    await c.connect(c.portA, { clientId: 'alpha', username: 'alice' })
    await c.connect(c.portA, { clientId: 'bravo', username: 'bob' })
    const charlie = await c.connect(c.portB, { clientId: 'charlie', username: 'alice' })
    await charlie.subscribeAsync('site/+/state', { qos: 1 })

    const all = (await c.call('/clients')).body as ClientPage
    expect(all.scope).to.equal('cluster')
    const check = schemaCheck()
    for (const item of all.items) check('Client', item)
    expect(all.total).to.equal(3)
    expect(all.items.map((i) => [i.client_id, i.node, i.listener, i.transport])).to.deep.equal([
      ['alpha', c.nodeA.nodeId, 'tcp-a', 'tcp'],
      ['bravo', c.nodeA.nodeId, 'tcp-a', 'tcp'],
      ['charlie', c.nodeB.nodeId, 'tcp-b', 'tcp']
    ])
    const byUser = (await c.call('/clients?user=alice')).body as ClientPage
    expect(byUser.items.map((i) => i.client_id)).to.deep.equal(['alpha', 'charlie'])
    const byListener = (await c.call('/clients?listener=tcp-a')).body as ClientPage
    expect(byListener.items.map((i) => i.client_id)).to.deep.equal(['alpha', 'bravo'])
    const byTenant = (await c.call('/clients?tenant=')).body as ClientPage
    expect(byTenant.total).to.equal(3)
    expect(((await c.call('/clients?tenant=other')).body as ClientPage).total).to.equal(0)
    const page = (await c.call('/clients?offset=1&limit=1')).body as ClientPage
    expect([page.total, page.items.map((i) => i.client_id)]).to.deep.equal([3, ['bravo']])
    const searched = (await c.call('/clients?search=bo')).body as ClientPage
    expect(searched.items.map((i) => i.client_id)).to.deep.equal(['bravo'])

    // Details of a client of the other node, with its session.
    const remote = await c.call('/clients/alpha')
    expect(remote.status).to.equal(200)
    expect(remote.body).to.deep.include({ client_id: 'alpha', username: 'alice', node: c.nodeA.nodeId, listener: 'tcp-a' })
    check('ClientDetails', remote.body)
    const local = (await c.call('/clients/charlie')).body as { node: string; subscriptions: { topic_filter: string }[] }
    expect(local.node).to.equal(c.nodeB.nodeId)
    expect(local.subscriptions.map((s) => s.topic_filter)).to.deep.equal(['site/+/state'])
    check('ClientDetails', local)

    const unknown = await c.call('/clients/nobody')
    expect(unknown.status).to.equal(404)
    expect((unknown.body as ErrorBody).error).to.deep.include({ status: 404, code: 'not_found' })
    check('Error', unknown.body)
    expect((await c.call('/clients?limit=0')).status).to.equal(400)
  })

  it('kicks a client connected to another node, which leaves the list; a client that disconnects leaves it too', async () => {
    const c = await cluster()
    const alpha = await c.connect(c.portA, { clientId: 'alpha' })
    const bravo = await c.connect(c.portA, { clientId: 'bravo' })
    const reason = disconnectedWith(alpha)
    const kicked = await c.call('/clients/alpha', { method: 'DELETE' })
    expect(kicked).to.deep.equal({ status: 200, body: { client_id: 'alpha', tenant: null, disconnected: true } })
    expect(await reason).to.equal(0x98)
    await until(async () => ((await c.call('/clients')).body as ClientPage).items.every((i) => i.client_id !== 'alpha'))
    await bravo.endAsync()
    await until(async () => ((await c.call('/clients')).body as ClientPage).total === 0)
    const gone = await c.call('/clients/alpha', { method: 'DELETE' })
    expect(gone.status).to.equal(404)
    expect((gone.body as ErrorBody).error.message).to.match(/no connected client "alpha"/)
  })

  it("forgets a node's clients when the node closes", async () => {
    const c = await cluster()
    await c.connect(c.portA, { clientId: 'alpha' })
    await c.connect(c.portB, { clientId: 'charlie' })
    expect(((await c.call('/clients')).body as ClientPage).total).to.equal(2)
    await c.a.close()
    await until(async () => ((await c.call('/clients')).body as ClientPage).items.map((i) => i.client_id).join() === 'charlie')
  })

  it('adds and removes a subscription of a client connected to another node, which takes effect there', async () => {
    const c = await cluster()
    const sub = await c.connect(c.portA, { clientId: 'sub-1', clean: false, properties: { sessionExpiryInterval: 3600 } })
    const pub = await c.connect(c.portB, { clientId: 'pub-1' })
    const received: string[] = []
    sub.on('message', (topic) => received.push(topic))

    const added = await c.call('/sessions/sub-1/subscriptions', { method: 'POST', json: { topic_filter: 'news/#', qos: 1 } })
    expect(added).to.deep.include({ status: 201 })
    expect(added.body).to.deep.include({ topic_filter: 'news/#', qos: 1 })
    await pub.publishAsync('news/a', 'one', { qos: 1 })
    await until(() => received.includes('news/a'))
    const listed = (await c.call('/sessions/sub-1/subscriptions')).body as { items: { topic_filter: string }[] }
    expect(listed.items.map((s) => s.topic_filter)).to.deep.equal(['news/#'])

    // A second one, to tell when the removal has taken effect without sleeping.
    expect((await c.call('/sessions/sub-1/subscriptions', { method: 'POST', json: { topic_filter: 'marker', qos: 1 } })).status).to.equal(201)
    const removed = await c.call(`/sessions/sub-1/subscriptions?topic_filter=${encodeURIComponent('news/#')}`, { method: 'DELETE' })
    expect(removed).to.deep.equal({ status: 200, body: { client_id: 'sub-1', topic_filter: 'news/#', removed: true } })
    await pub.publishAsync('news/b', 'two', { qos: 1 })
    await pub.publishAsync('marker', 'm', { qos: 1 })
    await until(() => received.includes('marker'))
    expect(received).to.deep.equal(['news/a', 'marker'])

    const again = await c.call(`/sessions/sub-1/subscriptions?topic_filter=${encodeURIComponent('news/#')}`, { method: 'DELETE' })
    expect(again.status).to.equal(404)
    expect((again.body as ErrorBody).error.message).to.match(/has no subscription "news\/#"/)
    const noSession = await c.call('/sessions/nobody/subscriptions', { method: 'POST', json: { topic_filter: 'x', qos: 0 } })
    expect(noSession.status).to.equal(404)
    expect((noSession.body as ErrorBody).error).to.deep.include({ code: 'not_found' })
    expect((await c.call('/sessions/nobody/subscriptions?topic_filter=x', { method: 'DELETE' })).status).to.equal(404)
    const invalid = await c.call('/sessions/sub-1/subscriptions', { method: 'POST', json: { topic_filter: 'a/#/b', qos: 1 } })
    expect(invalid.status).to.equal(400)
    expect((invalid.body as ErrorBody).error.code).to.equal('bad_request')
  })

  it('deletes the session of a client connected to another node: the client is disconnected and the session is gone', async () => {
    const c = await cluster()
    const sub = await c.connect(c.portA, { clientId: 'sub-2', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await sub.subscribeAsync('alerts/#', { qos: 1 })
    const reason = disconnectedWith(sub)
    const deleted = await c.call('/sessions/sub-2', { method: 'DELETE' })
    expect(deleted).to.deep.equal({ status: 200, body: { client_id: 'sub-2', tenant: null, deleted: true } })
    expect(await reason).to.equal(0x98)
    expect((await c.call('/sessions/sub-2')).status).to.equal(404)
    // The subscription left the index: nothing matches any more.
    const published = (await c.call('/publish', { method: 'POST', json: { topic: 'alerts/x', payload: 'p', qos: 1 } })).body as { matched: number }
    expect(published.matched).to.equal(0)
    const back = await c.connect(c.portA, { clientId: 'sub-2', clean: false, properties: { sessionExpiryInterval: 3600 } })
    expect(back.connected).to.equal(true)
    const session = (await c.call('/sessions/sub-2')).body as { subscriptions: unknown[]; connected: boolean }
    expect(session).to.deep.include({ connected: true, subscriptions: [] })
    expect((await c.call('/sessions/nobody', { method: 'DELETE' })).status).to.equal(404)
  })

  it('changes an away session in Redis: a subscription added there gets its messages queued, and it is deleted', async () => {
    const c = await cluster()
    const away = await c.connect(c.portA, { clientId: 'away-1', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await away.endAsync()
    await until(async () => ((await c.call('/sessions/away-1')).body as { connected: boolean }).connected === false)
    expect((await c.call('/sessions/away-1/subscriptions', { method: 'POST', json: { topic_filter: 'jobs/+', qos: 1 } })).status).to.equal(201)
    expect((await c.call('/sessions/away-1/subscriptions', { method: 'POST', json: { topic_filter: 'other', qos: 0 } })).status).to.equal(201)
    expect((await c.call('/sessions/away-1/subscriptions?topic_filter=other', { method: 'DELETE' })).status).to.equal(200)
    const published = (await c.call('/publish', { method: 'POST', json: { topic: 'jobs/7', payload: 'run', qos: 1 } })).body as { matched: number }
    expect(published.matched).to.equal(1)
    const got = new Promise<string>((resolve) => {
      const back = mqtt.connect(`mqtt://127.0.0.1:${c.portB}`, { clientId: 'away-1', clean: false, reconnectPeriod: 0, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } })
      teardown.add(back, (client) => client.endAsync(true))
      back.on('message', (topic, payload) => resolve(`${topic}=${payload.toString()}`))
    })
    expect(await got).to.equal('jobs/7=run')

    const other = await c.connect(c.portA, { clientId: 'away-2', clean: false, properties: { sessionExpiryInterval: 3600 } })
    await other.subscribeAsync('x/#', { qos: 1 })
    await other.endAsync()
    await until(async () => ((await c.call('/sessions/away-2')).body as { connected: boolean }).connected === false)
    expect((await c.call('/sessions/away-2', { method: 'DELETE' })).status).to.equal(200)
    expect((await c.call('/sessions/away-2')).status).to.equal(404)
    expect((await c.call('/sessions/away-2', { method: 'DELETE' })).status).to.equal(404)
  })
})
