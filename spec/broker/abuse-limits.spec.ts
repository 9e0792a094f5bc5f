import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, Packet } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import type { TestBrokerOptions } from '../helpers/broker.js'
import { ended } from '../helpers/events.js'
import { VirtualClock } from '../helpers/virtual-clock.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

const open = openTcpPeer

describe('broker – limits, each answered with its reason code and counted', function () {
  this.timeout(15000)
  const teardown = useTeardown()

  async function start(options: TestBrokerOptions): Promise<{ broker: Broker; port: number }> {
    const broker = makeBroker(teardown, options)
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return { broker, port }
  }

  async function client(port: number, fields: Partial<ConnectPacket> = {}): Promise<{ peer: Peer; connack: Packet }> {
    const peer = await open(teardown, port)
    const connack = await peer.connect({ protocolLevel: 5, ...fields })
    return { peer, connack }
  }

  it('maxTopicLevels and maxTopicLength: SUBACK 0x8F for a filter, DISCONNECT 0x90 for a PUBLISH', async () => {
    const { broker, port } = await start({ maxTopicLevels: 4, maxTopicLength: 20 })
    const { peer } = await client(port, { clientId: 'topics' })
    peer.send({
      type: 'subscribe',
      packetId: 1,
      subscriptions: [
        { topicFilter: 'a/b/c/d', qos: 0 },
        { topicFilter: 'a/b/c/d/e', qos: 0 },
        { topicFilter: 'x'.repeat(21), qos: 0 }
      ]
    })
    expect(await peer.next()).to.deep.include({ type: 'suback', reasonCodes: [0, ReasonCode.TopicFilterInvalid, ReasonCode.TopicFilterInvalid] })
    peer.send(publish('a/b/c/d', 'ok'))
    expect(await peer.next()).to.deep.include({ type: 'publish', topic: 'a/b/c/d' })
    peer.send(publish('a/b/c/d/e', 'too deep'))
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.TopicNameInvalid })
    expect(broker.stats.topicLimitHits).to.equal(3)
    // 3.1.1: the SUBACK failure code.
    const v4 = await open(teardown, port)
    await v4.connect({ clientId: 'topics4' })
    v4.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '+/+/+/+/+', qos: 1 }] })
    expect(await v4.next()).to.deep.include({ reasonCodes: [0x80] })
  })

  it('maxSubscriptionsPerClient: new filters beyond it get 0x97, replacing one is free', async () => {
    const { broker, port } = await start({ maxSubscriptionsPerClient: 2 })
    const { peer } = await client(port, { clientId: 'subs' })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: ['a', 'b', 'c'].map((topicFilter) => ({ topicFilter, qos: 0 as const })) })
    expect(await peer.next()).to.deep.include({ reasonCodes: [0, 0, ReasonCode.QuotaExceeded] })
    peer.send({ type: 'subscribe', packetId: 2, subscriptions: [{ topicFilter: 'a', qos: 1 }] })
    expect(await peer.next()).to.deep.include({ reasonCodes: [1] })
    peer.send({ type: 'unsubscribe', packetId: 3, topicFilters: ['b'] })
    expect((await peer.next()).type).to.equal('unsuback')
    peer.send({ type: 'subscribe', packetId: 4, subscriptions: [{ topicFilter: 'c', qos: 0 }] })
    expect(await peer.next()).to.deep.include({ reasonCodes: [0] })
    expect(broker.stats.subscriptionLimitHits).to.equal(1)
  })

  it('maxConnections: CONNACK 0x97 (3.1.1: 3) beyond it, room again once one leaves', async () => {
    const { broker, port } = await start({ maxConnections: 2 })
    const first = await client(port, { clientId: 'c1' })
    await client(port, { clientId: 'c2' })
    expect((await client(port, { clientId: 'c3' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    const v4 = await open(teardown, port)
    expect(await v4.connect({ clientId: 'c4' })).to.deep.include({ reasonCode: ConnectReturnCode.ServerUnavailable })
    expect(broker.stats.connectionLimitHits).to.equal(2)
    first.peer.destroy()
    await waitFor(() => broker.stats.connectionsOpen <= 1)
    expect((await client(port, { clientId: 'c5' })).connack).to.deep.include({ reasonCode: 0 })
  })

  it('maxConnectionsPerListener counts each listener apart', async () => {
    const { broker, port } = await start({ maxConnectionsPerListener: 1 })
    const { port: other } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    expect((await client(port, { clientId: 'l1' })).connack).to.deep.include({ reasonCode: 0 })
    expect((await client(port, { clientId: 'l2' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    expect((await client(other, { clientId: 'l3' })).connack).to.deep.include({ reasonCode: 0 })
  })

  it('maxConnectionsPerAddress: a second connection from 127.0.0.1 is refused with 0x97', async () => {
    const { broker, port } = await start({ maxConnectionsPerAddress: 1 })
    expect((await client(port, { clientId: 'a1' })).connack).to.deep.include({ reasonCode: 0 })
    expect((await client(port, { clientId: 'a2' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    expect(broker.stats.connectionLimitHits).to.equal(1)
  })

  it('maxConnectRatePerAddress: beyond the burst, CONNACK 0x9F', async () => {
    const clock = new VirtualClock()
    const { broker, port } = await start({ maxConnectRatePerAddress: 2, clock })
    const codes: number[] = []
    for (let i = 0; i < 4; i++) {
      const { connack } = await client(port, { clientId: `r${i}` })
      codes.push((connack as { reasonCode: number }).reasonCode)
    }
    // No time passes between them: exactly the burst is accepted.
    expect(codes).to.deep.equal([0, 0, ReasonCode.ConnectionRateExceeded, ReasonCode.ConnectionRateExceeded])
    expect(broker.stats.connectRateHits).to.equal(2)
    // Half a second refills one token (2 per second), not two.
    await clock.advance(500)
    expect((await client(port, { clientId: 'r4' })).connack).to.deep.include({ reasonCode: 0 })
    expect((await client(port, { clientId: 'r5' })).connack).to.deep.include({ reasonCode: ReasonCode.ConnectionRateExceeded })
  })

  it('maxUserProperties: a PUBLISH with more closes with 0x97, a CONNECT with more gets CONNACK 0x97', async () => {
    const { broker, port } = await start({ maxUserProperties: 2 })
    const userProperties: [string, string][] = [
      ['a', '1'],
      ['b', '2'],
      ['c', '3']
    ]
    const { connack } = await client(port, { clientId: 'up1', properties: { userProperties } })
    expect(connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    const { peer } = await client(port, { clientId: 'up2', properties: { userProperties: userProperties.slice(0, 2) } })
    peer.send(publish('t', 'x', 0, undefined, { properties: { userProperties } }))
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.QuotaExceeded })
    expect(broker.stats.userPropertyLimitHits).to.equal(2)
  })

  it('publishes the limit counters under $SYS (default tenant)', async () => {
    const { broker, port } = await start({ maxConnections: 1, sysInterval: 3600 })
    const { peer } = await client(port, { clientId: 'watcher' })
    expect((await client(port, { clientId: 'refused' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    await broker.publishSys()
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$SYS/broker/limits/connections', qos: 0 }, { topicFilter: '$SYS/broker/load/#', qos: 0 }] })
    expect((await peer.next()).type).to.equal('suback')
    const values = new Map<string, string>()
    for (let i = 0; i < 2; i++) {
      const got = await peer.next()
      if (got.type === 'publish') values.set(got.topic, Buffer.from(got.payload).toString())
    }
    expect(Object.fromEntries(values)).to.deep.equal({ '$SYS/broker/limits/connections': '1', '$SYS/broker/load/overloaded': '0' })
  })

  it('persistentSessionExpiry: a 3.1.1 persistent session that does not come back in time ends', async () => {
    const clock = new VirtualClock()
    const { broker, port } = await start({ persistentSessionExpiry: 1, clock })
    const first = await open(teardown, port)
    expect(await first.connect({ clientId: 'p', clean: false })).to.deep.include({ reasonCode: 0, sessionPresent: false })
    let done = ended(broker, 'p')
    first.destroy()
    await done
    await clock.advance(900)
    const again = await open(teardown, port)
    expect(await again.connect({ clientId: 'p', clean: false })).to.deep.include({ sessionPresent: true })
    done = ended(broker, 'p')
    again.destroy()
    await done
    await clock.advance(1100)
    const late = await open(teardown, port)
    expect(await late.connect({ clientId: 'p', clean: false })).to.deep.include({ sessionPresent: false })
  })
})

async function waitFor(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
