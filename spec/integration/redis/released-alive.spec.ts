import { expect } from 'chai'
import { message } from '../../../lib/backend/conformance/index.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import type { PublishPacket } from '../../../lib/packet/types.js'
import { ended, pingPong } from '../../helpers/events.js'
import { connected, subscribe } from '../../helpers/packets.js'
import { startRedisServer } from '../../helpers/redis-server.js'
import type { RedisServer } from '../../helpers/redis-server.js'
import { randomRoot, startNode, waitFor } from './nodes.js'
import { createClient } from '@redis/client'
import { NodeKeys, TenantKeys, sessionId } from '../../../lib/backend/keyv/keys.js'
import { TAKEOVER } from '../../../lib/backend/keyv/scripts.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'

/**
 * A node that was only paused (silent for 3 heartbeats, reaped meanwhile) and then resumes: the
 * reaper already published the wills of its connections (ORPHAN took them), so the connections
 * it closes when it finds it was released publish none again — each will once.
 */
/** The device of these specs: a persistent session on `broker` with a will on status/dev. */
function connectDev(broker: Broker): ReturnType<typeof connected> {
  return connected(broker, {
    clientId: 'dev',
    protocolLevel: 5,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
    keepalive: 0,
    will: { topic: 'status/dev', payload: Buffer.from('offline'), qos: 1, retain: false }
  })
}

describe('engine + KeyvBackend – a node released while alive publishes no will twice', function () {
  this.timeout(20_000)
  let server: RedisServer
  let nodes: KeyvBackend[] = []
  let brokers: Broker[] = []

  before(async () => {
    server = await startRedisServer()
  })
  after(async () => {
    await server.dispose()
  })
  afterEach(async () => {
    await Promise.all(brokers.map((b) => b.close()))
    await Promise.all(nodes.map((n) => n.close()))
  })

  it('the will of a connection of the paused node goes out once: by the reaper, not again when the node closes the connection', async () => {
    const root = randomRoot()
    const survivor = await startNode(server.url, root, { nodeId: 'node-a', heartbeatInterval: 100 })
    // Silent for 3 s after its start-up beat: reaped by node-a after 300 ms, then it beats again.
    const paused = await startNode(server.url, root, { nodeId: 'node-paused', heartbeatInterval: 3000 })
    nodes = [survivor, paused]
    brokers = nodes.map((backend) => new Broker({ backend, logger: silentLogger, timerInterval: 50 }))
    const [a, p] = brokers as [Broker, Broker]
    const watch = await connected(a, { clientId: 'watch', protocolLevel: 5 })
    await subscribe(watch, [{ topicFilter: 'status/#', qos: 1 }])
    const dev = await connectDev(p)
    const devEnded = ended(p, 'dev', undefined, 10_000)
    const first = (await watch.next(5000)) as PublishPacket
    expect(first.payload.toString()).to.equal('offline')
    expect(survivor.stats.nodesReaped).to.equal(1)
    // The paused node resumes: at its next beat it finds it was released and closes the connection.
    await waitFor(() => paused.stats.nodeReleased === 1, 8000, 'the paused node to find it was released')
    await dev.waitClosed(5000)
    await devEnded // its teardown is over (a will would have been published by now)
    // A message the resumed node publishes after that teardown: the next thing the watcher gets.
    await paused.publish(undefined, message('status/sentinel', 'after', 1))
    const next = (await watch.next(5000)) as PublishPacket
    expect(next.topic, 'no second will before the sentinel').to.equal('status/sentinel')
  })
  it('a kick the released node reads before its heartbeat closes the connection without a second will (0x00): the reaper published the copy TAKEOVER kept', async () => {
    const root = randomRoot()
    const paused = await startNode(server.url, root, { nodeId: 'node-paused', heartbeatInterval: 5000 })
    const raw = createClient({ url: server.url })
    await raw.connect()
    try {
      const nodeKeys = new NodeKeys(root)
      const keys = new TenantKeys(root, 'default')
      // node-paused looks alive to the others until the test says otherwise (as its heartbeats would).
      await raw.zAdd(nodeKeys.nodes, { score: Date.now() + 60_000, value: 'node-paused' })
      const survivor = await startNode(server.url, root, { nodeId: 'node-a', heartbeatInterval: 100 })
      nodes = [survivor, paused]
      brokers = nodes.map((backend) => new Broker({ backend, logger: silentLogger, timerInterval: 50 }))
      const [a, p] = brokers as [Broker, Broker]
      const watch = await connected(a, { clientId: 'watch', protocolLevel: 5 })
      await subscribe(watch, [{ topicFilter: 'status/#', qos: 1 }])
      const dev = await connectDev(p)
      await pingPong(dev) // its CONNECT is complete (queueOffline done)
      const devEnded = ended(p, 'dev', undefined, 10_000)
      // While node-paused is frozen, the client comes back on node-a: TAKEOVER, whose kick node-paused
      // will only read when it resumes (held in transit here).
      const held = `${root}:_:held:`
      await raw.eval(TAKEOVER, {
        keys: [keys.session('dev')],
        arguments: [
          'node-a', '0', String(Date.now()), '1', '600', keys.prefix, 'dev', nodeKeys.routeLog, keys.tenant,
          held, nodeKeys.sessionsPrefix, sessionId(keys.tenant, 'dev'), nodeKeys.nodes, nodeKeys.reapClaim('node-a'),
          nodeKeys.oldWillsPrefix
        ]
      })
      // Silent for long: node-a reaps it and publishes the old connection's will (the copy TAKEOVER kept).
      await raw.zAdd(nodeKeys.nodes, { score: 1, value: 'node-paused' })
      const first = (await watch.next(5000)) as PublishPacket
      expect(first.payload.toString()).to.equal('offline')
      // node-paused resumes and reads the kick before its next heartbeat.
      const [kick] = await raw.xRange(held + 'node-paused', '-', '+')
      expect(kick?.message.type).to.equal('kick')
      await raw.xAdd(nodeKeys.inbox('node-paused'), '*', kick!.message)
      expect(await dev.next(5000)).to.deep.include({ type: 'disconnect', reasonCode: ReasonCode.NormalDisconnection })
      await devEnded
      expect(paused.stats.nodeReleased, 'the heartbeat has not noticed yet').to.equal(0)
      await paused.publish(undefined, message('status/sentinel', 'after', 1))
      const next = (await watch.next(5000)) as PublishPacket
      expect(next.topic, 'no second will before the sentinel').to.equal('status/sentinel')
    } finally {
      await raw.quit()
    }
  })
})
