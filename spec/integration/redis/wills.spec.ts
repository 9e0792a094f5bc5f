import assert from 'node:assert/strict'
import { message, sub } from '../../../lib/backend/conformance/index.js'
import type { KeyvBackend } from '../../../lib/backend/keyv/index.js'
import { connect, sleep, subscribe, useRedisNodes, waitFor } from './nodes.js'
import type { TestConnection } from './nodes.js'

/** A crash: the node's command connection is gone, it stops heart-beating (and answers nothing). */
function crash(node: KeyvBackend): void {
  ;(node.keyv.store as { client: { destroy(): void } }).client.destroy()
}

// The wills of sessions a crashed node owned: published once cluster-wide by the reaper.
describe('KeyvBackend – crashed nodes: wills and taken queue entries', function () {
  this.timeout(20_000)
  const redis = useRedisNodes(['node-a', 'node-b', 'node-dead'], { heartbeatInterval: 150 })
  let survivors: KeyvBackend[]
  let dead: KeyvBackend

  beforeEach(() => {
    survivors = redis.nodes.slice(0, 2)
    dead = redis.nodes[2] as KeyvBackend
  })

  async function watcher(node: KeyvBackend, id: string, filter: string): Promise<TestConnection> {
    const w = await connect(node, id)
    await subscribe(w, sub(filter, 1))
    return w
  }

  it('publishes the wills of the dead node once, clean and persistent sessions alike, retained ones stored', async () => {
    const [a, b] = survivors as [KeyvBackend, KeyvBackend]
    const wa = await watcher(a, 'watch-a', 'will/#')
    const wb = await watcher(b, 'watch-b', 'will/#')
    const clean = await connect(dead, 'dev-clean')
    await clean.session.saveWill({ topic: 'will/clean', payload: Buffer.from('gone-clean'), qos: 1, retain: false })
    const durable = await connect(dead, 'dev-durable', { clean: false, expiry: 600 })
    await durable.session.saveWill({ topic: 'will/durable', payload: Buffer.from('gone-durable'), qos: 0, retain: true })
    const quiet = await connect(dead, 'dev-quiet')
    assert.equal(quiet.present, false)
    await sleep(50)
    crash(dead)
    await waitFor(() => wa.client.deliveries.length >= 2 && wb.client.deliveries.length >= 2, 6000, 'the wills')
    await sleep(600) // several more reaper rounds on both survivors: nothing more
    for (const w of [wa, wb]) assert.deepEqual(w.client.payloads().sort(), ['gone-clean', 'gone-durable'])
    assert.equal(a.stats.willsPublished + b.stats.willsPublished, 2)
    // The will publisher is the client (No Local) and the retained will was stored [MQTT-3.1.2-8].
    assert.equal(wa.client.deliveries.find((d) => d.message.topic === 'will/clean')?.message.origin, 'dev-clean')
    const late = await connect(b, 'late')
    await b.queueRetained(late.client, sub('will/#', 0))
    assert.deepEqual(late.client.payloads(), ['gone-durable'])
  })

  it('publishes a delayed will when due, once; a reconnect within the delay cancels it [MQTT-3.1.3-9]', async () => {
    const [a, b] = survivors as [KeyvBackend, KeyvBackend]
    const w = await watcher(a, 'watch', 'delayed/#')
    const late = await connect(dead, 'late-will', { clean: false, expiry: 600 })
    await late.session.saveWill({ topic: 'delayed/1', payload: Buffer.from('after-delay'), qos: 1, retain: false, properties: { willDelayInterval: 1 } })
    const back = await connect(dead, 'comes-back', { clean: false, expiry: 600 })
    await back.session.saveWill({ topic: 'delayed/2', payload: Buffer.from('cancelled'), qos: 1, retain: false, properties: { willDelayInterval: 2 } })
    const short = await connect(dead, 'short-session', { clean: false, expiry: 1 })
    // The session ends before the will delay: published when the session ends (the earlier).
    await short.session.saveWill({ topic: 'delayed/3', payload: Buffer.from('session-end'), qos: 1, retain: false, properties: { willDelayInterval: 60 } })
    crash(dead)
    await waitFor(() => a.stats.nodesReaped + b.stats.nodesReaped === 1, 6000, 'the reaper')
    const reapedAt = Date.now()
    // Within the delay: nothing yet, and 'comes-back' connects again.
    await sleep(300)
    assert.deepEqual(w.client.payloads(), [])
    await connect(b, 'comes-back', { clean: false, expiry: 600 })
    await waitFor(() => w.client.deliveries.length >= 2, 4000, 'the due wills')
    assert.ok(Date.now() - reapedAt >= 700, 'not before the delay')
    await sleep(2500) // past the cancelled will's delay
    assert.deepEqual(w.client.payloads().sort(), ['after-delay', 'session-end'])
    assert.equal(a.stats.willsPublished + b.stats.willsPublished, 2)
  })

  it('loses no queue entry a crashed node had taken but not yet saved as an outgoing record', async () => {
    const [a, b] = survivors as [KeyvBackend, KeyvBackend]
    const first = await connect(a, 'q', { clean: false, expiry: 600 })
    await subscribe(first, sub('q/#', 1))
    first.client.connected = false
    await a.terminate(first.client)
    for (let i = 0; i < 5; i++) await b.publish(undefined, message('q/1', `m${i}`, 1))
    // On the doomed node the client takes m0..m4, the engine saves records for m0 and m1 only.
    const victim = await connect(dead, 'q', { clean: false, expiry: 600, drain: false })
    let saved = 0
    const save = victim.client.session
    victim.client.session = undefined
    const deliver = victim.client.deliver.bind(victim.client)
    victim.client.deliver = (m, s, r) => {
      const result = deliver(m, s, r)
      if (saved < 2 && save !== undefined) {
        saved++
        void Promise.resolve(save.saveOutgoing({ kind: 'publish', packetId: saved, message: m, subscription: s })).catch(() => undefined)
      }
      return result
    }
    await dead.queueOffline(victim.client)
    assert.deepEqual(victim.client.payloads(), ['m0', 'm1', 'm2', 'm3', 'm4'])
    await sleep(50)
    crash(dead)
    // The client reconnects on a survivor: m0, m1 are inflight records (resent by the engine), m2..m4 queued again.
    const back = await connect(b, 'q', { clean: false, expiry: 600, drain: false })
    assert.deepEqual(
      (await back.session.listOutgoing()).map((r) => (r.kind === 'publish' ? r.message.payload.toString() : '')),
      ['m0', 'm1']
    )
    await b.queueOffline(back.client)
    await waitFor(() => back.client.deliveries.length >= 3, 3000, 'the taken entries')
    await sleep(100)
    assert.deepEqual(back.client.payloads(), ['m2', 'm3', 'm4'])
  })

  it("keeps the engine's delayed wills in Redis: once when due even if the node died; a reconnect elsewhere cancels [MQTT-3.1.3-9]", async () => {
    const [a, b] = survivors as [KeyvBackend, KeyvBackend]
    const w = await watcher(a, 'watch', 'dw/#')
    const will = (payload: string): { topic: string; payload: Buffer; qos: 1; retain: false } => ({ topic: `dw/${payload}`, payload: Buffer.from(payload), qos: 1, retain: false })
    // Two connections of the doomed node end with a delayed will; one client comes back on b.
    const gone = await connect(dead, 'gone', { clean: false, expiry: 600 })
    const back = await connect(dead, 'back', { clean: false, expiry: 600 })
    const due = Date.now() + 700
    for (const c of [gone, back]) {
      await dead.delayWill(c.client, will(c.client.clientId), due)
      c.client.connected = false
      await dead.terminate(c.client)
    }
    crash(dead)
    await connect(b, 'back', { clean: false, expiry: 600 })
    await waitFor(() => w.client.deliveries.length >= 1, 4000, 'the due will')
    assert.ok(Date.now() >= due, 'not before it is due')
    await sleep(800)
    assert.deepEqual(w.client.payloads(), ['gone'])
    // A connection that lost its session schedules nothing.
    const first = await connect(a, 'twice', { clean: false, expiry: 600 })
    await connect(b, 'twice', { clean: false, expiry: 600 })
    await a.delayWill(first.client, will('twice'), Date.now())
    await sleep(500)
    assert.deepEqual(w.client.payloads(), ['gone'])
  })
})
