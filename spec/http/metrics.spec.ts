import { expect } from 'chai'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { useTeardown } from '../helpers/teardown.js'
import { sample, setup, until } from './helpers.js'

describe('http – Prometheus metrics', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  it('move when an MQTT.js client connects, publishes, receives and disconnects', async () => {
    const s = await setup(teardown)
    const scrape = async (): Promise<string> => {
      const answer = await s.call('/metrics')
      expect(answer.status).to.equal(200)
      expect(answer.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/)
      return answer.text
    }
    let text = await scrape()
    expect(sample(text, 'mqtt_connections_total')).to.equal(0)
    expect(sample(text, 'mqtt_connections{listener="tcp-main",tenant="_default"}')).to.equal(undefined)
    expect(text).to.contain('# TYPE mqtt_messages_received_total counter')

    const sub = await s.connect({ clientId: 'sub' })
    await sub.subscribeAsync('m/#', { qos: 1 })
    const pub = await s.connect({ clientId: 'pub' })
    const received = new Promise<void>((resolve) => sub.once('message', () => resolve()))
    await pub.publishAsync('m/1', 'hello', { qos: 1 })
    await pub.publishAsync('m/0', 'hello', { qos: 0 })
    await received
    await until(async () => sample(await scrape(), 'mqtt_messages_sent_total{qos="0"}') === 1)
    text = await scrape()
    expect(sample(text, 'mqtt_connections{listener="tcp-main",tenant="_default"}')).to.equal(2)
    expect(sample(text, 'mqtt_connections_total')).to.equal(2)
    expect(sample(text, 'mqtt_connects_total')).to.equal(2)
    expect(sample(text, 'mqtt_messages_received_total{qos="1"}')).to.equal(1)
    expect(sample(text, 'mqtt_messages_received_total{qos="0"}')).to.equal(1)
    expect(sample(text, 'mqtt_messages_sent_total{qos="1"}')).to.equal(1)
    expect(sample(text, 'mqtt_sessions{tenant="_default"}')).to.equal(2)
    expect(sample(text, 'mqtt_subscriptions{tenant="_default"}')).to.equal(1)
    expect(sample(text, 'mqtt_backend_up')).to.equal(1)
    expect(sample(text, 'mqtt_backend_events_total{event="published"}')).to.equal(2)
    const bytesIn = sample(text, 'mqtt_bytes_received_total{tenant="_default"}') ?? 0
    expect(bytesIn).to.be.greaterThan(20)
    expect(sample(text, 'mqtt_bytes_sent_total{tenant="_default"}')).to.be.greaterThan(10)
    expect(sample(text, 'mqtt_backend_probe_duration_seconds_count')).to.be.greaterThan(0)

    await pub.endAsync()
    await until(async () => sample(await scrape(), 'mqtt_connections{listener="tcp-main",tenant="_default"}') === 1)
    text = await scrape()
    // Bytes of closed connections are kept.
    expect(sample(text, 'mqtt_bytes_received_total{tenant="_default"}')).to.be.at.least(bytesIn)
    await sub.endAsync()
    await until(async () => sample(await scrape(), 'mqtt_connections{listener="tcp-main",tenant="_default"}') === undefined)
    expect(sample(await scrape(), 'mqtt_sockets')).to.equal(0)
  })

  it('counts refused connections by reason', async () => {
    const s = await setup(teardown, {
      broker: { backend: new MemoryBackend({ authenticate: (_c, cred) => (cred.username === 'bad' ? { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword } : { result: 'allow' }) }) }
    })
    for (const protocolVersion of [4, 5] as const) {
      let error: unknown
      try {
        await s.connect({ username: 'bad', password: 'x', protocolVersion })
      } catch (e) {
        error = e
      }
      expect(error).to.be.instanceOf(Error)
    }
    await until(async () => sample((await s.call('/metrics')).text, 'mqtt_connections_refused_total{reason="bad_user_name_or_password"}') === 2)
  })

  it('labels tenants up to the configured limit, the rest as _other', async () => {
    const s = await setup(teardown, {
      broker: { backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain(), sysInterval: 3600 },
      http: { metricsTenantLimit: 1 }
    })
    await s.connect({ username: 'a@acme' })
    await s.connect({ username: 'b@beta' })
    await s.connect({ username: 'c@gamma' })
    const text = (await s.call('/metrics')).text
    const tenants = new Set([...text.matchAll(/^mqtt_connections\{listener="tcp-main",tenant="([^"]+)"\} (\d+)/gm)].map((m) => `${m[1]}=${m[2]}`))
    expect([...tenants].sort()).to.deep.equal(['_other=2', 'acme=1'])
    expect(sample(text, 'mqtt_tenant_messages_received_total{tenant="_other"}')).to.equal(0)
  })

  it('includes the runtime: event-loop lag and GC (prom-client default metrics)', async () => {
    const s = await setup(teardown, { http: { defaultMetrics: true } })
    const text = (await s.call('/metrics')).text
    expect(text).to.contain('# TYPE nodejs_eventloop_lag_seconds gauge')
    expect(text).to.contain('nodejs_gc_duration_seconds')
    expect(text).to.contain('process_resident_memory_bytes')
  })
})
