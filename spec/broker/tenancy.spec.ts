import { expect } from 'chai'
import mqtt from 'mqtt'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { byClientIdPrefix, byListener, byUsernameDomain } from '../../lib/tenancy/index.js'
import type { TenantResolver } from '../../lib/tenancy/index.js'
import { Peer } from '../helpers/flow.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { until } from '../helpers/virtual-clock.js'
import { pingPong } from '../helpers/events.js'

describe('broker – tenants', () => {
  const teardown = useTeardown()

  function tenantBroker(tenantResolver: TenantResolver): { broker: Broker; backend: TenantBackend } {
    const backend = new TenantBackend(() => new MemoryBackend())
    const broker = teardown.add(new Broker({ backend, tenantResolver, logger: silentLogger }), (b) => b.close())
    return { broker, backend }
  }

  it('the same client id in two tenants is two sessions, and messages never cross (user@tenant)', async () => {
    const { broker, backend } = tenantBroker(byUsernameDomain())
    const acme = await connected(broker, { clientId: 'dev', username: 'alice@acme' })
    const beta = await connected(broker, { clientId: 'dev', username: 'alice@beta' })
    await subscribe(acme, [{ topicFilter: 't/#', qos: 0 }])
    await subscribe(beta, [{ topicFilter: 't/#', qos: 0 }])
    // Not a takeover: both stay connected.
    const pub = await connected(broker, { clientId: 'pub', username: 'bob@acme' })
    pub.send(publish('t/1', 'for acme'))
    expect(((await acme.next()) as PublishPacket).payload.toString()).to.equal('for acme')
    await pingPong(beta)
    expect(backend.tenants.sort()).to.deep.equal(['acme', 'beta'])
    // The backend sees the user name without the domain, and the tenant on the handle.
    const clients = broker.connectedClients.filter((c) => c.clientId === 'dev')
    expect(clients.map((c) => c.tenant).sort()).to.deep.equal(['acme', 'beta'])
  })

  it('broker.disconnect() closes the client of the tenant it names, never a namesake in another tenant', async () => {
    const { broker } = tenantBroker(byUsernameDomain())
    const acme = await connected(broker, { clientId: 'dev', username: 'alice@acme', protocolLevel: 5 })
    const beta = await connected(broker, { clientId: 'dev', username: 'alice@beta', protocolLevel: 5 })
    // A bare client id names the default tenant: here nobody.
    expect(broker.disconnect('dev')).to.equal(false)
    expect(broker.disconnect({ clientId: 'dev', tenant: 'gamma' })).to.equal(false)
    expect(broker.disconnect({ clientId: 'dev', tenant: 'beta' }, ReasonCode.AdministrativeAction, 'bye')).to.equal(true)
    expect(await beta.next()).to.deep.include({ type: 'disconnect', reasonCode: ReasonCode.AdministrativeAction })
    await beta.closed
    await pingPong(acme)
    expect(acme.isConnectionClosed).to.equal(false)
    expect(broker.connectedClients.map((c) => `${c.tenant}/${c.clientId}`)).to.deep.equal(['acme/dev'])
  })

  it('retained messages and wills stay in their tenant', async () => {
    const { broker } = tenantBroker(byClientIdPrefix())
    const a = await connected(broker, { clientId: 'acme:pub' })
    a.send(publish('state', 'acme state', 0, undefined, { retain: true }))
    const watcherAcme = await connected(broker, { clientId: 'acme:w' })
    await subscribe(watcherAcme, [{ topicFilter: 'state', qos: 0 }])
    expect(((await watcherAcme.next()) as PublishPacket).payload.toString()).to.equal('acme state')
    const watcherBeta = await connected(broker, { clientId: 'beta:w' })
    await subscribe(watcherBeta, [{ topicFilter: '#', qos: 0 }])
    // A will of a beta client reaches beta only.
    const dying = await connected(broker, {
      clientId: 'beta:dying',
      will: { topic: 'gone', payload: Buffer.from('beta will'), qos: 0, retain: false }
    })
    dying.destroy()
    expect(((await watcherBeta.next()) as PublishPacket).payload.toString()).to.equal('beta will')
    await pingPong(watcherAcme)
  })

  it('refuses a connection the resolver refuses, with its reason code at each level', async () => {
    const { broker } = tenantBroker(byUsernameDomain())
    const v5 = new Peer(broker)
    expect(await v5.connect({ protocolLevel: 5, clientId: 'x', username: 'no-domain' })).to.deep.include({
      type: 'connack',
      reasonCode: ReasonCode.BadUserNameOrPassword
    })
    const v4 = new Peer(broker)
    expect(await v4.connect({ clientId: 'x', username: 'UPPER@Case' })).to.deep.include({
      type: 'connack',
      reasonCode: ConnectReturnCode.BadUserNameOrPassword
    })
    const prefix = tenantBroker(byClientIdPrefix()).broker
    const bad = new Peer(prefix)
    expect(await bad.connect({ clientId: 'no-prefix' })).to.deep.include({
      type: 'connack',
      reasonCode: ConnectReturnCode.IdentifierRejected
    })
  })

  it('resolves by listener: each named TCP listener is a tenant (MQTT.js clients)', async () => {
    const { broker } = tenantBroker(byListener({ 'acme-port': 'acme', 'beta-port': 'beta' }, { unknown: 'refuse' }))
    const acmeAddress = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: 'acme-port' })
    const betaAddress = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0, name: 'beta-port' })
    const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${acmeAddress.port}`, { clientId: 'same', reconnectPeriod: 0 })
    teardown.add(sub, (c) => c.endAsync())
    const other = await mqtt.connectAsync(`mqtt://127.0.0.1:${betaAddress.port}`, { clientId: 'same', reconnectPeriod: 0 })
    teardown.add(other, (c) => c.endAsync())
    const got: string[] = []
    sub.on('message', (_t, payload) => got.push(payload.toString()))
    await sub.subscribeAsync('x', { qos: 1 })
    await other.publishAsync('x', 'from beta', { qos: 1 })
    const pub = await mqtt.connectAsync(`mqtt://127.0.0.1:${acmeAddress.port}`, { clientId: 'pub', reconnectPeriod: 0 })
    teardown.add(pub, (c) => c.endAsync())
    await pub.publishAsync('x', 'from acme', { qos: 1 })
    // 'from beta' was routed before 'from acme' was published: had it reached sub, it would come first.
    await until(() => got.length > 0, 'the message of acme')
    expect(got).to.deep.equal(['from acme'])
    expect(sub.connected && other.connected).to.equal(true) // same client id, no takeover across tenants
  })
})
