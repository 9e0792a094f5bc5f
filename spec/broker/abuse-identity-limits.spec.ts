import { expect } from 'chai'
import mqtt from 'mqtt'
import type { Broker } from '../../lib/broker/broker.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import { TenantBackend } from '../../lib/backend/tenant-backend.js'
import { encode } from '../../lib/packet/index.js'
import { ConnectReturnCode, ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ConnectPacket, Packet } from '../../lib/packet/types.js'
import { byClientIdPrefix } from '../../lib/tenancy/resolvers.js'
import { makeBroker } from '../helpers/broker.js'
import type { TestBrokerOptions } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

const open = openTcpPeer

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('broker – connection limits that need the CONNECT (per tenant, flapping bans)', function () {
  this.timeout(20_000)
  const teardown = useTeardown()

  async function start(options: TestBrokerOptions): Promise<{ broker: Broker; port: number }> {
    const broker = makeBroker(teardown, options)
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return { broker, port }
  }

  async function connack(port: number, fields: Partial<ConnectPacket>): Promise<{ peer: Peer; connack: Packet }> {
    const peer = await open(teardown, port)
    return { peer, connack: await peer.connect({ protocolLevel: 5, ...fields }) }
  }

  describe('maxConnectionsPerTenant', () => {
    const tenants = (): TestBrokerOptions => ({
      backend: new TenantBackend(() => new MemoryBackend()),
      tenantResolver: byClientIdPrefix(),
      maxConnectionsPerTenant: 2
    })

    it('refuses the third connection of a tenant with 0x97 (3.1.1: 3), others and freed room are admitted, counted in $SYS', async () => {
      const { broker, port } = await start({ ...tenants(), tenantResolver: byClientIdPrefix({ required: false }), sysInterval: 3600 })
      const first = await connack(port, { clientId: 'acme:a' })
      expect(first.connack).to.deep.include({ reasonCode: 0 })
      expect((await connack(port, { clientId: 'acme:b' })).connack).to.deep.include({ reasonCode: 0 })
      const refused = await connack(port, { clientId: 'acme:c' })
      expect(refused.connack).to.deep.include({ type: 'connack', reasonCode: ReasonCode.QuotaExceeded })
      await refused.peer.waitClosed()
      // 3.1.1: Server unavailable.
      const v4 = await open(teardown, port)
      expect(await v4.connect({ clientId: 'acme:d' })).to.deep.include({ reasonCode: ConnectReturnCode.ServerUnavailable })
      // Another tenant is not affected.
      expect((await connack(port, { clientId: 'beta:a' })).connack).to.deep.include({ reasonCode: 0 })
      expect(broker.stats.tenantConnectionLimitHits).to.equal(2)
      // Room again once one of acme's leaves.
      first.peer.destroy()
      await waitFor(() => broker.stats.connectionsOpen <= 3)
      expect((await connack(port, { clientId: 'acme:e' })).connack).to.deep.include({ reasonCode: 0 })
      // $SYS of the default tenant.
      await broker.publishSys()
      const watcher = await connack(port, { clientId: 'watch' }) // the default tenant
      watcher.peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: '$SYS/broker/limits/tenant-connections', qos: 0 }] })
      expect((await watcher.peer.next()).type).to.equal('suback')
      expect(await watcher.peer.next()).to.deep.include({ type: 'publish', topic: '$SYS/broker/limits/tenant-connections', payload: Buffer.from('2') })
    })

    it('a refused CONNECT (any step) frees its tenant slot, and a takeover keeps the count right', async () => {
      const { broker, port } = await start(tenants())
      // The same client id twice: the second takes the first over; both counted only while open.
      expect((await connack(port, { clientId: 'acme:x' })).connack).to.deep.include({ reasonCode: 0 })
      expect((await connack(port, { clientId: 'acme:x' })).connack).to.deep.include({ reasonCode: 0 })
      await waitFor(() => broker.stats.connectionsOpen === 1)
      expect((await connack(port, { clientId: 'acme:y' })).connack).to.deep.include({ reasonCode: 0 })
      expect((await connack(port, { clientId: 'acme:z' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
      await waitFor(() => broker.stats.connectionsOpen === 2)
      expect((await connack(port, { clientId: 'acme:w' })).connack).to.deep.include({ reasonCode: ReasonCode.QuotaExceeded })
    })

    it('MQTT.js is told 0x97 by its tenant limit', async () => {
      const { port } = await start(tenants())
      await connack(port, { clientId: 'acme:1' })
      await connack(port, { clientId: 'acme:2' })
      const client = mqtt.connect({ host: '127.0.0.1', port, protocolVersion: 5, clientId: 'acme:3', reconnectPeriod: 0 })
      teardown.add(client, (c) => c.end(true))
      const error = await new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve))
      expect(error.code).to.equal(ReasonCode.QuotaExceeded)
    })
  })

  describe('flapping detection (flappingMaxCount, flappingWindow, flappingBanTime)', () => {
    it('is off by default: a client id may connect and leave as often as it likes', async () => {
      const { broker, port } = await start({})
      for (let i = 0; i < 20; i++) {
        const { peer, connack: ack } = await connack(port, { clientId: 'flappy' })
        expect(ack).to.deep.include({ reasonCode: 0 })
        peer.destroy()
      }
      expect(broker.stats.flappingBans).to.equal(0)
    })

    it('bans a client id that connects more than N times in the window (0x8A; 3.1.1: 5), not others, until the ban ends', async () => {
      const { broker, port } = await start({ flappingMaxCount: 3, flappingWindow: 60_000, flappingBanTime: 1500, timerInterval: 100 })
      for (let i = 0; i < 3; i++) {
        const { peer, connack: ack } = await connack(port, { clientId: 'flappy' })
        expect(ack).to.deep.include({ reasonCode: 0 })
        peer.send({ type: 'disconnect', reasonCode: 0 })
        await peer.waitClosed()
      }
      const banned = await connack(port, { clientId: 'flappy' })
      expect(banned.connack).to.deep.include({ type: 'connack', reasonCode: ReasonCode.Banned })
      await banned.peer.waitClosed()
      const v4 = await open(teardown, port)
      expect(await v4.connect({ clientId: 'flappy' })).to.deep.include({ reasonCode: ConnectReturnCode.NotAuthorized })
      // Another client id is not banned.
      expect((await connack(port, { clientId: 'steady' })).connack).to.deep.include({ reasonCode: 0 })
      expect(broker.stats.flappingBans).to.equal(1)
      expect(broker.stats.bannedRefusals).to.equal(2)
      // By MQTT 5 code: 0x8A, and the 3.1.1 refusal as 0x87 (return code 5).
      expect(broker.stats.connectsRefused.get(ReasonCode.Banned)).to.equal(1)
      // The ban ends by itself.
      await new Promise((resolve) => setTimeout(resolve, 1600))
      expect((await connack(port, { clientId: 'flappy' })).connack).to.deep.include({ reasonCode: 0 })
    })

    it('counts only authenticated connections: nobody gets another client id banned without its credentials', async () => {
      const { broker, port } = await start({
        memory: {
          authenticate: (_client, credentials) =>
            credentials.password?.toString() === 'secret' ? { result: 'allow' } : { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }
        },
        flappingMaxCount: 2
      })
      for (let i = 0; i < 5; i++) {
        const { connack: ack } = await connack(port, { clientId: 'victim', username: 'u', password: Buffer.from('guess') })
        expect(ack).to.deep.include({ reasonCode: ReasonCode.BadUserNameOrPassword })
      }
      expect((await connack(port, { clientId: 'victim', username: 'u', password: Buffer.from('secret') })).connack).to.deep.include({ reasonCode: 0 })
      expect(broker.stats.flappingBans).to.equal(0)
    })

    it('counts per tenant: the same client id in two tenants flaps apart', async () => {
      const { broker, port } = await start({
        backend: new TenantBackend(() => new MemoryBackend()),
        tenantResolver: byClientIdPrefix(),
        flappingMaxCount: 1
      })
      const a = await connack(port, { clientId: 'acme:dev' })
      a.peer.destroy()
      expect((await connack(port, { clientId: 'beta:dev' })).connack).to.deep.include({ reasonCode: 0 })
      expect((await connack(port, { clientId: 'acme:dev' })).connack).to.deep.include({ reasonCode: ReasonCode.Banned })
      expect(broker.stats.flappingBans).to.equal(1)
    })
  })

  describe('a connection refused when accepted (connection limits) does not wait for its whole CONNECT', () => {
    it('is closed within about a second when it sends nothing, well before connectTimeout', async () => {
      const { broker, port } = await start({ maxConnections: 1, connectTimeout: 10_000, timerInterval: 200 })
      expect((await connack(port, { clientId: 'in' })).connack).to.deep.include({ reasonCode: 0 })
      const silent = await open(teardown, port)
      const started = Date.now()
      await silent.waitClosed(5000)
      expect(Date.now() - started).to.be.below(5000)
      expect(broker.stats.connectionLimitHits).to.equal(1)
    })

    for (const level of [5, 4] as const) {
      it(`is answered from the first bytes of its CONNECT (level ${level}), its body never awaited`, async () => {
        const { port } = await start({ maxConnections: 1 })
        expect((await connack(port, { clientId: 'in' })).connack).to.deep.include({ reasonCode: 0 })
        const peer = (await open(teardown, port)).speak(level)
        // A CONNECT of some 20 KB of which only the first 40 bytes are sent.
        const whole = encode({ type: 'connect', protocolLevel: level, clean: true, keepalive: 0, clientId: 'x'.repeat(20_000) }, level)
        peer.send(whole.subarray(0, 40))
        const code = level === 5 ? ReasonCode.QuotaExceeded : ConnectReturnCode.ServerUnavailable
        expect(await peer.next(3000)).to.deep.include({ type: 'connack', reasonCode: code })
        await peer.waitClosed(3000)
      })
    }
  })
})
