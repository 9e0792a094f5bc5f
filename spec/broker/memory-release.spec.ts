import { expect } from 'chai'
import { getHeapSpaceStatistics } from 'node:v8'
import { silentLogger } from '../../lib/broker/logger.js'
import type { LogFields, Logger } from '../../lib/broker/logger.js'
import { MemoryRelease, QUIET_UTILIZATION, YOUNG_WORTH_RELEASING } from '../../lib/broker/memory-release.js'
import { makeBroker } from '../helpers/broker.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'
import { useTeardown } from '../helpers/teardown.js'
import { until } from '../helpers/virtual-clock.js'

/** A release over scripted figures: the counter, the loop's utilisation and the young generation. */
function scripted(threshold: number): { release: MemoryRelease; counter: Counters; busy: { value: number }; young: { bytes: number }; collected: () => number } {
  const counter = new Counters()
  const busy = { value: 0 }
  const young = { bytes: 32 * 1024 * 1024 }
  let collections = 0
  const release = new MemoryRelease({
    threshold,
    counter,
    log: silentLogger,
    collect: async () => { collections++ },
    utilization: () => busy.value,
    youngBytes: () => young.bytes
  })
  return { release, counter, busy, young, collected: () => collections }
}

/** The broker's connection counters, as a burst of connections moves them. */
class Counters {
  connectionsAccepted = 0
  connectionsOpen = 0
  /** `n` connections accepted and held open. */
  open(n: number): void {
    this.connectionsAccepted += n
    this.connectionsOpen += n
  }

  close(n: number): void {
    this.connectionsOpen -= n
  }
}

/** Once the collection's promise settled (the release runs one collection at a time). */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Committed bytes of this process's young generation. */
function youngGeneration(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.physical_space_size ?? 0
}

describe('broker – memory given back after a burst of connections', function () {
  this.timeout(30000)
  const teardown = useTeardown()

  it('collects once, at the first quiet tick after the open connections grew by the threshold', async () => {
    const { release, counter, collected } = scripted(100)
    counter.open(99)
    release.tick()
    release.tick()
    expect(collected()).to.equal(0)
    counter.open(51)
    release.tick() // connections arrived during this interval: not quiet yet
    expect(collected()).to.equal(0)
    release.tick()
    expect(collected()).to.equal(1)
    await settled()
    release.tick()
    release.tick()
    expect(collected()).to.equal(1)
    counter.open(100) // the next burst arms it again
    release.tick()
    release.tick()
    expect(collected()).to.equal(2)
  })

  it('does not count connections that come and go, and counts a burst that follows a drop', async () => {
    const { release, counter, collected } = scripted(100)
    for (let i = 0; i < 10; i++) {
      counter.open(60)
      release.tick()
      counter.close(60)
      release.tick()
    }
    expect(counter.connectionsAccepted).to.equal(600)
    expect(collected()).to.equal(0)
    counter.open(150)
    release.tick()
    release.tick()
    expect(collected()).to.equal(1)
    await settled()
    counter.close(150) // all gone (a network failure), then all back
    release.tick()
    counter.open(150)
    release.tick()
    release.tick()
    expect(collected()).to.equal(2)
  })

  it('waits while the event loop is busy, and skips a young generation already small', async () => {
    const { release, counter, busy, young, collected } = scripted(10)
    counter.open(10)
    release.tick()
    busy.value = QUIET_UTILIZATION
    release.tick()
    expect(collected()).to.equal(0)
    busy.value = 0
    young.bytes = YOUNG_WORTH_RELEASING - 1
    release.tick()
    expect(collected()).to.equal(0)
    young.bytes = YOUNG_WORTH_RELEASING
    release.tick() // the arm was used up by the small young generation
    expect(collected()).to.equal(0)
    counter.open(10)
    release.tick()
    release.tick()
    expect(collected()).to.equal(1)
  })

  it('never collects with threshold 0', () => {
    const { release, counter, collected } = scripted(0)
    counter.open(1_000_000)
    release.tick()
    release.tick()
    expect(collected()).to.equal(0)
  })

  it('gives the young generation back once quiet after real connections (V8, not a script)', async () => {
    // Grow this process's young generation as a connection burst does: many objects that survive
    // several scavenges.
    // How far V8 grows it depends on what ran before in this process: keep adding survivors until
    // it is past the size worth releasing (bounded).
    let keep: unknown[] | undefined = []
    for (let n = 0; n < 400 && youngGeneration() < YOUNG_WORTH_RELEASING; n++) {
      for (let i = 0; i < 20_000; i++) keep.push({ i, a: [i, i + 1] })
    }
    expect(youngGeneration()).to.be.at.least(YOUNG_WORTH_RELEASING)
    keep = undefined
    const lines: Array<{ message: string; fields: LogFields | undefined }> = []
    const logger: Logger = {
      ...silentLogger,
      enabled: (level) => level === 'info',
      info: (message, fields) => lines.push({ message, fields })
    }
    const broker = makeBroker(teardown, { idleMemoryRelease: 20, timerInterval: 100, logger })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    for (let i = 0; i < 20; i++) {
      const peer = await openTcpPeer(teardown, port)
      expect(await peer.connect({ clientId: `idle-${i}`, keepalive: 60 })).to.deep.include({ reasonCode: 0 })
    }
    await until(() => lines.some((l) => l.message.includes('gave memory back')), 'the release', 20000)
    const line = lines.find((l) => l.message.includes('gave memory back'))!
    expect(line.fields).to.include({ connections: 20 })
    expect(line.fields?.youngAfter as number).to.be.below(line.fields?.youngBefore as number)
    expect(youngGeneration()).to.be.below(YOUNG_WORTH_RELEASING)
    expect(broker.stats.connectionsOpen).to.equal(20)
  })
})
