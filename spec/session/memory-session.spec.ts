import { expect } from 'chai'
import { MemorySession, isMessageExpired } from '../../lib/session/memory-session.js'
import type { SessionQueueStats } from '../../lib/session/memory-session.js'
import type { Message, QueuedMessage } from '../../lib/session/session.js'
import type { QoS } from '../../lib/packet/types.js'

function msg(payload: string, qos: QoS = 1, extra: Partial<Message> = {}): Message {
  return { topic: 't', payload: Buffer.from(payload), qos, retain: false, ...extra }
}

function item(payload: string, qos: QoS = 1, subQoS: QoS = 2, extra: Partial<Message> = {}): QueuedMessage {
  return { message: msg(payload, qos, extra), subscription: { topicFilter: 't', qos: subQoS } }
}

const payloads = (items: QueuedMessage[]): string[] => items.map((i) => i.message.payload.toString())

describe('MemorySession', () => {
  describe('synchronous answers', () => {
    it('never returns a promise', () => {
      const s = new MemorySession('c', 10)
      const results: unknown[] = [
        s.saveOutgoing({ kind: 'pubrel', packetId: 1 }),
        s.getOutgoing(1),
        s.listOutgoing(),
        s.deleteOutgoing(1),
        s.saveIncoming(1),
        s.hasIncoming(1),
        s.deleteIncoming(1),
        s.saveSubscription({ topicFilter: 'a', qos: 0 }),
        s.listSubscriptions(),
        s.deleteSubscription('a'),
        s.saveWill({ topic: 'w', payload: Buffer.alloc(0), qos: 0, retain: false }),
        s.getWill(),
        s.clearWill(),
        s.enqueue(item('x')),
        s.drainQueue(),
        s.reset()
      ]
      for (const r of results) expect(r).not.to.be.instanceOf(Promise)
    })

    it('keeps clientId and expiryInterval', () => {
      const s = new MemorySession('client-1', 120)
      expect(s.clientId).to.equal('client-1')
      expect(s.expiryInterval).to.equal(120)
      s.expiryInterval = 0
      expect(s.expiryInterval).to.equal(0)
    })
  })

  describe('packet identifiers [MQTT-2.2.1-3]', () => {
    it('starts at 1 and counts up', () => {
      const s = new MemorySession('c')
      expect([s.nextPacketId(), s.nextPacketId(), s.nextPacketId()]).to.deep.equal([1, 2, 3])
    })

    it('wraps from 65535 to 1, never 0', () => {
      const s = new MemorySession('c')
      let last = 0
      for (let i = 0; i < 65_535; i++) last = s.nextPacketId()
      expect(last).to.equal(65_535)
      expect(s.nextPacketId()).to.equal(1)
    })

    it('skips ids in the outgoing store', () => {
      const s = new MemorySession('c')
      s.saveOutgoing({ kind: 'pubrel', packetId: 2 })
      s.saveOutgoing({ kind: 'pubrel', packetId: 3 })
      expect(s.nextPacketId()).to.equal(1)
      expect(s.nextPacketId()).to.equal(4)
      s.deleteOutgoing(2)
      for (let i = 5; i <= 65_535; i++) s.nextPacketId()
      // Wrapped: 1 is free again, 2 was released, 3 is still in flight.
      expect(s.nextPacketId()).to.equal(1)
      expect(s.nextPacketId()).to.equal(2)
      expect(s.nextPacketId()).to.equal(4)
    })

    it('returns 0 when all 65535 ids are in flight, and a free id once one is released', () => {
      const s = new MemorySession('c')
      for (let id = 1; id <= 65_535; id++) s.saveOutgoing({ kind: 'pubrel', packetId: id })
      expect(s.nextPacketId()).to.equal(0)
      s.deleteOutgoing(40_000)
      expect(s.nextPacketId()).to.equal(40_000)
    })

    it('restarts at 1 after reset', () => {
      const s = new MemorySession('c')
      s.nextPacketId()
      s.nextPacketId()
      s.reset()
      expect(s.nextPacketId()).to.equal(1)
    })
  })

  describe('outgoing and incoming records', () => {
    it('lists outgoing records oldest first; a replaced record keeps its place', () => {
      const s = new MemorySession('c')
      s.saveOutgoing({ kind: 'publish', packetId: 5, message: msg('a') })
      s.saveOutgoing({ kind: 'publish', packetId: 1, message: msg('b') })
      s.saveOutgoing({ kind: 'publish', packetId: 9, message: msg('c') })
      s.saveOutgoing({ kind: 'pubrel', packetId: 5 })
      expect(s.listOutgoing().map((r) => `${r.packetId}:${r.kind}`)).to.deep.equal(['5:pubrel', '1:publish', '9:publish'])
      expect(s.outgoingCount).to.equal(3)
      s.deleteOutgoing(1)
      expect(s.getOutgoing(1)).to.equal(undefined)
      expect(s.listOutgoing().map((r) => r.packetId)).to.deep.equal([5, 9])
    })

    it('tracks incoming QoS 2 ids', () => {
      const s = new MemorySession('c')
      expect(s.hasIncoming(3)).to.equal(false)
      s.saveIncoming(3)
      expect(s.hasIncoming(3)).to.equal(true)
      s.deleteIncoming(3)
      expect(s.hasIncoming(3)).to.equal(false)
    })

    it('answers empty lists before anything was stored', () => {
      const s = new MemorySession('c')
      expect(s.listOutgoing()).to.deep.equal([])
      expect(s.listSubscriptions()).to.deep.equal([])
      expect(s.drainQueue()).to.deep.equal([])
      expect(s.deleteSubscription('x')).to.equal(false)
      expect(s.queueLength).to.equal(0)
    })
  })

  describe('subscriptions and will', () => {
    it('replaces a subscription with the same filter', () => {
      const s = new MemorySession('c')
      expect(s.saveSubscription({ topicFilter: 'a/#', qos: 0 })).to.equal(false)
      expect(s.saveSubscription({ topicFilter: 'a/#', qos: 2 })).to.equal(true)
      expect(s.listSubscriptions()).to.deep.equal([{ topicFilter: 'a/#', qos: 2 }])
      expect(s.getSubscription('a/#')?.qos).to.equal(2)
      expect(s.deleteSubscription('a/#')).to.equal(true)
      expect(s.getSubscription('a/#')).to.equal(undefined)
    })

    it('stores and clears the will', () => {
      const s = new MemorySession('c')
      const will = { topic: 'w', payload: Buffer.from('bye'), qos: 1 as const, retain: false }
      s.saveWill(will)
      expect(s.getWill()).to.equal(will)
      s.clearWill()
      expect(s.getWill()).to.equal(undefined)
    })
  })

  describe('offline queue', () => {
    it('drains in order and empties the queue', () => {
      const s = new MemorySession('c')
      for (const p of ['a', 'b', 'c']) expect(s.enqueue(item(p))).to.equal(true)
      expect(s.queueLength).to.equal(3)
      expect(payloads(s.drainQueue())).to.deep.equal(['a', 'b', 'c'])
      expect(s.drainQueue()).to.deep.equal([])
      expect(s.stats.queued).to.equal(3)
    })

    it('refuses the new message when full of QoS 1/2 messages, and counts it', () => {
      const s = new MemorySession('c', 0, { maxQueuedMessages: 2 })
      expect(s.enqueue(item('a'))).to.equal(true)
      expect(s.enqueue(item('b', 2))).to.equal(true)
      expect(s.enqueue(item('c'))).to.equal(false)
      expect(s.stats.queueDropped).to.equal(1)
      expect(payloads(s.drainQueue())).to.deep.equal(['a', 'b'])
    })

    it('evicts the oldest QoS 0 message first when full, and counts it', () => {
      const s = new MemorySession('c', 0, { maxQueuedMessages: 3 })
      s.enqueue(item('one'))
      s.enqueue(item('zero-a', 0))
      s.enqueue(item('zero-b', 0))
      expect(s.enqueue(item('new'))).to.equal(true)
      expect(s.stats.queueDropped).to.equal(1)
      expect(payloads(s.drainQueue())).to.deep.equal(['one', 'zero-b', 'new'])
    })

    it('counts the delivered QoS: a QoS 1 message for a QoS 0 subscription is evictable', () => {
      const s = new MemorySession('c', 0, { maxQueuedMessages: 1 })
      s.enqueue(item('downgraded', 1, 0))
      expect(s.enqueue(item('kept', 1, 1))).to.equal(true)
      expect(payloads(s.drainQueue())).to.deep.equal(['kept'])
    })

    it('a bound of 0 queues nothing', () => {
      const s = new MemorySession('c', 0, { maxQueuedMessages: 0 })
      expect(s.enqueue(item('a', 0))).to.equal(false)
      expect(s.queueLength).to.equal(0)
    })

    it('shares counters through the stats option', () => {
      const stats: SessionQueueStats = { queued: 0, queueDropped: 0, queueExpired: 0 }
      const a = new MemorySession('a', 0, { stats })
      const b = new MemorySession('b', 0, { stats })
      a.enqueue(item('x'))
      b.enqueue(item('y'))
      expect(stats.queued).to.equal(2)
      expect(a.stats).to.equal(stats)
    })

    it('does not queue a message whose expiry interval ran out [MQTT-3.3.2-5]', () => {
      let now = 100_000
      const s = new MemorySession('c', 0, { now: () => now })
      const expiring = { properties: { messageExpiryInterval: 10 }, receivedAt: 80_000 }
      expect(s.enqueue(item('old', 1, 1, expiring))).to.equal(false)
      expect(s.stats.queueExpired).to.equal(1)
      now = 85_000
      expect(s.enqueue(item('young', 1, 1, expiring))).to.equal(true)
    })

    it('drops messages that expired while queued when draining', () => {
      let now = 0
      const s = new MemorySession('c', 0, { now: () => now })
      s.enqueue(item('short', 1, 1, { properties: { messageExpiryInterval: 1 }, receivedAt: 0 }))
      s.enqueue(item('forever', 1, 1, { receivedAt: 0 }))
      s.enqueue(item('long', 1, 1, { properties: { messageExpiryInterval: 60 }, receivedAt: 0 }))
      now = 1_000 // exactly at the limit: still valid
      expect(payloads(s.drainQueue())).to.deep.equal(['short', 'forever', 'long'])
      s.enqueue(item('short', 1, 1, { properties: { messageExpiryInterval: 1 }, receivedAt: 0 }))
      s.enqueue(item('forever', 1, 1, { receivedAt: 0 }))
      now = 1_001
      expect(payloads(s.drainQueue())).to.deep.equal(['forever'])
      expect(s.stats.queueExpired).to.equal(1)
    })
  })

  describe('isMessageExpired', () => {
    it('is true only once receivedAt + interval * 1000 < now', () => {
      const m = msg('x', 1, { properties: { messageExpiryInterval: 2 }, receivedAt: 1_000 })
      expect(isMessageExpired(m, 3_000)).to.equal(false)
      expect(isMessageExpired(m, 3_001)).to.equal(true)
    })

    it('never expires a message without an interval or without receivedAt', () => {
      expect(isMessageExpired(msg('x', 1, { receivedAt: 0 }), 1e15)).to.equal(false)
      expect(isMessageExpired(msg('x', 1, { properties: { messageExpiryInterval: 0 } }), 1e15)).to.equal(false)
    })
  })

  describe('reset', () => {
    it('forgets everything but the client id and expiry', () => {
      const s = new MemorySession('c', 30)
      s.saveOutgoing({ kind: 'pubrel', packetId: 1 })
      s.saveIncoming(2)
      s.saveSubscription({ topicFilter: 'a', qos: 1 })
      s.saveWill({ topic: 'w', payload: Buffer.from('x'), qos: 0, retain: false })
      s.enqueue(item('q'))
      s.reset()
      expect(s.listOutgoing()).to.deep.equal([])
      expect(s.hasIncoming(2)).to.equal(false)
      expect(s.listSubscriptions()).to.deep.equal([])
      expect(s.getWill()).to.equal(undefined)
      expect(s.drainQueue()).to.deep.equal([])
      expect(s.clientId).to.equal('c')
      expect(s.expiryInterval).to.equal(30)
    })
  })
})
