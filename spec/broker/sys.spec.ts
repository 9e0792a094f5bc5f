import { expect } from 'chai'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { Broker } from '../../lib/broker/broker.js'
import { createLogger, silentLogger } from '../../lib/broker/logger.js'
import { resolveOptions } from '../../lib/broker/options.js'
import { MqttError } from '../../lib/packet/errors.js'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Packet, PublishPacket } from '../../lib/packet/types.js'
import { byUsernameDomain } from '../../lib/tenancy/index.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { connected, publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { beforePong, pingPong } from '../helpers/events.js'
import { VirtualClock } from '../helpers/virtual-clock.js'

/** topic → payload of the $SYS PUBLISH packets among `packets`. */
function sysValues(packets: Packet[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const p of packets) if (p.type === 'publish' && p.topic.startsWith('$SYS/')) out[p.topic] = p.payload.toString()
  return out
}

describe('broker – $SYS topics', () => {
  const teardown = useTeardown()

  function tenantBroker(sysInterval = 3600): Broker {
    const backend = new TenantBackend(() => new MemoryBackend())
    return teardown.add(new Broker({ backend, tenantResolver: byUsernameDomain(), logger: silentLogger, sysInterval }), (b) => b.close())
  }

  it("publishes each tenant's own figures under the same topics, retained, and nothing of another tenant", async () => {
    const broker = tenantBroker()
    const acmeWatch = await connected(broker, { clientId: 'w', username: 'ops@acme' })
    await subscribe(acmeWatch, [{ topicFilter: '$SYS/broker/#', qos: 0 }])
    const betaWatch = await connected(broker, { clientId: 'w', username: 'ops@beta' })
    await subscribe(betaWatch, [{ topicFilter: '$SYS/broker/#', qos: 0 }])
    const acmePub = await connected(broker, { clientId: 'p', username: 'dev@acme' })
    for (let i = 0; i < 3; i++) acmePub.send(publish('x', `m${i}`))
    await pingPong(acmePub)
    await broker.publishSys()
    const acme = sysValues(await beforePong(acmeWatch))
    const beta = sysValues(await beforePong(betaWatch))
    expect(acme).to.include({ '$SYS/broker/clients/connected': '2', '$SYS/broker/messages/received': '3', '$SYS/broker/messages/sent': '0' })
    expect(beta).to.include({ '$SYS/broker/clients/connected': '1', '$SYS/broker/messages/received': '0' })
    expect(acme['$SYS/broker/version']).to.match(/^mqtt-broker-framework \d+\.\d+\.\d+/)
    expect(acme['$SYS/broker/uptime']).to.match(/^\d+ seconds$/)
    // Retained: a later subscriber of the tenant gets the values at once.
    const late = await connected(broker, { clientId: 'late', username: 'x@beta' })
    await subscribe(late, [{ topicFilter: '$SYS/broker/clients/connected', qos: 0 }])
    const retained = (await late.next()) as PublishPacket
    expect(retained).to.deep.include({ topic: '$SYS/broker/clients/connected', retain: true })
    expect(retained.payload.toString()).to.equal('1')
    // Published again only when a value changed: the version is not sent twice.
    await broker.publishSys()
    const again = sysValues(await beforePong(acmeWatch))
    expect(again).to.not.have.property('$SYS/broker/version')
    // Every $SYS message the watcher got counts as sent to the tenant.
    expect(again).to.include({ '$SYS/broker/messages/sent': String(Object.keys(acme).length) })
  })

  it('publishes on its own every sysInterval seconds', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { sysInterval: 10, clock })
    const watch = await connected(broker, { clientId: 'w' })
    await subscribe(watch, [{ topicFilter: '$SYS/broker/#', qos: 0 }])
    await clock.advance(9_999)
    await pingPong(watch, 'nothing before 10 s')
    await clock.advance(1)
    const first = sysValues(await beforePong(watch))
    expect(first).to.include({ '$SYS/broker/uptime': '10 seconds', '$SYS/broker/clients/connected': '1' })
    await clock.advance(10_000)
    // Again 10 s later, only what changed: the uptime, not the version.
    const second = sysValues(await beforePong(watch))
    expect(second).to.include({ '$SYS/broker/uptime': '20 seconds' })
    expect(second).to.not.have.property('$SYS/broker/version')
    const version = await connected(broker, { clientId: 'v' })
    await subscribe(version, [{ topicFilter: '$SYS/broker/version', qos: 0 }])
    const p = (await version.next()) as PublishPacket
    expect(p.topic).to.equal('$SYS/broker/version')
  })

  it('publishes nothing with sysInterval 0, and under sysTopicPrefix when given', async () => {
    const off = makeBroker(teardown, { sysInterval: 0 })
    const watch = await connected(off, { clientId: 'w' })
    await subscribe(watch, [{ topicFilter: '$SYS/#', qos: 0 }])
    await off.publishSys()
    await pingPong(watch)
    const node = makeBroker(teardown, { sysTopicPrefix: '$SYS/brokers/n1' })
    const w2 = await connected(node, { clientId: 'w' })
    await subscribe(w2, [{ topicFilter: '$SYS/brokers/n1/clients/connected', qos: 0 }])
    await node.publishSys()
    expect(((await w2.next()) as PublishPacket).payload.toString()).to.equal('1')
  })

  it('refuses client publishes under $SYS/: 0x87 at MQTT 5, acknowledged and dropped at 3.1.1; never routed or retained', async () => {
    const broker = makeBroker(teardown)
    const watch = await connected(broker, { clientId: 'w' })
    await subscribe(watch, [{ topicFilter: '$SYS/#', qos: 0 }])
    const v5 = await connected(broker, { clientId: 'v5', protocolLevel: 5 })
    v5.send(publish('$SYS/broker/uptime', 'forever', 1, 1, { retain: true }))
    expect(await v5.next()).to.deep.include({ type: 'puback', packetId: 1, reasonCode: ReasonCode.NotAuthorized })
    const v4 = await connected(broker, { clientId: 'v4' })
    v4.send(publish('$SYS/fake', 'x', 1, 7, { retain: true }))
    expect(await v4.next()).to.deep.equal({ type: 'puback', packetId: 7 })
    v4.send(publish('$SYS/fake', 'y', 2, 8))
    expect(await v4.next()).to.deep.equal({ type: 'pubrec', packetId: 8 })
    await pingPong(watch, 'no $SYS message routed')
    const late = await connected(broker, { clientId: 'late' })
    await subscribe(late, [{ topicFilter: '$SYS/#', qos: 0 }])
    await pingPong(late, 'no $SYS message retained')
  })

  it('refuses a will topic under $SYS/ with CONNACK Not authorized (0x87 / return code 5)', async () => {
    const broker = makeBroker(teardown)
    const will = { topic: '$SYS/broker/clients/connected', payload: Buffer.from('0'), qos: 0 as const, retain: true }
    const v5 = new Peer(broker)
    expect(await v5.connect({ clientId: 'a', protocolLevel: 5, will })).to.deep.include({ type: 'connack', reasonCode: ReasonCode.NotAuthorized })
    const v4 = new Peer(broker)
    expect(await v4.connect({ clientId: 'b', will })).to.deep.include({ type: 'connack', reasonCode: ConnectReturnCode.NotAuthorized })
  })

  it('logs a failed publication once per call as a warning, but not while the backend is away (0x88)', async () => {
    let failure: Error = new MqttError(ReasonCode.ServerUnavailable, 'away')
    class Failing extends MemoryBackend {
      override storeRetained(): void {
        throw failure
      }
    }
    const lines: string[] = []
    const broker = makeBroker(teardown, { backend: new Failing(), logger: createLogger('warn', (line) => lines.push(line)) })
    await broker.publishSys()
    expect(lines).to.deep.equal([])
    failure = new Error('disk full')
    await broker.publishSys()
    expect(lines).to.have.length(1)
    expect(lines[0]).to.match(/WARN \$SYS publish failed.*disk full/)
  })

  it('checks sysInterval and sysTopicPrefix', () => {
    for (const sysInterval of [-1, 0.001, 86_401, Number.NaN]) {
      expect(() => resolveOptions({ backend: new MemoryBackend(), sysInterval })).to.throw(RangeError, /sysInterval/)
    }
    for (const sysTopicPrefix of ['broker', '$SYS', '$SYS/', '$SYS/+/x', '$SYS/a/']) {
      expect(() => resolveOptions({ backend: new MemoryBackend(), sysTopicPrefix })).to.throw(RangeError, /sysTopicPrefix/)
    }
    expect(resolveOptions({ backend: new MemoryBackend() })).to.include({ sysInterval: 10_000, sysTopicPrefix: '$SYS/broker' })
  })
})
