import { expect } from 'chai'
import fc from 'fast-check'
import { ExpiryWheel } from '../../lib/backend/expiry-wheel.js'

describe('ExpiryWheel', () => {
  it('a sweep visits only buckets that can be due, and keeps what is not due yet', () => {
    const wheel = new ExpiryWheel<string>(100)
    wheel.add('early', 150)
    wheel.add('same-bucket-later', 199)
    wheel.add('far', 10_000)
    const seen: string[] = []
    wheel.sweep(160, (item, at) => {
      seen.push(item)
      return at < 160 ? 'drop' : 'keep'
    })
    expect(seen.sort()).to.deep.equal(['early', 'same-bucket-later'])
    expect(wheel.size).to.equal(2)
    seen.length = 0
    wheel.sweep(250, (item) => {
      seen.push(item)
      return 'drop'
    })
    expect(seen).to.deep.equal(['same-bucket-later'])
    expect(wheel.size).to.equal(1)
  })

  it('expires every item at the first sweep after its deadline, never before (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 500 }),
        (deadlines, steps, granularity) => {
          const wheel = new ExpiryWheel<number>(granularity)
          deadlines.forEach((at, i) => wheel.add(i, at))
          const expiredAt = new Map<number, number>()
          let now = 0
          for (const step of [...steps, 10_000]) {
            now += step
            wheel.sweep(now, (item, at) => {
              if (at >= now) return 'keep'
              expect(expiredAt.has(item)).to.equal(false)
              expiredAt.set(item, now)
              return 'drop'
            })
            // Nothing overdue is left behind.
            deadlines.forEach((at, i) => {
              if (at < now) expect(expiredAt.has(i), `item ${i} due at ${at}, now ${now}`).to.equal(true)
              else expect(expiredAt.has(i)).to.equal(false)
            })
          }
          expect(wheel.size).to.equal(0)
        }
      )
    )
  })
})
