import { expect } from 'chai'
import fc from 'fast-check'
import { mergeSubscriptions } from '../../lib/backend/merge.js'
import type { StoredSubscription } from '../../lib/session/session.js'
import type { QoS } from '../../lib/packet/types.js'

describe('mergeSubscriptions', () => {
  it('takes the highest QoS and that subscription filter [MQTT-3.3.4-2]', () => {
    const merged = mergeSubscriptions({ topicFilter: 'a/+', qos: 0 }, { topicFilter: 'a/#', qos: 2 })
    expect(merged.qos).to.equal(2)
    expect(merged.topicFilter).to.equal('a/#')
    expect(mergeSubscriptions({ topicFilter: 'x', qos: 1 }, { topicFilter: 'y', qos: 1 }).topicFilter).to.equal('x')
  })

  it('carries every subscription identifier once [MQTT-3.3.4-3] [MQTT-3.3.4-5]', () => {
    const merged = mergeSubscriptions(
      { topicFilter: 'a', qos: 0, subscriptionIdentifiers: [1, 2] },
      { topicFilter: 'b', qos: 0, subscriptionIdentifiers: [2, 3] }
    )
    expect(merged.subscriptionIdentifiers).to.deep.equal([1, 2, 3])
    const one = mergeSubscriptions({ topicFilter: 'a', qos: 0 }, { topicFilter: 'b', qos: 0, subscriptionIdentifiers: [7] })
    expect(one.subscriptionIdentifiers).to.deep.equal([7])
  })

  it('has no identifiers key when neither has identifiers', () => {
    const merged = mergeSubscriptions({ topicFilter: 'a', qos: 0 }, { topicFilter: 'b', qos: 1, subscriptionIdentifiers: [] })
    expect(merged).to.not.have.property('subscriptionIdentifiers')
  })

  it('keeps No Local only when both have it, Retain As Published when either has it', () => {
    const nl = { topicFilter: 'a', qos: 0 as const, noLocal: true }
    const plain = { topicFilter: 'b', qos: 0 as const }
    expect(mergeSubscriptions(nl, plain).noLocal).to.equal(undefined)
    expect(mergeSubscriptions(nl, { ...nl, topicFilter: 'c' }).noLocal).to.equal(true)
    expect(mergeSubscriptions(plain, { ...plain, retainAsPublished: true }).retainAsPublished).to.equal(true)
    expect(mergeSubscriptions(plain, plain)).to.not.have.property('retainAsPublished')
  })

  it('changes neither argument and shares no identifier array with them', () => {
    const a: StoredSubscription = { topicFilter: 'a', qos: 1, subscriptionIdentifiers: [1] }
    const b: StoredSubscription = { topicFilter: 'b', qos: 0 }
    const merged = mergeSubscriptions(a, b)
    merged.subscriptionIdentifiers?.push(9)
    expect(a).to.deep.equal({ topicFilter: 'a', qos: 1, subscriptionIdentifiers: [1] })
    expect(b).to.deep.equal({ topicFilter: 'b', qos: 0 })
  })

  it('is a max over QoS and a union over identifiers whatever the order (property)', () => {
    const subscription = fc.record({
      topicFilter: fc.constantFrom('a', 'b', 'c'),
      qos: fc.constantFrom<QoS>(0, 1, 2),
      subscriptionIdentifiers: fc.option(fc.uniqueArray(fc.integer({ min: 1, max: 20 }), { maxLength: 3 }), { nil: undefined })
    })
    fc.assert(
      fc.property(fc.array(subscription, { minLength: 1, maxLength: 6 }), (subs) => {
        const clean = subs.map((s) => {
          const copy: StoredSubscription = { topicFilter: s.topicFilter, qos: s.qos }
          if (s.subscriptionIdentifiers !== undefined) copy.subscriptionIdentifiers = s.subscriptionIdentifiers
          return copy
        })
        const merged = clean.slice(1).reduce(mergeSubscriptions, clean[0] as StoredSubscription)
        const reversed = clean.slice(0, -1).reduceRight((acc, s) => mergeSubscriptions(acc, s), clean.at(-1) as StoredSubscription)
        const maxQoS = Math.max(...clean.map((s) => s.qos))
        const ids = new Set(clean.flatMap((s) => s.subscriptionIdentifiers ?? []))
        for (const m of [merged, reversed]) {
          expect(m.qos).to.equal(maxQoS)
          expect(new Set(m.subscriptionIdentifiers ?? [])).to.deep.equal(ids)
          expect((m.subscriptionIdentifiers ?? []).length).to.equal(ids.size)
        }
      })
    )
  })
})
