import { expect } from 'chai'
import type { MqttClient } from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { listenHttp } from '../../../lib/http/listen.js'
import type { HttpListener } from '../../../lib/http/listen.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { until } from '../../http/helpers.js'
import { randomRoot, startNode } from './nodes.js'
import { connectMqtt, killBroker, spawnBroker, stopBroker } from './processes.js'
import type { BrokerProcess } from './processes.js'

interface ClientPage {
  items: { client_id: string; node: string }[]
  total: number
}

/**
 * The management API of one process steering the clients of a broker process (fixtures/
 * redis-broker.ts) on the same redis-server: kicks and session changes carried out by that process,
 * a process that does not answer (SIGSTOP) and one that died (SIGKILL).
 */
describe('KeyvBackend – the management API across broker processes', function () {
  this.timeout(90_000)
  const teardown = useTeardown()
  const redis = useRedisServer()

  async function start(): Promise<{ proc: BrokerProcess; http: HttpListener; call: (path: string, init?: RequestInit) => Promise<{ status: number; body: unknown }> }> {
    const root = randomRoot()
    const proc = teardown.add(await spawnBroker(redis.url, 'p1', root), async (p) => {
      if (p.child.signalCode === null && p.child.exitCode === null) p.child.kill('SIGCONT')
      await stopBroker(p)
    })
    // Judges other nodes dead after 3 × 2 s; waits 1 s for another node's answer.
    const node = await startNode(redis.url, root, { heartbeatInterval: 2000, takeoverTimeout: 1000 })
    const broker = teardown.add(new Broker({ backend: node, logger: silentLogger }), (b) => b.close())
    const http = teardown.add(await listenHttp(broker, { port: 0, defaultMetrics: false }), (h) => h.close())
    return {
      proc,
      http,
      async call(path, init = {}) {
        const response = await fetch(`${http.url}/api/v1${path}`, init)
        return { status: response.status, body: await response.json() }
      }
    }
  }

  function track(client: MqttClient): { reasons: (number | undefined)[] } {
    const seen = { reasons: [] as (number | undefined)[] }
    client.on('disconnect', (packet) => seen.reasons.push(packet.reasonCode))
    return seen
  }

  it('kicks and re-subscribes a client of another process; a process that does not answer gets 503 and does nothing later', async () => {
    const { proc, call } = await start()
    const first = teardown.add(await connectMqtt(proc.port, { clientId: 'remote-1', protocolVersion: 5 }), (c) => c.endAsync(true))
    const firstSeen = track(first)
    await until(async () => ((await call('/clients')).body as ClientPage).items.some((i) => i.client_id === 'remote-1' && i.node === 'p1'))
    expect((await call('/clients/remote-1', { method: 'DELETE' })).status).to.equal(200)
    await until(() => firstSeen.reasons.length === 1)
    expect(firstSeen.reasons).to.deep.equal([0x98])

    const client = teardown.add(await connectMqtt(proc.port, { clientId: 'remote-1', protocolVersion: 5 }), (c) => c.endAsync(true))
    const seen = track(client)
    const got: string[] = []
    client.on('message', (topic) => got.push(topic))
    // Stopped: it beats no more but is not dead yet; it cannot answer within the 1 s.
    proc.child.kill('SIGSTOP')
    const stuck = await call('/clients/remote-1', { method: 'DELETE' })
    expect(stuck.status).to.equal(503)
    expect((stuck.body as { error: { code: string; message: string } }).error).to.deep.include({ code: 'backend_unavailable' })
    expect((stuck.body as { error: { message: string } }).error.message).to.match(/node p1 did not answer/)
    proc.child.kill('SIGCONT')
    // The next request to that process is answered after the late kick in its inbox: it was dropped.
    const added = await call('/sessions/remote-1/subscriptions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic_filter: 'ops/#', qos: 1 })
    })
    expect(added.status).to.equal(201)
    expect(seen.reasons).to.deep.equal([])
    expect(client.connected).to.equal(true)
    await call('/publish', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic: 'ops/1', payload: 'x', qos: 1 }) })
    await until(() => got.includes('ops/1'))
  })

  it("forgets a killed process's clients after three heartbeats and deletes its session", async () => {
    const { proc, call } = await start()
    teardown.add(await connectMqtt(proc.port, { clientId: 'remote-2', protocolVersion: 5, clean: false, properties: { sessionExpiryInterval: 3600 } }), (c) =>
      c.endAsync(true)
    )
    await until(async () => ((await call('/clients')).body as ClientPage).total === 1)
    await killBroker(proc)
    await until(async () => ((await call('/clients')).body as ClientPage).total === 0, 20_000)
    // Once this node took the process for dead (3 of its heartbeats), it released the session.
    await until(async () => ((await call('/sessions/remote-2')).body as { connected?: boolean }).connected === false, 20_000)
    expect((await call('/clients/remote-2')).status).to.equal(404)
    const kick = await call('/clients/remote-2', { method: 'DELETE' })
    expect(kick.status, JSON.stringify(kick.body)).to.equal(404)
    expect((await call('/sessions/remote-2', { method: 'DELETE' })).status).to.equal(200)
    expect((await call('/sessions/remote-2')).status).to.equal(404)
  })
})
