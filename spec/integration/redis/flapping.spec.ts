/**
 * Flapping bans across brokers on one Redis: the connections of a client id are counted, and its
 * ban kept, in Redis (per tenant and client id, with a TTL), so a flapping client cannot escape
 * its ban by connecting to another broker process (`--workers N`, several hosts).
 */
import { expect } from 'chai'
import { withAccessControl } from '../../../lib/auth/access-backend.js'
import type { Backend } from '../../../lib/backend/backend.js'
import { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { TenantBackend } from '../../../lib/backend/tenant-backend.js'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import type { BrokerOptions } from '../../../lib/broker/options.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'
import type { ConnectPacket, Packet } from '../../../lib/packet/types.js'
import { byClientIdPrefix } from '../../../lib/tenancy/resolvers.js'
import { Peer } from '../../helpers/flow.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { randomRoot, startNode } from './nodes.js'

describe('flapping detection – banned on every broker of one Redis', function () {
  this.timeout(30_000)
  const server = useRedisServer()
  let brokers: Broker[] = []

  afterEach(async () => {
    await Promise.all(brokers.map((b) => b.close()))
    brokers = []
  })

  async function twoBrokers(options: Partial<BrokerOptions>, wrap = (backend: Backend): Backend => backend): Promise<[Broker, Broker]> {
    const root = randomRoot()
    const nodes = await Promise.all(['a', 'b'].map((n) => startNode(server.url, root, { nodeId: `node-${n}`, heartbeatInterval: 150 })))
    brokers = nodes.map((node) => new Broker({ backend: wrap(node), logger: silentLogger, flappingWindow: 60_000, ...options }))
    return brokers as [Broker, Broker]
  }

  /** A CONNECT to `broker`; the CONNACK. Accepted connections leave at once (DISCONNECT). */
  async function connectOnce(broker: Broker, fields: Partial<ConnectPacket> = {}): Promise<Packet> {
    const peer = new Peer(broker)
    const ack = await peer.connect({ protocolLevel: 5, clientId: 'flappy', ...fields })
    if (ack.type === 'connack' && ack.reasonCode === 0) peer.send({ type: 'disconnect', reasonCode: 0 })
    await peer.waitClosed()
    return ack
  }

  it('a client id banned on one broker is refused by the other (0x8A; 3.1.1: 5), other client ids are not', async () => {
    const [a, b] = await twoBrokers({ flappingMaxCount: 2, flappingBanTime: 60_000 })
    expect(await connectOnce(a)).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(a)).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(a)).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Banned })
    expect(a.stats.flappingBans).to.equal(1)
    // The other broker refuses it too (its first CONNECT there: after authentication, from Redis).
    expect(await connectOnce(b)).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Banned })
    // ... and the next one before authentication (the ban is remembered there now); 3.1.1: 5.
    expect(await connectOnce(b, { protocolLevel: 4 })).to.deep.include({ type: 'connack', reasonCode: 5 })
    expect(b.stats.bannedRefusals).to.equal(2)
    expect(b.stats.flappingBans).to.equal(0)
    expect(await connectOnce(b, { clientId: 'steady' })).to.deep.include({ reasonCode: 0 })
  })

  it('counts the connections made to every broker: alternating between them does not escape the ban', async () => {
    const [a, b] = await twoBrokers({ flappingMaxCount: 2, flappingBanTime: 60_000 })
    expect(await connectOnce(a)).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(b)).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(a)).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Banned })
    expect(await connectOnce(b)).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Banned })
  })

  it('the ban ends with its time on every broker', async () => {
    const [a, b] = await twoBrokers({ flappingMaxCount: 1, flappingBanTime: 1500 })
    expect(await connectOnce(a)).to.deep.include({ reasonCode: 0 })
    const bannedAt = Date.now()
    expect(await connectOnce(b)).to.deep.include({ reasonCode: ReasonCode.Banned })
    expect(await connectOnce(a)).to.deep.include({ reasonCode: ReasonCode.Banned })
    let ack = await connectOnce(b)
    while (ack.type === 'connack' && ack.reasonCode === ReasonCode.Banned && Date.now() - bannedAt < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      ack = await connectOnce(b)
    }
    expect(ack).to.deep.include({ reasonCode: 0 })
    expect(Date.now() - bannedAt).to.be.at.least(1000)
  })

  it('with access control and tenants: the ban is per tenant and client id, through the access-control wrapper', async () => {
    const [a, b] = await twoBrokers({ flappingMaxCount: 1, flappingBanTime: 60_000, tenantResolver: byClientIdPrefix() }, (node) =>
      withAccessControl(node, { allowAnonymous: true, bruteForce: false })
    )
    expect(await connectOnce(a, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(a, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: ReasonCode.Banned })
    expect(await connectOnce(b, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: ReasonCode.Banned })
    // The same client id in another tenant is another client.
    expect(await connectOnce(b, { clientId: 'other:flappy' })).to.deep.include({ reasonCode: 0 })
  })

  it('through a shared TenantBackend (a KeyvBackend per tenant): banned on every broker', async () => {
    const root = randomRoot()
    const tenants = (): TenantBackend =>
      new TenantBackend({
        factory: (tenant) => new KeyvBackend({ url: server.url, prefix: root, namespace: tenant ?? 'default', heartbeatInterval: 150, log: () => undefined }),
        shared: true
      })
    const options = { logger: silentLogger, flappingMaxCount: 1, flappingWindow: 60_000, flappingBanTime: 60_000, tenantResolver: byClientIdPrefix() }
    brokers = [new Broker({ backend: tenants(), ...options }), new Broker({ backend: tenants(), ...options })]
    const [a, b] = brokers as [Broker, Broker]
    expect(await connectOnce(a, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: 0 })
    expect(await connectOnce(a, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: ReasonCode.Banned })
    expect(await connectOnce(b, { clientId: 'acme:flappy' })).to.deep.include({ reasonCode: ReasonCode.Banned })
  })
})
