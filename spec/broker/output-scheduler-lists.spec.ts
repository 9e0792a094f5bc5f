import { expect } from 'chai'
import { OutputScheduler } from '../../lib/broker/output-scheduler.js'
import type { FlushTarget } from '../../lib/broker/output-scheduler.js'

/** A connection that records its flushes in `log` and runs `onFlush` during its flush. */
function target(name: string, log: string[], onFlush?: () => void): FlushTarget {
  return {
    dirty: false,
    closed: false,
    flush() {
      log.push(name)
      onFlush?.()
    },
    internalError(error: unknown) {
      log.push(`${name} failed: ${String(error)}`)
    },
    congested: () => false,
    holdPublisher: () => false,
    waitFor() {},
    stopWaiting() {}
  }
}

describe('OutputScheduler – its lists of connections to flush (kept from flush to flush)', () => {
  it('flushes each marked connection once, in the order marked, and then none until marked again', () => {
    const scheduler = new OutputScheduler()
    const log: string[] = []
    const a = target('a', log)
    const b = target('b', log)
    const c = target('c', log)
    scheduler.depth++
    for (const t of [b, a, c]) scheduler.markDirty(t)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['b', 'a', 'c'])
    expect([a, b, c].map((t) => t.dirty)).to.deep.equal([false, false, false])
    scheduler.flushDirty(undefined)
    expect(log).to.have.length(3)
    for (let round = 0; round < 3; round++) {
      scheduler.depth++
      scheduler.markDirty(c)
      scheduler.markDirty(a)
      scheduler.depth--
      scheduler.flushDirty(undefined)
    }
    expect(log).to.deep.equal(['b', 'a', 'c', 'c', 'a', 'c', 'a', 'c', 'a'])
  })

  it('a connection marked during another one\'s flush goes out with the next flush, and a nested flush takes only it', () => {
    const scheduler = new OutputScheduler()
    const log: string[] = []
    const late = target('late', log)
    let nested = false
    const first = target('first', log, () => {
      scheduler.depth++
      scheduler.markDirty(late)
      scheduler.depth--
      if (nested) scheduler.flushDirty(undefined)
    })
    const second = target('second', log)
    scheduler.depth++
    scheduler.markDirty(first)
    scheduler.markDirty(second)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['first', 'second'])
    expect(late.dirty).to.equal(true)
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['first', 'second', 'late'])

    // Nested: the inner flush takes what was marked since the outer one began; the outer goes on.
    nested = true
    log.length = 0
    scheduler.depth++
    scheduler.markDirty(first)
    scheduler.markDirty(second)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['first', 'late', 'second'])
    scheduler.flushDirty(undefined)
    expect(log).to.have.length(3)
    // And the lists still work after the nesting.
    scheduler.depth++
    scheduler.markDirty(second)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['first', 'late', 'second', 'second'])
  })

  it('a flush that throws in one connection closes that one and flushes the rest', () => {
    const scheduler = new OutputScheduler()
    const log: string[] = []
    const bad = target('bad', log, () => {
      throw new Error('boom')
    })
    const good = target('good', log)
    scheduler.depth++
    scheduler.markDirty(bad)
    scheduler.markDirty(good)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['bad', 'bad failed: Error: boom', 'good'])
    scheduler.depth++
    scheduler.markDirty(good)
    scheduler.depth--
    scheduler.flushDirty(undefined)
    expect(log).to.deep.equal(['bad', 'bad failed: Error: boom', 'good', 'good'])
  })
})
