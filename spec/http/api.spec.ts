import { expect } from 'chai'
import type { IPublishPacket } from 'mqtt'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { AsyncBackend } from '../helpers/async-backend.js'
import { useTeardown } from '../helpers/teardown.js'
import { setup, until } from './helpers.js'

interface Json {
  [key: string]: unknown
}

describe('http – REST management API', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  describe('clients', () => {
    it('lists connected clients with filters by tenant, user and listener, and paging', async () => {
      const s = await setup(teardown, { broker: { backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain() } })
      await s.connect({ clientId: 'c1', username: 'ann@acme' })
      await s.connect({ clientId: 'c2', username: 'bob@acme' })
      await s.connect({ clientId: 'c3', username: 'cid@beta', protocolVersion: 5 })
      const all = (await s.call('/api/v1/clients')).body as Json
      expect(all.total).to.equal(3)
      const acme = (await s.call('/api/v1/clients?tenant=acme')).body as { items: Json[]; total: number }
      expect(acme.items.map((c) => c.client_id)).to.deep.equal(['c1', 'c2'])
      expect(acme.items[0]).to.include({ tenant: 'acme', username: 'ann', listener: 'tcp-main', transport: 'tcp', protocol_level: 4 })
      expect(acme.items[0]?.remote_address).to.match(/^127\.0\.0\.1:\d+$/)
      const bob = (await s.call('/api/v1/clients?user=bob')).body as { items: Json[] }
      expect(bob.items.map((c) => c.client_id)).to.deep.equal(['c2'])
      expect(((await s.call('/api/v1/clients?listener=other')).body as Json).total).to.equal(0)
      const page = (await s.call('/api/v1/clients?offset=1&limit=1')).body as { items: Json[]; total: number }
      expect(page.items.map((c) => c.client_id)).to.deep.equal(['c2'])
      expect(page.total).to.equal(3)
      const bad = await s.call('/api/v1/clients?limit=0')
      expect(bad.status).to.equal(400)
      expect(bad.body).to.have.nested.property('error.code', 'bad_request')
      expect((await s.call('/api/v1/clients?tenant=Bad!')).status).to.equal(400)
    })

    it("shows one client's details with its session, and kicks it (MQTT 5: DISCONNECT 0x98)", async () => {
      const s = await setup(teardown)
      const client = await s.connect({ clientId: 'dev/1', protocolVersion: 5, keepalive: 30 })
      await client.subscribeAsync('a/#', { qos: 1 })
      const details = await s.call('/api/v1/clients/dev%2F1')
      expect(details.status).to.equal(200)
      expect(details.body).to.include({ client_id: 'dev/1', keepalive: 30, protocol_level: 5 })
      expect((details.body as Json).subscriptions).to.deep.equal([
        { topic_filter: 'a/#', qos: 1, no_local: false, retain_as_published: false, retain_handling: 0, subscription_identifier: null }
      ])
      const reason = new Promise<number | undefined>((resolve) => client.once('disconnect', (packet) => resolve(packet.reasonCode)))
      const kicked = await s.call('/api/v1/clients/dev%2F1', { method: 'DELETE' })
      expect(kicked.status).to.equal(200)
      expect(await reason).to.equal(0x98)
      await until(() => s.broker.connectedClients.length === 0)
      expect((await s.call('/api/v1/clients/dev%2F1', { method: 'DELETE' })).status).to.equal(404)
      expect((await s.call('/api/v1/clients/nobody')).status).to.equal(404)
    })
  })

  describe('sessions and their subscriptions', () => {
    it('lists, shows, adds and removes subscriptions, and deletes a session', async () => {
      const s = await setup(teardown)
      const away = await s.connect({ clientId: 'away', clean: false })
      await away.subscribeAsync('x/+', { qos: 1 })
      await away.endAsync()
      const live = await s.connect({ clientId: 'live', protocolVersion: 5 })
      await until(async () => ((await s.call('/api/v1/sessions')).body as Json).total === 2)
      const list = (await s.call('/api/v1/sessions')).body as { items: Json[] }
      expect(list.items.map((i) => [i.client_id, i.connected, i.subscriptions])).to.deep.equal([
        ['away', false, 1],
        ['live', true, 0]
      ])
      expect(((await s.call('/api/v1/sessions?search=liv')).body as Json).total).to.equal(1)
      const one = (await s.call('/api/v1/sessions/away')).body as Json
      expect(one).to.include({ client_id: 'away', connected: false })
      expect((one.subscriptions as Json[])[0]).to.include({ topic_filter: 'x/+', qos: 1 })

      // Add a subscription to the live session: messages flow to it at once.
      const added = await s.call('/api/v1/sessions/live/subscriptions', { method: 'POST', json: { topic_filter: 'ops/#', qos: 1 } })
      expect(added.status).to.equal(201)
      const got = new Promise<IPublishPacket>((resolve) => live.once('message', (_t, _p, packet) => resolve(packet)))
      await s.broker.publish({ topic: 'ops/restart', payload: 'now', qos: 1 })
      expect((await got).payload.toString()).to.equal('now')
      const subs = (await s.call('/api/v1/sessions/live/subscriptions')).body as { items: Json[] }
      expect(subs.items.map((i) => i.topic_filter)).to.deep.equal(['ops/#'])
      expect((await s.call('/api/v1/sessions/live/subscriptions', { method: 'POST', json: { topic_filter: 'a/#/b' } })).status).to.equal(400)
      expect((await s.call('/api/v1/sessions/live/subscriptions', { method: 'POST', json: { topic_filter: 'a', qos: 5 } })).status).to.equal(400)
      expect((await s.call('/api/v1/sessions/ghost/subscriptions', { method: 'POST', json: { topic_filter: 'a' } })).status).to.equal(404)
      const removed = await s.call('/api/v1/sessions/live/subscriptions?topic_filter=ops%2F%23', { method: 'DELETE' })
      expect(removed.status).to.equal(200)
      expect((await s.call('/api/v1/sessions/live/subscriptions?topic_filter=ops%2F%23', { method: 'DELETE' })).status).to.equal(404)
      expect((await s.call('/api/v1/sessions/live/subscriptions', { method: 'DELETE' })).status).to.equal(400)

      // Delete: the away session is gone; the live one's connection is closed too.
      expect((await s.call('/api/v1/sessions/away', { method: 'DELETE' })).status).to.equal(200)
      expect((await s.call('/api/v1/sessions/away')).status).to.equal(404)
      const closed = new Promise<void>((resolve) => live.once('close', () => resolve()))
      expect((await s.call('/api/v1/sessions/live', { method: 'DELETE' })).status).to.equal(200)
      await closed
      expect((await s.call('/api/v1/sessions/live', { method: 'DELETE' })).status).to.equal(404)
    })

    it('answers 501 with a clear body when the backend cannot list sessions or retained messages', async () => {
      const s = await setup(teardown, { broker: { backend: new AsyncBackend() } })
      for (const path of ['/api/v1/sessions', '/api/v1/sessions/x', '/api/v1/retained', '/api/v1/retained/a']) {
        const answer = await s.call(path)
        expect(answer.status, path).to.equal(501)
        expect((answer.body as { error: Json }).error).to.include({ code: 'not_implemented' })
        expect((answer.body as { error: { message: string } }).error.message).to.match(/does not implement (listSessions|inspectSession|listRetained)/)
      }
      // Clients and publish work on any backend.
      expect((await s.call('/api/v1/clients')).status).to.equal(200)
      expect((await s.call('/api/v1/publish', { method: 'POST', json: { topic: 't', payload: 'x' } })).status).to.equal(200)
    })
  })

  describe('retained messages', () => {
    it('lists by filter, gets one by topic, deletes it', async () => {
      const s = await setup(teardown)
      const client = await s.connect()
      await client.publishAsync('home/kitchen/temp', '21.5', { retain: true, qos: 1 })
      await client.publishAsync('home/hall/temp', Buffer.from([0xff, 0x00]), { retain: true, qos: 0 })
      await client.publishAsync('office/temp', '19', { retain: true, qos: 1 })
      await until(async () => ((await s.call('/api/v1/retained')).body as { items: Json[] }).items.length === 3)
      const home = (await s.call('/api/v1/retained?filter=home%2F%2B%2Ftemp')).body as { items: Json[] }
      expect(home.items.map((m) => [m.topic, m.payload, m.payload_base64])).to.deep.equal([
        ['home/hall/temp', null, '/wA='],
        ['home/kitchen/temp', '21.5', Buffer.from('21.5').toString('base64')]
      ])
      expect(((await s.call('/api/v1/retained?limit=1')).body as { items: Json[] }).items).to.have.length(1)
      const one = await s.call('/api/v1/retained/home/kitchen/temp')
      expect(one.status).to.equal(200)
      expect(one.body).to.include({ topic: 'home/kitchen/temp', payload: '21.5', qos: 1, size: 4 })
      expect((await s.call('/api/v1/retained/home/kitchen/temp', { method: 'DELETE' })).status).to.equal(200)
      expect((await s.call('/api/v1/retained/home/kitchen/temp')).status).to.equal(404)
      expect((await s.call('/api/v1/retained/home/kitchen/temp', { method: 'DELETE' })).status).to.equal(404)
      expect((await s.call('/api/v1/retained?filter=a%2F%23%2Fb')).status).to.equal(400)
      expect((await s.call('/api/v1/retained/a%2B')).status).to.equal(400)
      expect((await s.call('/api/v1/retained/%E0%A4%A')).status).to.equal(400)
    })
  })

  describe('publish', () => {
    it('publishes with QoS, retain and MQTT 5 properties to an MQTT.js subscriber', async () => {
      const s = await setup(teardown)
      const sub = await s.connect({ protocolVersion: 5 })
      await sub.subscribeAsync('cmd/#', { qos: 2 })
      const got = new Promise<IPublishPacket>((resolve) => sub.once('message', (_t, _p, packet) => resolve(packet)))
      const answer = await s.call('/api/v1/publish', {
        method: 'POST',
        json: {
          topic: 'cmd/reboot',
          payload: Buffer.from('{"now":true}').toString('base64'),
          payload_encoding: 'base64',
          qos: 2,
          retain: true,
          properties: { content_type: 'application/json', user_properties: { by: 'ops' }, message_expiry_interval: 60, response_topic: 'cmd/reply', correlation_data: 'abc' }
        }
      })
      expect(answer.status).to.equal(200)
      expect(answer.body).to.include({ topic: 'cmd/reboot', matched: 1 })
      const packet = await got
      expect(packet.payload.toString()).to.equal('{"now":true}')
      expect(packet.qos).to.equal(2)
      expect(packet.properties).to.include({ contentType: 'application/json', responseTopic: 'cmd/reply' })
      expect(packet.properties?.userProperties).to.deep.equal({ by: 'ops' })
      expect(((await s.call('/api/v1/retained/cmd/reboot')).body as Json).payload).to.equal('{"now":true}')
    })

    it('refuses bad requests with 4xx and a JSON error, and the broker keeps serving', async () => {
      const s = await setup(teardown, { http: { maxBodySize: 2048 } })
      const cases: [RequestInit & { json?: unknown }, number][] = [
        [{ method: 'POST', json: { topic: 'a/+', payload: 'x' } }, 400],
        [{ method: 'POST', json: { payload: 'x' } }, 400],
        [{ method: 'POST', json: { topic: 'a', qos: 3 } }, 400],
        [{ method: 'POST', json: { topic: 'a', payload: 5 } }, 400],
        [{ method: 'POST', json: { topic: 'a', payload: '***', payload_encoding: 'base64' } }, 400],
        [{ method: 'POST', json: { topic: 'a', payload_encoding: 'hex' } }, 400],
        [{ method: 'POST', json: { topic: 'a', properties: { colour: 'red' } } }, 400],
        [{ method: 'POST', json: { topic: 'a', properties: { message_expiry_interval: -1 } } }, 400],
        [{ method: 'POST', json: { topic: 'a', properties: { user_properties: 'x' } } }, 400],
        [{ method: 'POST', json: { topic: 'a', tenant: 'Not Valid' } }, 400],
        [{ method: 'POST', json: [1, 2] }, 400],
        [{ method: 'POST', body: '{"topic":', headers: { 'content-type': 'application/json' } }, 400],
        [{ method: 'POST', body: 'topic=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
        [{ method: 'POST', json: { topic: 'a', payload: 'x'.repeat(4096) } }, 413],
        [{ method: 'GET' }, 405]
      ]
      for (const [init, status] of cases) {
        const answer = await s.call('/api/v1/publish', init)
        expect(answer.status, JSON.stringify(init)).to.equal(status)
        expect((answer.body as { error: Json }).error, JSON.stringify(init)).to.include({ status })
      }
      expect((await s.call('/api/v1/publish', { method: 'GET' })).headers.get('allow')).to.equal('POST')
      expect((await s.call('/api/v1/nothing')).status).to.equal(404)
      expect((await s.call('/nothing')).status).to.equal(404)
      expect((await s.call('/api/v1/clients/%E0%A4%A')).status).to.equal(400)
      expect((await s.call('/api/v1/publish', { method: 'POST', json: { topic: 'ok' } })).status).to.equal(200)
      expect((await s.call('/healthz')).status).to.equal(200)
    })
  })

  describe('tenants', () => {
    it('lists tenants with their connections and stored counts', async () => {
      const s = await setup(teardown, { broker: { backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain() } })
      const a = await s.connect({ clientId: 'a', username: 'x@acme', clean: false })
      await a.subscribeAsync('t/1')
      await a.subscribeAsync('t/2')
      await a.publishAsync('kept', 'v', { retain: true })
      await s.connect({ clientId: 'b', username: 'y@beta' })
      await until(async () => ((await s.call('/api/v1/tenants')).body as { items: Json[] }).items.some((t) => t.tenant === 'acme' && t.retained === 1))
      const items = ((await s.call('/api/v1/tenants')).body as { items: Json[] }).items
      expect(items.find((t) => t.tenant === 'acme')).to.deep.include({ connections: 1, sessions: 1, subscriptions: 2, retained: 1 })
      expect(items.find((t) => t.tenant === 'beta')).to.deep.include({ connections: 1, sessions: 1, subscriptions: 0, retained: 0 })
      const sessions = (await s.call('/api/v1/sessions?tenant=acme')).body as { items: Json[] }
      expect(sessions.items.map((i) => [i.client_id, i.tenant])).to.deep.equal([['a', 'acme']])
      expect(((await s.call('/api/v1/sessions?tenant=nobody')).body as Json).total).to.equal(0)
      expect(((await s.call('/api/v1/sessions')).body as Json).total).to.equal(0)
    })
  })
})
