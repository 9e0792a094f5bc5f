import { expect } from 'chai'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { PublishPacket } from '../../../lib/packet/types.js'
import { ended } from '../../helpers/events.js'
import { refusedAfterSetup } from '../../helpers/refused-connect.js'
import { connected, subscribe } from '../../helpers/packets.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, sleep, startNode } from './nodes.js'

// The engine hands a delayed will (MQTT 5 Will Delay Interval) to a backend that keeps it, so
// that a reconnection on ANY process cancels it [MQTT-3.1.3-9], and it is published once.
describe('engine + KeyvBackend – delayed wills across processes', function () {
  this.timeout(20_000)
  let server: RedisServer
  let nodes: KeyvBackend[]
  let brokers: Broker[]

  before(async () => {
    server = await startRedisServer()
  })
  after(async () => {
    await server.dispose()
  })
  beforeEach(async () => {
    const root = randomRoot()
    nodes = await Promise.all(['a', 'b'].map((n) => startNode(server.url, root, { nodeId: `node-${n}`, heartbeatInterval: 150 })))
    brokers = nodes.map((backend) => new Broker({ backend, logger: silentLogger, timerInterval: 50 }))
  })
  afterEach(async () => {
    await Promise.all(brokers.map((b) => b.close()))
  })

  const willConnect = {
    protocolLevel: 5 as const,
    clientId: 'dev',
    clean: false,
    properties: { sessionExpiryInterval: 60 },
    will: { topic: 'status/dev', payload: Buffer.from('offline'), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } }
  }

  it('a reconnection on another process within the delay cancels the will', async () => {
    const [a, b] = brokers as [Broker, Broker]
    const watch = await connected(b, { clientId: 'watch', protocolLevel: 5 })
    await subscribe(watch, [{ topicFilter: 'status/#', qos: 1 }])
    const dev = await connected(a, willConnect)
    dev.destroy() // abrupt: the will is due in 1 s
    await dev.waitClosed()
    await sleep(200)
    expect(a.delayedWillCount, 'kept by the backend, not by a timer of process a').to.equal(0)
    await connected(b, { protocolLevel: 5, clientId: 'dev', clean: false, properties: { sessionExpiryInterval: 60 } })
    await sleep(1600)
    expect(await watch.drain(100)).to.deep.equal([])
  })

  it('without a reconnection the will is published once, after the delay', async () => {
    const [a, b] = brokers as [Broker, Broker]
    const watch = await connected(b, { clientId: 'watch', protocolLevel: 5 })
    await subscribe(watch, [{ topicFilter: 'status/#', qos: 0 }])
    const dev = await connected(a, willConnect)
    const closedAt = Date.now()
    dev.destroy()
    const will = (await watch.next(5000)) as PublishPacket
    expect(will.payload.toString()).to.equal('offline')
    expect(Date.now() - closedAt).to.be.at.least(900)
    expect(await watch.drain(600)).to.deep.equal([])
  })

  // MQTT 5.0 3.1.3.2.2: "If a new Network Connection to this Session is made before the Will Delay
  // Interval has passed, the Server MUST NOT send the Will Message [MQTT-3.1.3-9]". A CONNECT the
  // server refuses never becomes a connection to the session: the delayed will kept in Redis stays
  // due, even when the refusal came after the backend's session setup (TAKEOVER) on another process.
  /** `dev` connects to `a` and goes (abruptly): its will is due in 1 s, kept in Redis. Resolves with the time it went. */
  async function delayedWill(a: Broker): Promise<number> {
    const dev = await connected(a, willConnect)
    const done = ended(a, 'dev')
    const closedAt = Date.now()
    dev.destroy()
    await done
    return closedAt
  }

  for (const clean of [false, true]) {
    it(`refused after the session setup on another process (Clean Start ${clean ? 1 : 0}): the will is published once, when due`, async () => {
      const [a, b] = brokers as [Broker, Broker]
      const watch = await connected(b, { clientId: 'watch', protocolLevel: 5 })
      await subscribe(watch, [{ topicFilter: 'status/#', qos: 0 }])
      const closedAt = await delayedWill(a)
      // Its CONNACK (with the broker's properties) does not fit in 5 bytes: closed after the setup.
      await refusedAfterSetup(b, 'dev', clean, { sessionExpiryInterval: 60, maximumPacketSize: 5 })
      const will = (await watch.next(5000)) as PublishPacket
      expect(will.payload.toString()).to.equal('offline')
      expect(Date.now() - closedAt).to.be.at.least(900)
      expect(await watch.drain(600)).to.deep.equal([])
    })
  }

  it('accepted with Clean Start on another process: the session ends, the will is published at once', async () => {
    const [a, b] = brokers as [Broker, Broker]
    const watch = await connected(b, { clientId: 'watch', protocolLevel: 5 })
    await subscribe(watch, [{ topicFilter: 'status/#', qos: 0 }])
    const willConnectDelayed = { ...willConnect, will: { ...willConnect.will, properties: { willDelayInterval: 30 } } }
    const dev = await connected(a, willConnectDelayed)
    const done = ended(a, 'dev')
    dev.destroy()
    await done
    await connected(b, { protocolLevel: 5, clientId: 'dev', clean: true })
    const will = (await watch.next(5000)) as PublishPacket
    expect(will.payload.toString()).to.equal('offline')
    expect(await watch.drain(300)).to.deep.equal([])
  })
})
