import { expect } from 'chai'
import { RetainedStore } from '../../lib/backend/retained-store.js'
import { MemorySession } from '../../lib/session/memory-session.js'
import type { Message } from '../../lib/session/session.js'

function message(topic: string, size: number, qos: 0 | 1 = 1): Message {
  return { topic, payload: Buffer.alloc(size, 1), qos, retain: false }
}

describe('memory backend – queues and retained messages bounded in bytes', () => {
  it('an offline queue holds at most maxQueuedBytes: QoS 0 evicted first, then new messages refused', () => {
    const stats = { queued: 0, queueDropped: 0, queueExpired: 0 }
    const session = new MemorySession('q', 3600, { maxQueuedMessages: 1000, maxQueuedBytes: 10_000, stats })
    const subscription = { topicFilter: 't', qos: 1 as const }
    expect(session.enqueue({ message: message('t', 3000, 0), subscription: { topicFilter: 't', qos: 0 } })).to.equal(true)
    for (let i = 0; i < 2; i++) expect(session.enqueue({ message: message('t', 3000), subscription })).to.equal(true)
    // The fourth does not fit: the QoS 0 one makes room.
    expect(session.enqueue({ message: message('t', 3000), subscription })).to.equal(true)
    expect(session.enqueue({ message: message('t', 3000), subscription })).to.equal(false)
    expect(stats.queueDropped).to.equal(2)
    expect(session.drainQueue()).to.have.length(3)
    // Drained: room again.
    expect(session.enqueue({ message: message('t', 9000), subscription })).to.equal(true)
  })

  it('the retained store holds at most maxRetainedBytes; replacing and deleting keep the count right', () => {
    const stats = { retainedRefused: 0, retainedExpired: 0 }
    const store = new RetainedStore(100, stats, Date.now, 10_000)
    store.store(message('a', 4000))
    store.store(message('b', 4000))
    store.store(message('c', 4000))
    expect(stats.retainedRefused).to.equal(1)
    expect(store.size).to.equal(2)
    store.store(message('a', 1000)) // replacing frees bytes
    store.store(message('c', 4000))
    expect(store.size).to.equal(3)
    expect(store.bytes).to.equal(9003)
    store.store(message('b', 0)) // an empty payload deletes
    expect(store.bytes).to.equal(5002)
    expect(store.size).to.equal(2)
  })
})
