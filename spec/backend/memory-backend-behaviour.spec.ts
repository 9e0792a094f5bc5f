import { expect } from 'chai'
import { FakeClient, message, sub } from '../../lib/backend/conformance/index.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { MemoryBackendOptions } from '../../lib/backend/memory-backend.js'
import { SessionTakenOverError } from '../../lib/packet/errors.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { Credentials } from '../../lib/backend/backend.js'
import type { Message, Session, StoredSubscription } from '../../lib/session/session.js'

interface Conn {
  client: FakeClient
  session: Session
  present: boolean
}

function connect(backend: MemoryBackend, clientId: string, clean = true, expiry = clean ? 0 : 0xffffffff): Conn {
  const client = new FakeClient(clientId)
  const { session, present } = backend.setup(client, clean, expiry)
  backend.queueOffline(client)
  return { client, session, present }
}

function leave(backend: MemoryBackend, c: Conn): void {
  c.client.connected = false
  backend.terminate(c.client)
}

describe('MemoryBackend', () => {
  let backend: MemoryBackend
  const make = (options?: MemoryBackendOptions): MemoryBackend => (backend = new MemoryBackend(options))
  afterEach(() => backend?.close())

  describe('synchronous answers', () => {
    it('answers every call without a promise', () => {
      make()
      const client = new FakeClient('a')
      const results: unknown[] = []
      const setup = backend.setup(client, true, 0)
      results.push(setup, backend.queueOffline(client))
      results.push(backend.subscribe(client, [sub('t', 1)]))
      results.push(backend.publish(client, message('t', 'x')))
      results.push(backend.storeRetained(client, message('t', 'x', 0, { retain: true })))
      results.push(backend.queueRetained(client, sub('t')))
      results.push(backend.unsubscribe(client, ['t']))
      results.push(backend.terminate(client))
      for (const r of results) expect(r).not.to.be.instanceOf(Promise)
    })
  })

  describe('authenticate', () => {
    const credentials = { clientId: 'a', username: 'u', password: undefined } as unknown as Credentials

    it('allows everyone by default', () => {
      make()
      expect(backend.authenticate(new FakeClient('a'), credentials)).to.deep.equal({ result: 'allow' })
    })

    it('asks the authenticate option', () => {
      make({ authenticate: (_c, cred) => ({ result: 'deny', reasonCode: ReasonCode.NotAuthorized, reasonString: cred.username }) })
      expect(backend.authenticate(new FakeClient('a'), credentials)).to.deep.equal({
        result: 'deny',
        reasonCode: ReasonCode.NotAuthorized,
        reasonString: 'u'
      })
    })
  })

  describe('delivery without copies', () => {
    it('passes the stored subscription itself when a client has one match (no allocation)', () => {
      make()
      const c = connect(backend, 'a')
      const stored = sub('t/+', 1, { subscriptionIdentifiers: [4] })
      backend.subscribe(c.client, [stored])
      const m = message('t/1', 'x', 1)
      expect(backend.publish(undefined, m)).to.equal(1)
      expect(c.client.deliveries[0]?.subscription).to.equal(stored)
      expect(c.client.deliveries[0]?.message).to.equal(m)
    })

    it('passes one message object to every subscriber', () => {
      make()
      const clients = [connect(backend, 'a'), connect(backend, 'b'), connect(backend, 'c')]
      for (const c of clients) backend.subscribe(c.client, [sub('t')])
      const m = message('t', 'x')
      backend.publish(undefined, m)
      for (const c of clients) expect(c.client.deliveries[0]?.message).to.equal(m)
    })
  })

  describe('No Local [MQTT-3.8.3-3]', () => {
    it("skips the publisher's own No Local subscription and counts only the others", () => {
      make()
      const a = connect(backend, 'a')
      const b = connect(backend, 'b')
      backend.subscribe(a.client, [sub('t', 1, { noLocal: true })])
      backend.subscribe(b.client, [sub('t', 1, { noLocal: true })])
      expect(backend.publish(a.client, message('t', 'x', 1, { origin: 'a' }))).to.equal(1)
      expect(a.client.deliveries).to.have.length(0)
      expect(b.client.deliveries).to.have.length(1)
    })

    it('an overlapping subscription without No Local still delivers, at its own QoS', () => {
      make()
      const a = connect(backend, 'a')
      backend.subscribe(a.client, [sub('t', 2, { noLocal: true }), sub('#', 0)])
      expect(backend.publish(a.client, message('t', 'x', 2, { origin: 'a' }))).to.equal(1)
      expect(a.client.deliveries).to.have.length(1)
      expect(a.client.deliveries[0]?.subscription.qos).to.equal(0)
      expect(a.client.deliveries[0]?.subscription.topicFilter).to.equal('#')
    })
  })

  describe('takeover and fencing', () => {
    it('refuses writes from a connection that lost its session with SessionTakenOverError', () => {
      make()
      const first = connect(backend, 'a', false)
      connect(backend, 'a', false)
      expect(() => backend.subscribe(first.client, [sub('t')])).to.throw(SessionTakenOverError)
      expect(() => backend.unsubscribe(first.client, ['t'])).to.throw(SessionTakenOverError)
      expect(() => backend.queueOffline(first.client)).to.throw(SessionTakenOverError)
    })

    it('ignores terminate from the connection that was taken over', () => {
      make()
      const first = connect(backend, 'a', true)
      const second = connect(backend, 'a', false)
      backend.subscribe(second.client, [sub('t')])
      leave(backend, first)
      expect(backend.publish(undefined, message('t', 'x'))).to.equal(1)
      expect(second.client.deliveries).to.have.length(1)
      expect(backend.stats.takeovers).to.equal(1)
    })

    it('a clean takeover gives a new session object; the old one is left behind', () => {
      make()
      const first = connect(backend, 'a', false)
      backend.subscribe(first.client, [sub('t', 1)])
      const second = connect(backend, 'a', true)
      expect(second.session).to.not.equal(first.session)
      expect(backend.getSession('a')).to.equal(second.session)
      expect(backend.routeCount).to.equal(0)
    })

    it('does not close a previous connection that is already closed', () => {
      make()
      const first = connect(backend, 'a', false)
      first.client.connected = false
      connect(backend, 'a', false)
      expect(first.client.closes).to.have.length(0)
      expect(backend.stats.takeovers).to.equal(0)
    })
  })

  describe('connecting clients', () => {
    it('queues messages of any QoS between setup and queueOffline, delivered in order after the stored ones', () => {
      make()
      const first = connect(backend, 'a', false)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      backend.publish(undefined, message('t', 'stored', 1))
      const client = new FakeClient('a')
      backend.setup(client, false, 0xffffffff)
      backend.publish(undefined, message('t', 'between', 0))
      expect(client.deliveries).to.have.length(0)
      backend.queueOffline(client)
      backend.publish(undefined, message('t', 'live', 0))
      expect(client.payloads()).to.deep.equal(['stored', 'between', 'live'])
    })
  })

  describe('away sessions', () => {
    it('do not keep QoS 0 messages by default', () => {
      make()
      const first = connect(backend, 'a', false)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      expect(backend.publish(undefined, message('t', 'zero', 0))).to.equal(1)
      expect(backend.getSession('a')?.queueLength).to.equal(0)
    })

    it('keep QoS 0 messages with queueQoS0', () => {
      make({ queueQoS0: true })
      const first = connect(backend, 'a', false)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      backend.publish(undefined, message('t', 'zero', 0))
      expect(connect(backend, 'a', false).client.payloads()).to.deep.equal(['zero'])
    })

    it('are queued for when the handle closed before terminate was called', () => {
      make()
      const first = connect(backend, 'a', false)
      backend.subscribe(first.client, [sub('t', 1)])
      first.client.connected = false
      backend.publish(undefined, message('t', 'in-between', 1))
      expect(first.client.late).to.have.length(0)
      backend.terminate(first.client)
      expect(connect(backend, 'a', false).client.payloads()).to.deep.equal(['in-between'])
    })
  })

  describe('session expiry', () => {
    it('removes an away session once its expiry interval has run out', () => {
      let now = 1_000_000
      make({ now: () => now })
      const first = connect(backend, 'a', false, 10)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      now += 10_000
      expect(backend.expireSessions()).to.equal(0)
      expect(backend.sessionCount).to.equal(1)
      now += 1
      expect(backend.expireSessions()).to.equal(1)
      expect(backend.sessionCount).to.equal(0)
      expect(backend.routeCount).to.equal(0)
      expect(backend.stats.sessionsExpired).to.equal(1)
      expect(connect(backend, 'a', false).present).to.equal(false)
    })

    it('setup does not resume an expired session even before the sweep ran', () => {
      let now = 0
      make({ now: () => now })
      const first = connect(backend, 'a', false, 1)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      now = 1_001
      const second = connect(backend, 'a', false, 1)
      expect(second.present).to.equal(false)
      expect(second.session.listSubscriptions()).to.deep.equal([])
    })

    it('an expired away session takes no more messages', () => {
      let now = 0
      make({ now: () => now })
      const first = connect(backend, 'a', false, 1)
      backend.subscribe(first.client, [sub('t', 1)])
      leave(backend, first)
      now = 5_000
      backend.publish(undefined, message('t', 'late', 1, { receivedAt: now }))
      expect(backend.getSession('a')?.queueLength).to.equal(0)
    })

    it('a session that never expires (0xFFFFFFFF) is kept', () => {
      let now = 0
      make({ now: () => now })
      leave(backend, connect(backend, 'a', false, 0xffffffff))
      now = 1e12
      expect(backend.expireSessions()).to.equal(0)
      expect(connect(backend, 'a', false).present).to.equal(true)
    })

    it('sweeps by itself on a timer', async () => {
      let now = 0
      make({ now: () => now, expiryCheckInterval: 5 })
      leave(backend, connect(backend, 'a', false, 1))
      now = 2_000
      const deadline = Date.now() + 1_000
      while (backend.sessionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
      expect(backend.sessionCount).to.equal(0)
    })
  })

  describe('shared groups', () => {
    it('take turns in round-robin order', () => {
      make()
      const members = [connect(backend, 'a'), connect(backend, 'b'), connect(backend, 'c')]
      for (const c of members) backend.subscribe(c.client, [sub('$share/g/t')])
      for (let i = 0; i < 6; i++) backend.publish(undefined, message('t', `m${i}`))
      expect(members.map((c) => c.client.payloads())).to.deep.equal([
        ['m0', 'm3'],
        ['m1', 'm4'],
        ['m2', 'm5']
      ])
    })

    it('count one route per group whatever its size', () => {
      make()
      for (const id of ['a', 'b', 'c']) {
        const c = connect(backend, id)
        backend.subscribe(c.client, [sub('$share/g/t'), sub('$share/h/t')])
      }
      expect(backend.routeCount).to.equal(2)
      expect(backend.publish(undefined, message('t', 'x'))).to.equal(2)
    })

    it('drop a message every live member refused and no one else may keep', () => {
      make()
      const a = connect(backend, 'a')
      a.client.result = 'dropped'
      backend.subscribe(a.client, [sub('$share/g/t', 1)])
      backend.publish(undefined, message('t', 'x', 1))
      expect(a.client.deliveries).to.have.length(1)
      expect(a.session).to.have.property('queueLength', 0)
      expect(backend.stats.deliveryDropped).to.equal(1)
    })
  })

  describe('re-entrant publish', () => {
    it('routes a message published from inside a delivery without disturbing the outer one', () => {
      make()
      const a = connect(backend, 'a')
      const b = connect(backend, 'b')
      const c = connect(backend, 'c')
      for (const x of [a, b, c]) backend.subscribe(x.client, [sub('#', 0)])
      backend.subscribe(a.client, [sub('outer', 1)])
      let inner = true
      const deliver = b.client.deliver.bind(b.client)
      b.client.deliver = (m: Message, s: StoredSubscription, r?: boolean) => {
        if (inner) {
          inner = false
          expect(backend.publish(undefined, message('will', 'inner'))).to.equal(3)
        }
        return deliver(m, s, r)
      }
      expect(backend.publish(undefined, message('outer', 'outer', 1))).to.equal(4)
      for (const x of [a, b, c]) expect(x.client.payloads().sort()).to.deep.equal(['inner', 'outer'])
      expect(a.client.deliveries.find((d) => d.message.topic === 'outer')?.subscription.qos).to.equal(1)
    })
  })

  describe('retained store', () => {
    it('keeps a copy with RETAIN set, without the engine cache, and hands out that same object', () => {
      make()
      // The engine's private encoding cache rides on the message object (not part of `Message`).
      const m: Message = Object.assign({ ...message('r', 'v', 1), retain: true }, { encoded: { cached: true } })
      backend.storeRetained(undefined, m)
      const c = connect(backend, 'a')
      backend.queueRetained(c.client, sub('r', 1))
      backend.queueRetained(c.client, sub('#', 1))
      const [first, second] = c.client.deliveries
      expect(first?.message).to.not.equal(m)
      expect(first?.message.retain).to.equal(true)
      expect(first?.message).to.not.have.property('encoded')
      m.payload.write('z')
      expect(first?.message.payload.toString()).to.equal('v')
      expect(second?.message).to.equal(first?.message)
      expect(backend.retainedCount).to.equal(1)
    })

    it('counts refused messages when full', () => {
      make({ maxRetainedMessages: 1 })
      backend.storeRetained(undefined, message('a', 'x', 0, { retain: true }))
      backend.storeRetained(undefined, message('b', 'x', 0, { retain: true }))
      expect(backend.stats.retainedRefused).to.equal(1)
      expect(backend.retainedCount).to.equal(1)
    })

    it('removes expired messages it comes across', () => {
      make()
      backend.storeRetained(
        undefined,
        message('r', 'x', 0, { retain: true, receivedAt: 0, properties: { messageExpiryInterval: 1 } })
      )
      const c = connect(backend, 'a')
      backend.queueRetained(c.client, sub('#'))
      expect(c.client.deliveries).to.have.length(0)
      expect(backend.retainedCount).to.equal(0)
      expect(backend.stats.retainedExpired).to.equal(1)
    })
  })

  describe('stats', () => {
    it('counts published, delivered, dropped, queued and refused messages', () => {
      make({ maxQueuedMessages: 1 })
      const live = connect(backend, 'live')
      const refusing = connect(backend, 'refusing')
      refusing.client.result = 'dropped'
      const away = connect(backend, 'away', false)
      for (const c of [live, refusing, away]) backend.subscribe(c.client, [sub('t', 1)])
      leave(backend, away)
      backend.publish(undefined, message('t', '1', 1))
      backend.publish(undefined, message('t', '2', 1))
      expect(backend.stats).to.include({
        published: 2,
        delivered: 2,
        deliveryDropped: 2,
        queued: 1,
        queueDropped: 1
      })
    })
  })

  describe('close', () => {
    it('forgets every session, route and retained message', () => {
      make()
      const c = connect(backend, 'a', false)
      backend.subscribe(c.client, [sub('t')])
      backend.storeRetained(undefined, message('r', 'x', 0, { retain: true }))
      backend.close()
      expect(backend.sessionCount).to.equal(0)
      expect(backend.routeCount).to.equal(0)
      expect(backend.retainedCount).to.equal(0)
    })
  })
})
