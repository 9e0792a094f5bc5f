import assert from 'node:assert/strict'
import { expect } from 'chai'
import { createClient } from '@redis/client'
import { NodeKeys, TenantKeys, sessionId } from '../../../lib/backend/keyv/keys.js'
import { TAKEOVER } from '../../../lib/backend/keyv/scripts.js'
import type { ClientHandle } from '../../../lib/backend/backend.js'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import { SessionTakenOverError } from '../../../lib/packet/errors.js'
import { ReasonCode } from '../../../lib/packet/reason-codes.js'
import { Peer } from '../../helpers/flow.js'
import { connect, useRedisNodes } from './nodes.js'

/**
 * A connection taken over by another process gets DISCONNECT 0x8E whatever the timing
 * [MQTT-3.1.4-3]: also when its own node meets the fence (a refused write of its CONNECT's last
 * step, queueOffline) before it has read the kick of the node that took the session over. Seen
 * once under load as 0x83 (the failed step's "implementation specific error").
 */
describe('KeyvBackend – a takeover whose kick arrives after the old connection met the fence', function () {
  this.timeout(20_000)
  const redis = useRedisNodes(['node-a', 'node-b'], { heartbeatInterval: 200 })
  let raw: ReturnType<typeof createClient>

  beforeEach(async () => {
    raw = createClient({ url: redis.server.url })
    await raw.connect()
  })
  afterEach(async () => {
    await raw.quit()
  })

  /**
   * node-b takes session `clientId` over exactly as its setup does (the TAKEOVER script), but its
   * kick to node-a stays in transit: written to a stream node-a does not read (yet). Returns a
   * function that delivers the kick to node-a's inbox.
   */
  async function takeOverWithKickHeld(clientId: string): Promise<() => Promise<void>> {
    const nodeKeys = new NodeKeys(redis.root)
    const keys = new TenantKeys(redis.root, 'default')
    const held = `${redis.root}:_:held:`
    const reply = (await raw.eval(TAKEOVER, {
      keys: [keys.session(clientId)],
      arguments: [
        'node-b', '0', String(Date.now()), '1', '600', keys.prefix, clientId, nodeKeys.routeLog, keys.tenant,
        held, nodeKeys.sessionsPrefix, sessionId(keys.tenant, clientId), nodeKeys.nodes, nodeKeys.reapClaim('node-b'),
        nodeKeys.oldWillsPrefix
      ]
    })) as unknown[]
    assert.equal(String(reply[0]), 'node-a')
    return async () => {
      const [kick] = await raw.xRange(held + 'node-a', '-', '+')
      assert.equal(kick?.message.type, 'kick')
      await raw.xAdd(nodeKeys.inbox('node-a'), '*', kick.message)
    }
  }

  it('closes the old connection with 0x8E (not a failed step) when its queueOffline is fenced before the kick is read', async () => {
    const [a] = redis.nodes
    const nodeKeys = new NodeKeys(redis.root)
    // The CONNECT on node-a got its session and CONNACK; its last step (queueOffline) is still to run.
    const first = await connect(a!, 'raced', { clean: false, expiry: 600, drain: false })
    const deliverKick = await takeOverWithKickHeld('raced')
    // The old connection's queueOffline meets the fence (its TAKE): closed as taken over.
    await a!.queueOffline(first.client)
    assert.deepEqual(
      first.client.closes.map((c) => c.reasonCode),
      [ReasonCode.SessionTakenOver]
    )
    // The kick arrives late: acknowledged to node-b, the connection is not closed twice.
    await deliverKick()
    const deadline = Date.now() + 5000
    const acknowledged = async (): Promise<boolean> =>
      (await raw.xRange(nodeKeys.inbox('node-b'), '-', '+')).some((e) => e.message.type === 'kicked' && e.message.c === 'raced')
    while (!(await acknowledged())) {
      assert.ok(Date.now() < deadline, 'the late kick is acknowledged to node-b')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.equal(first.client.closes.length, 1)
    assert.equal(a!.stats.takeovers, 1)
  })

  it('closes the old connection with 0x8E before any fenced write of its session rejects (a delivery\'s outgoing record, an incoming QoS 2 id) while the kick is in transit', async () => {
    const [a] = redis.nodes
    const first = await connect(a!, 'writer', { clean: false, expiry: 600 })
    const deliverKick = await takeOverWithKickHeld('writer')
    let closedFirst: boolean | undefined
    const write = Promise.resolve(
      first.session.saveOutgoing({ kind: 'publish', packetId: 1, message: { topic: 't', payload: Buffer.from('m'), qos: 1, retain: false }, subscription: { topicFilter: 't', qos: 1 } })
    )
    await write.catch((error: unknown) => {
      closedFirst = first.client.closes.length === 1
      assert.ok(error instanceof SessionTakenOverError)
    })
    assert.equal(closedFirst, true, 'closed before the write rejected (the engine would close with 0x83 otherwise)')
    assert.deepEqual(
      first.client.closes.map((c) => c.reasonCode),
      [ReasonCode.SessionTakenOver]
    )
    await assert.rejects(Promise.resolve(first.session.saveIncoming(7)), SessionTakenOverError)
    assert.equal(first.client.closes.length, 1)
    await deliverKick()
  })

  it('the engine: the MQTT 5 client gets DISCONNECT 0x8E when the takeover lands between its CONNACK and the CONNECT\'s last step', async () => {
    const [a] = redis.nodes
    // node-a's backend, with its queueOffline held until the takeover happened (a wrapper, no hook in the code).
    let reached!: () => void
    const atLastStep = new Promise<void>((resolve) => (reached = resolve))
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const held = new Proxy(a!, {
      get(target, prop) {
        if (prop === 'queueOffline') {
          return async (client: ClientHandle): Promise<void> => {
            reached()
            await gate
            await target.queueOffline(client)
          }
        }
        const value: unknown = Reflect.get(target, prop, target)
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
      }
    })
    const broker = new Broker({ backend: held, logger: silentLogger })
    try {
      const peer = new Peer(broker)
      const ack = peer.connect({ clientId: 'raced', protocolLevel: 5, clean: false, properties: { sessionExpiryInterval: 600 } })
      await atLastStep
      expect(await ack).to.include({ type: 'connack', reasonCode: 0 })
      const deliverKick = await takeOverWithKickHeld('raced')
      open()
      expect(await peer.next(5000)).to.include({ type: 'disconnect', reasonCode: ReasonCode.SessionTakenOver })
      await peer.waitClosed(5000)
      await deliverKick()
    } finally {
      await broker.close()
    }
  })
})
