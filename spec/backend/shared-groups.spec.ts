import { expect } from 'chai'
import { SharedGroup } from '../../lib/backend/shared-groups.js'
import type { MemberRouter } from '../../lib/backend/shared-groups.js'
import { SessionEntry } from '../../lib/backend/memory-routes.js'
import { MemorySession } from '../../lib/session/memory-session.js'
import type { DeliveryResult } from '../../lib/backend/backend.js'
import type { Message } from '../../lib/session/session.js'

const entry = (id: string): SessionEntry => new SessionEntry(new MemorySession(id))
const msg: Message = { topic: 't', payload: Buffer.from('x'), qos: 1, retain: false }

/** A router where each member is live (with a fixed answer) or away (queue accepts or not). */
function router(live: Map<SessionEntry, DeliveryResult>, queues: Set<SessionEntry>) {
  const log: string[] = []
  const r: MemberRouter = {
    deliverLive(e) {
      const result = live.get(e)
      if (result !== undefined) log.push(`deliver ${e.session.clientId} ${result}`)
      return result
    },
    enqueue(e) {
      if (live.has(e) || !queues.has(e)) return false
      log.push(`queue ${e.session.clientId}`)
      return true
    }
  }
  return { r, log }
}

describe('SharedGroup', () => {
  it('adds members once and replaces their subscription', () => {
    const g = new SharedGroup('g', 't')
    const a = entry('a')
    g.add(a, { topicFilter: '$share/g/t', qos: 0 })
    g.add(a, { topicFilter: '$share/g/t', qos: 2 })
    expect(g.size).to.equal(1)
    expect(g.subscriptions[0]?.qos).to.equal(2)
  })

  it('rotates over live members', () => {
    const g = new SharedGroup('g', 't')
    const [a, b] = [entry('a'), entry('b')]
    g.add(a, { topicFilter: '$share/g/t', qos: 1 })
    g.add(b, { topicFilter: '$share/g/t', qos: 1 })
    const { r, log } = router(
      new Map([
        [a, 'sent'],
        [b, 'queued']
      ]),
      new Set()
    )
    for (let i = 0; i < 3; i++) expect(g.route(msg, r)).to.equal(true)
    expect(log).to.deep.equal(['deliver a sent', 'deliver b queued', 'deliver a sent'])
  })

  it('offers the message to the next live member after a drop, then queues for an away one', () => {
    const g = new SharedGroup('g', 't')
    const [a, b, c] = [entry('a'), entry('b'), entry('c')]
    for (const e of [a, b, c]) g.add(e, { topicFilter: '$share/g/t', qos: 1 })
    const { r, log } = router(
      new Map([
        [a, 'dropped'],
        [b, 'dropped']
      ]),
      new Set([c])
    )
    expect(g.route(msg, r)).to.equal(true)
    expect(log).to.deep.equal(['deliver a dropped', 'deliver b dropped', 'queue c'])
  })

  it('answers false when nobody takes the message', () => {
    const g = new SharedGroup('g', 't')
    const a = entry('a')
    g.add(a, { topicFilter: '$share/g/t', qos: 0 })
    expect(g.route(msg, router(new Map(), new Set()).r)).to.equal(false)
    expect(new SharedGroup('empty', 't').route(msg, router(new Map(), new Set()).r)).to.equal(false)
  })

  it('keeps the rotation fair when a member leaves', () => {
    const g = new SharedGroup('g', 't')
    const [a, b, c] = [entry('a'), entry('b'), entry('c')]
    for (const e of [a, b, c]) g.add(e, { topicFilter: '$share/g/t', qos: 1 })
    const live = new Map<SessionEntry, DeliveryResult>([
      [a, 'sent'],
      [b, 'sent'],
      [c, 'sent']
    ])
    const { r, log } = router(live, new Set())
    g.route(msg, r) // a
    g.route(msg, r) // b; next is c
    expect(g.remove(a)).to.equal(true)
    expect(g.remove(a)).to.equal(false)
    g.route(msg, r) // still c
    g.route(msg, r) // then b
    expect(log).to.deep.equal(['deliver a sent', 'deliver b sent', 'deliver c sent', 'deliver b sent'])
  })
})
