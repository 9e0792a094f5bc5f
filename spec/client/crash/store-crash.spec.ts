/**
 * Crash tests with real processes (docs/client-store.md, client-design.md §10.3): a client process
 * using a FileStore is SIGKILLed at random (seeded) moments and restarted on the same store,
 * against our broker in this process. Publisher: 0 lost, 0 duplicates at QoS 2. Subscriber: every
 * message handed to the application, QoS 2 ones exactly once per stable id. The killed processes
 * run a `Service` (fixtures/service-driver.ts). Set CRASH_SEED to replay a run (the seed is in the
 * test names) and CRASH_KILLS for longer runs (default 10 kills per test).
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { FileStore } from '../../../lib/client/store/file-store.js'
import { encodeRecord } from '../../../lib/client/store/journal-format.js'
import { makeBroker } from '../../helpers/broker.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { useTeardown } from '../../helpers/teardown.js'

const DRIVER = fileURLToPath(new URL('./fixtures/service-driver.ts', import.meta.url))
const SEED = Number(process.env.CRASH_SEED ?? 1515)
const KILLS = Number(process.env.CRASH_KILLS ?? 10)

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `p`, or a failure that says what was awaited (and shows `detail()`) after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string, detail: () => string = () => ''): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms ${detail()}`)), ms)
  })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

/** One run of the driver: its stdout lines as they come, and its exit. */
class Run {
  readonly child: ChildProcess
  readonly lines: string[] = []
  readonly exited: Promise<number | null>
  exitCode: number | null | undefined = undefined
  private waiters: { pattern: RegExp; resolve: (line: string | undefined) => void }[] = []

  constructor(args: string[], onLine: (line: string) => void, sync: 'write' | 'fsync') {
    this.child = spawn(process.execPath, ['--import', 'tsx', DRIVER, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, STORE_SYNC: sync },
    })
    let rest = ''
    this.child.stdout?.on('data', (d: Buffer) => {
      rest += d.toString()
      let nl: number
      while ((nl = rest.indexOf('\n')) !== -1) {
        const line = rest.slice(0, nl)
        rest = rest.slice(nl + 1)
        this.lines.push(line)
        onLine(line)
        this.waiters = this.waiters.filter((w) => (w.pattern.test(line) ? (w.resolve(line), false) : true))
      }
    })
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.exitCode = code
        for (const w of this.waiters) w.resolve(undefined)
        this.waiters = []
        resolve(code)
      })
    )
  }

  /** The first later line matching `pattern`, or undefined if the process exits first. */
  waitFor(pattern: RegExp): Promise<string | undefined> {
    if (this.exitCode !== undefined) return Promise.resolve(undefined)
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }))
  }

  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL')
    await this.exited
  }
}

describe('client store crash tests (SIGKILL, real processes)', function () {
  this.timeout(120_000)
  const teardown = useTeardown()

  async function brokerPort(kind: 'ours' | 'mosquitto' = 'ours'): Promise<number> {
    if (kind === 'mosquitto') {
      const mosquitto = await startMosquitto()
      teardown.defer(() => mosquitto.stop())
      return mosquitto.tcpPort
    }
    const broker = makeBroker(teardown, { memory: { maxQueuedMessages: 100_000 }, maxOutgoingQueue: 100_000 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return port
  }

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'mqtt-crash-'))
    teardown.defer(() => rmSync(dir, { recursive: true, force: true }))
    return dir
  }

  function driver(args: string[], onLine: (line: string) => void = () => undefined, sync: 'write' | 'fsync' = 'write'): Run {
    const run = new Run(args, onLine, sync)
    teardown.defer(() => run.kill())
    return run
  }

  async function mqttClient(port: number, clientId: string, clean: boolean): Promise<MqttClient> {
    const c = await mqtt.connectAsync({ host: '127.0.0.1', port, clientId, clean, reconnectPeriod: 0, protocolVersion: 4 })
    teardown.defer(() => c.endAsync(true))
    return c
  }

  /** A subscriber that counts deliveries per seq; `drained()` waits for a sentinel sent after everything. */
  async function recorder(port: number, topic: string): Promise<{ counts: Map<number, number>; drained: () => Promise<void> }> {
    const c = await mqttClient(port, `recorder-${topic.replace('/', '-')}`, false)
    const counts = new Map<number, number>()
    let sentinel: (() => void) | undefined
    c.on('message', (_t, payload) => {
      const text = payload.toString().trim()
      if (text === 'sentinel') return sentinel?.()
      const seq = Number(text)
      counts.set(seq, (counts.get(seq) ?? 0) + 1)
    })
    await c.subscribeAsync(topic, { qos: 2 })
    const drained = async (): Promise<void> => {
      const got = new Promise<void>((resolve) => (sentinel = resolve))
      await c.publishAsync(topic, 'sentinel', { qos: 2 })
      await got
    }
    return { counts, drained }
  }

  async function publisherCrash(kind: 'ours' | 'mosquitto', sync: 'write' | 'fsync', maxKills: number): Promise<void> {
    const port = await brokerPort(kind)
    const dir = tempDir()
    const rec = await recorder(port, 'crash/pub')
    const random = rng(SEED)
    const N = 10_000
    const accepted = new Set<number>()
    const warnings: string[] = []
    let kills = 0
    let inResend = 0
    for (;;) {
      let announced = 0
      const from = Math.max(0, ...accepted) + 1
      const run = driver(
        ['pub', dir, String(port), 'crash-publisher', String(from), String(N)],
        (line) => {
          if (line.startsWith('A ')) {
            accepted.add(Number(line.slice(2)))
            announced++
          } else if (line.startsWith('W ')) warnings.push(line)
        },
        sync
      )
      const ready = await run.waitFor(/^R$/)
      expect(ready, `run ${kills + 1} came online (exit ${String(run.exitCode)})`).to.equal('R')
      if (kills === maxKills) {
        const finished = await within(run.waitFor(/^F$/), 60_000, 'the last run completes', () => run.lines.slice(-3).join(' | '))
        expect(finished, 'the last run completes every publish').to.equal('F')
        expect(await run.exited).to.equal(0)
        break
      }
      // A random moment: sometimes within the resend burst right after connecting.
      await sleep(Math.floor(random() * 250))
      if (announced === 0) inResend++
      if (run.exitCode === 0) break // finished before the kill
      expect(run.exitCode, `run ${kills + 1} died on its own (${run.lines.slice(-3).join(' | ')})`).to.equal(undefined)
      await run.kill()
      kills++
    }
    expect(kills, 'kills made before the publisher finished').to.be.at.least(maxKills / 2)
    await within(rec.drained(), 30_000, 'the recorder drains')
    const lost: number[] = []
    const dup1: number[] = []
    const dup2: number[] = []
    for (let seq = 1; seq <= N; seq++) {
      const n = rec.counts.get(seq) ?? 0
      if (n === 0) lost.push(seq)
      else if (n > 1) (seq % 2 === 1 ? dup1 : dup2).push(seq)
    }
    expect(lost, 'lost').to.deep.equal([])
    expect(dup2, 'QoS 2 duplicates').to.deep.equal([])
    expect([...accepted].every((s) => (rec.counts.get(s) ?? 0) > 0), 'every accepted publish arrived').to.equal(true)
    expect(warnings.filter((w) => w !== 'W stale-lock' && w !== 'W torn-tail')).to.deep.equal([])
    expect(readdirSync(dir).filter((n) => n.endsWith('.log'))).to.have.length(1)
    // After the final drain the store holds no message any more.
    const after = new FileStore(dir, { sync: 'write' })
    const left = await after.open({ clientId: 'crash-publisher', protocolLevel: 4 })
    await after.close()
    expect([left.outbound.length, left.inbound.length], 'messages left in the store').to.deep.equal([0, 0])
    expect(left.nextSeq, 'seqs were never reused').to.be.greaterThan(N)
    console.log(`      ${kills} kills (${inResend} before a new publish), QoS 1 duplicates: ${dup1.length}, warnings: ${warnings.length}`)
  }

  it(`publisher: SIGKILLed ${KILLS} times while publishing QoS 1 and 2 through a FileStore — 0 lost, 0 QoS 2 duplicates (our broker, seed ${SEED})`, () =>
    publisherCrash('ours', 'write', KILLS))

  it(`publisher against mosquitto, FileStore sync 'fsync': SIGKILLed ${Math.ceil(KILLS / 2)} times — 0 lost, 0 QoS 2 duplicates (seed ${SEED})`, () =>
    publisherCrash('mosquitto', 'fsync', Math.ceil(KILLS / 2)))

  it(`subscriber: SIGKILLed ${KILLS} times while receiving QoS 1 and 2 — each QoS 2 message handed over under one stable id, at most once as new (seed ${SEED})`, async () => {
    const port = await brokerPort()
    const dir = tempDir()
    const log = join(tempDir(), 'effects.log')
    writeFileSync(log, '')
    const random = rng(SEED + 1)
    const args = ['sub', dir, String(port), 'crash-subscriber', log]
    let run = driver(args)
    expect(await run.waitFor(/^R$/)).to.equal('R')
    // A steady publisher: QoS 1 for odd seqs, QoS 2 for even, paced over the kill period.
    const src = await mqttClient(port, 'crash-source', true)
    const N = 3000
    let stop = false
    const publishing = (async () => {
      for (let seq = 1; seq <= N && !stop; seq += 10) {
        const batch: Promise<unknown>[] = []
        for (let s = seq; s < seq + 10 && s <= N; s++) batch.push(src.publishAsync('crash/sub', String(s), { qos: s % 2 === 1 ? 1 : 2 }))
        await Promise.all(batch)
        await sleep(15)
      }
    })()
    teardown.defer(async () => {
      stop = true
      await publishing.catch(() => undefined)
    })
    let kills = 0
    while (kills < KILLS) {
      await sleep(Math.floor(random() * 300))
      expect(run.exitCode, `run ${kills + 1} died on its own (${run.lines.slice(-3).join(' | ')})`).to.equal(undefined)
      await run.kill()
      kills++
      run = driver(args)
      expect(await run.waitFor(/^R$/), `run ${kills + 1} came online`).to.equal('R')
    }
    await publishing
    // Every message reaches the log: wait for a sentinel published after all of them.
    await src.publishAsync('crash/sub', 'sentinel', { qos: 2 })
    const deadline = Date.now() + 60_000
    while (!readFileSync(log, 'utf8').includes(' sentinel ')) {
      expect(Date.now(), 'the sentinel reaches the subscriber').to.be.lessThan(deadline)
      await sleep(50)
    }
    await run.kill()
    const byApp = new Map<string, { id: string; redelivered: string; qos: string }[]>()
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (line === '') continue
      const [id, app, redelivered, qos] = line.split(' ') as [string, string, string, string]
      byApp.set(app, [...(byApp.get(app) ?? []), { id, redelivered, qos }])
    }
    const lost: number[] = []
    const splitIds: number[] = []
    const newTwice: number[] = []
    let redeliveries = 0
    let qos1Duplicates = 0
    const qos2Ids = new Set<string>()
    for (let seq = 1; seq <= N; seq++) {
      const lines = byApp.get(String(seq)) ?? []
      if (lines.length === 0) lost.push(seq)
      redeliveries += lines.filter((l) => l.redelivered === '1').length
      if (seq % 2 === 1) {
        if (lines.length > 1) qos1Duplicates++
        continue
      }
      if (new Set(lines.map((l) => l.id)).size > 1) splitIds.push(seq)
      if (lines.filter((l) => l.redelivered === '0').length > 1) newTwice.push(seq)
      for (const l of lines) qos2Ids.add(l.id)
    }
    expect(lost, 'lost').to.deep.equal([])
    expect(splitIds, 'QoS 2 messages handed over under different ids').to.deep.equal([])
    expect(newTwice, 'QoS 2 messages handed over twice as new').to.deep.equal([])
    expect(qos2Ids.size, 'effects de-duplicated by id = QoS 2 messages').to.equal(N / 2)
    console.log(`      ${kills} kills, redeliveries (same id, redelivered): ${redeliveries}, QoS 1 duplicates: ${qos1Duplicates}`)
  })

  it('publishes accepted while the broker is unreachable survive a kill and are sent by the next process', async () => {
    const port = await brokerPort()
    const dead = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = probe.address() as AddressInfo
        probe.close(() => resolve(free))
      })
    })
    const dir = tempDir()
    const rec = await recorder(port, 'crash/pub')
    const first = driver(['pub', dir, String(dead), 'crash-offline', '1', '100', 'offline'])
    expect(await first.waitFor(/^A 16$/)).to.equal('A 16')
    await first.kill()
    const second = driver(['pub', dir, String(port), 'crash-offline', '17', '100'])
    expect(await within(second.waitFor(/^F$/), 60_000, 'the second run completes', () => second.lines.slice(-3).join(' | '))).to.equal('F')
    await within(rec.drained(), 30_000, 'the recorder drains')
    const missing = Array.from({ length: 100 }, (_, i) => i + 1).filter((s) => (rec.counts.get(s) ?? 0) === 0)
    expect(missing, 'lost').to.deep.equal([])
    expect([...rec.counts].filter(([, n]) => n > 1), 'duplicates').to.deep.equal([])
  })

  it('a journal torn by a crash opens with a warning and loses nothing accepted', async () => {
    const port = await brokerPort()
    const dir = tempDir()
    const rec = await recorder(port, 'crash/pub')
    const first = driver(['pub', dir, String(port), 'crash-torn', '1', '400'])
    expect(await first.waitFor(/^A 40$/)).to.equal('A 40')
    await first.kill()
    // What a kill in the middle of a write leaves: the first bytes of the next record.
    const log = readdirSync(dir).find((n) => n.endsWith('.log')) as string
    const next = encodeRecord({ op: 'out', seq: 100_000, packet: Buffer.alloc(80, 7), packetId: 1 })
    appendFileSync(join(dir, log), Buffer.concat(next).subarray(0, 37))
    const lines: string[] = []
    const second = driver(['pub', dir, String(port), 'crash-torn', '41', '400'], (l) => lines.push(l))
    expect(await within(second.waitFor(/^F$/), 60_000, 'the second run completes', () => lines.slice(-3).join(' | '))).to.equal('F')
    expect(lines).to.include('W torn-tail')
    await within(rec.drained(), 30_000, 'the recorder drains')
    const missing = Array.from({ length: 400 }, (_, i) => i + 1).filter((s) => (rec.counts.get(s) ?? 0) === 0)
    expect(missing).to.deep.equal([])
    expect([...rec.counts].filter(([s, n]) => s % 2 === 0 && n > 1)).to.deep.equal([])
    expect(rec.counts.has(100_000)).to.equal(false)
  })
})
