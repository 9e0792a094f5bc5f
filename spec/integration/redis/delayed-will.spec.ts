import { expect } from 'chai'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import type { PublishPacket } from '../../../lib/packet/types.js'
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
})
