import { expect } from 'chai'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock, until } from '../helpers/virtual-clock.js'

describe('broker – the Mosquitto $SYS tree, per tenant', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  it('publishes clients, messages, bytes, load, subscriptions, retained, store and heap topics for each tenant', async () => {
    const clock = new VirtualClock()
    const broker = teardown.add(
      new Broker({ backend: new TenantBackend(() => new MemoryBackend()), tenantResolver: byUsernameDomain(), logger: silentLogger, sysInterval: 3600, clock }),
      (b) => b.close()
    )
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const connect = async (username: string, clean = true): Promise<MqttClient> =>
      teardown.add(await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, clean, clientId: username.replace('@', '-'), reconnectPeriod: 0 }), (c) => c.endAsync(true))
    const watch = await connect('w@acme')
    const values = new Map<string, string>()
    watch.on('message', (topic, payload) => values.set(topic, payload.toString()))
    await watch.subscribeAsync('$SYS/broker/#')
    const away = await connect('away@acme', false)
    await away.subscribeAsync('a/1', { qos: 1 })
    await away.endAsync()
    const pub = await connect('p@acme')
    for (let i = 0; i < 10; i++) await pub.publishAsync('x', 'payload', { qos: 1, retain: i === 0 })
    await connect('other@beta')
    await broker.publishSys()
    // The $SYS topics are retained messages of the tenant too (as in Mosquitto's count).
    const sysRetained = (broker.backend as TenantBackend).listRetained('acme', '$SYS/#', 1000)
    const sysCount = (Array.isArray(sysRetained) ? sysRetained : await sysRetained).length
    expect(sysCount).to.be.greaterThan(30)
    // A second publication, a minute later, has rates to report.
    for (let i = 0; i < 10; i++) await pub.publishAsync('x', 'payload', { qos: 1 })
    await clock.advance(60_000)
    await broker.publishSys()
    await until(() => values.get('$SYS/broker/publish/messages/received') === '20', 'the second publication')
    const v = (name: string): string | undefined => values.get(`$SYS/broker/${name}`)
    expect(v('clients/connected')).to.equal('2')
    expect(v('clients/maximum')).to.equal('2')
    expect(v('clients/total')).to.equal('3')
    expect(v('clients/disconnected')).to.equal('1')
    expect(v('subscriptions/count')).to.equal('2')
    expect(v('retained messages/count')).to.equal(String(sysCount + 1))
    expect(v('store/messages/count')).to.equal('0')
    expect(v('publish/messages/received')).to.equal('20')
    expect(v('messages/received')).to.equal('20')
    expect(Number(v('bytes/received'))).to.be.greaterThan(20 * 10)
    expect(Number(v('bytes/sent'))).to.be.greaterThan(0)
    expect(Number(v('heap/current'))).to.be.greaterThan(1_000_000)
    expect(Number(v('heap/maximum'))).to.be.at.least(Number(v('heap/current')))
    for (const series of ['messages/received', 'messages/sent', 'publish/received', 'publish/sent', 'bytes/received', 'bytes/sent']) {
      for (const window of ['1min', '5min', '15min']) expect(v(`load/${series}/${window}`), `${series}/${window}`).to.match(/^\d+\.\d\d$/)
    }
    expect(Number(v('load/publish/received/1min'))).to.be.greaterThan(0)
    // Tenant beta's figures are not acme's.
    const beta = await connect('w2@beta')
    const betaValues = new Map<string, string>()
    beta.on('message', (topic, payload) => betaValues.set(topic, payload.toString()))
    await beta.subscribeAsync('$SYS/broker/#')
    await until(() => betaValues.has('$SYS/broker/clients/connected'), "beta's retained $SYS values")
    expect(betaValues.get('$SYS/broker/clients/connected')).to.equal('1')
    expect(betaValues.get('$SYS/broker/publish/messages/received')).to.equal('0')
    // Only beta's own $SYS topics are retained in beta: none of acme's messages.
    const betaSys = (broker.backend as TenantBackend).listRetained('beta', '$SYS/#', 1000)
    expect(betaValues.get('$SYS/broker/retained messages/count')).to.equal(String((Array.isArray(betaSys) ? betaSys : await betaSys).length))
    expect(Number(v('retained messages/count')) - Number(betaValues.get('$SYS/broker/retained messages/count'))).to.equal(1)
  })
})
