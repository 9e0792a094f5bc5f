/**
 * What one message costs a broker on the latency path: one paced publisher → one subscriber (the
 * latency scenario's shape: each message its own write, evenly spaced), measured inside the broker
 * process over a window of messages by `per-message-probe.mjs`: CPU µs per message, heap bytes
 * allocated per message, Buffer (ArrayBuffer) bytes, scavenges and mark-compacts in the window.
 * Several broker scripts are run interleaved (A/B), each in a fresh process, warmed up first.
 *
 *   node --import tsx benchmarks/broker/per-message.ts --qos 0 --mode alloc \
 *     --scripts /work/base/benchmarks/broker/servers/ours.ts,benchmarks/broker/servers/ours.ts
 *
 * --mode alloc: the broker runs with a 64 MB young generation, so no scavenge falls in a window and
 *   the heap growth is every byte allocated (the line says `scavenges 0` when that held).
 * --mode gc: default heap flags; after each window the broker idles `--idle-ms` (V8 shrinks its
 *   young generation meanwhile, as between latency repetitions): scavenges per window.
 * --profile DIR: V8's CPU profile and sampling heap profile (dead objects included) of each window.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Worker } from 'node:worker_threads'
import { Conn, withTimeout } from '../../lib/bench/conn.js'
import { Subscriber } from '../../lib/bench/roles.js'
import type { Tally } from '../../lib/bench/roles.js'
import type { PacedPublisherData, PacedPublisherMessage } from '../../lib/bench/paced-publisher.js'

interface Options {
  scripts: string[]
  qos: 0 | 1
  mode: 'alloc' | 'gc'
  rate: number
  count: number
  windows: number
  warmups: number
  rounds: number
  idleMs: number
  payload: number
  profile: string | undefined
}

function parse (argv: string[]): Options {
  const o: Options = {
    scripts: [resolve('benchmarks/broker/servers/ours.ts')],
    qos: 0, mode: 'alloc', rate: 2000, count: 10_000, windows: 3, warmups: 2, rounds: 1, idleMs: 5000, payload: 64, profile: undefined
  }
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1] ?? ''
    switch (argv[i++]) {
      case '--scripts': o.scripts = value.split(',').map((s) => resolve(s)); break
      case '--qos': o.qos = value === '1' ? 1 : 0; break
      case '--mode': o.mode = value === 'gc' ? 'gc' : 'alloc'; break
      case '--rate': o.rate = Number(value); break
      case '--count': o.count = Number(value); break
      case '--windows': o.windows = Number(value); break
      case '--warmups': o.warmups = Number(value); break
      case '--rounds': o.rounds = Number(value); break
      case '--idle-ms': o.idleMs = Number(value); break
      case '--payload': o.payload = Number(value); break
      case '--profile': o.profile = resolve(value); break
      default: throw new Error(`unknown argument ${argv[i - 1]}`)
    }
  }
  if (o.qos === 1 && o.count >= 65_535) throw new Error('--count must stay below 65,535 at QoS 1')
  return o
}

function freePort (): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address !== null ? done(address.port) : fail(new Error('no port'))))
    })
  })
}

/** A broker process with the probe preloaded; `mark()` starts or ends a window. */
class Broker {
  private lines: string[] = []
  private waiters: Array<(line: string) => void> = []

  private constructor (readonly child: ReturnType<typeof spawn>, readonly port: number) {
    let rest = ''
    child.stderr!.on('data', (chunk: Buffer) => {
      rest += chunk.toString()
      let nl
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl)
        rest = rest.slice(nl + 1)
        if (!line.startsWith('probe ')) { process.stderr.write(`[broker] ${line}\n`); continue }
        const w = this.waiters.shift()
        if (w !== undefined) w(line)
        else this.lines.push(line)
      }
    })
  }

  static async start (script: string, o: Options): Promise<Broker> {
    const port = await freePort()
    const flags = o.mode === 'alloc' ? ['--min-semi-space-size=64', '--max-semi-space-size=64'] : []
    const probe = resolve('benchmarks/broker/per-message-probe.mjs')
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', probe, ...flags, script, '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(o.profile === undefined ? {} : { PROBE_PROFILE_DIR: o.profile }) }
    })
    const broker = new Broker(child, port)
    let out = ''
    await withTimeout(new Promise<void>((done) => {
      child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); if (out.includes('listening')) done() })
    }), 30_000, `${script} listening`)
    return broker
  }

  async mark (): Promise<string> {
    const line = new Promise<string>((done) => { this.waiters.push(done) })
    this.child.kill('SIGUSR2')
    return await withTimeout(line, 10_000, 'the probe')
  }

  async stop (): Promise<void> {
    this.child.kill('SIGTERM')
    if (this.child.exitCode === null) await once(this.child, 'exit')
  }
}

/** One window: `count` paced messages through `broker`, measured by its probe when `measure`. */
async function window (broker: Broker, o: Options, id: string, measure: boolean): Promise<Record<string, number> | undefined> {
  const target = { host: '127.0.0.1', port: broker.port, transport: 'tcp' as const }
  let done: () => void = () => {}
  const allIn = new Promise<void>((resolveAll) => { done = resolveAll })
  const tally: Tally = { deliveries: 0, duplicates: 0, foreign: 0, acked: 0, lastDeliveryAt: 0, check () { if (this.deliveries >= o.count) done() } }
  const sc = await Conn.open(target, `${id}-s`)
  const topic = `bench/${id}/per-message`
  const sub = new Subscriber(sc, new Int32Array([0]), 1, o.count, tally)
  await sc.subscribe(topic, o.qos)
  const data: PacedPublisherData = { target, clientId: `${id}-p`, topic, payload: o.payload, rate: o.rate, count: o.count, qos: o.qos }
  const entry = new URL('../../lib/bench/paced-publisher.ts', import.meta.url).href
  const worker = new Worker(`import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(entry)}) })`, { eval: true, workerData: data })
  let ready: () => void = () => {}
  let finished: (error?: Error) => void = () => {}
  const isReady = new Promise<void>((r) => { ready = r })
  const isFinished = new Promise<void>((r, j) => { finished = (e) => { if (e === undefined) r(); else j(e) } })
  worker.on('message', (m: PacedPublisherMessage) => {
    if (m.type === 'ready') ready()
    else if (m.type === 'done') finished()
    else { ready(); finished(new Error(m.message)) }
  })
  worker.on('error', (e) => { ready(); finished(e) })
  await isReady
  if (measure) await broker.mark()
  worker.postMessage('start')
  await withTimeout(isFinished, o.count / o.rate * 1000 + 30_000, 'the publisher')
  await withTimeout(allIn, 30_000, 'the deliveries')
  // QoS 1: the publisher reads its PUBACKs once it stopped sending; give the broker that turn too.
  await sleep(200)
  const line = measure ? await broker.mark() : undefined
  await worker.terminate()
  sc.end()
  if (sub.errors > 0 || tally.duplicates > 0) throw new Error(`window ${id}: ${sub.errors} errors, ${tally.duplicates} duplicates`)
  if (line === undefined) return undefined
  return JSON.parse(line.slice('probe '.length)) as Record<string, number>
}

const o = parse(process.argv.slice(2))
const results = new Map<string, Array<Record<string, number>>>()
for (let round = 0; round < o.rounds; round++) {
  for (const script of o.scripts) {
    const broker = await Broker.start(script, o)
    try {
      for (let w = 0; w < o.warmups; w++) await window(broker, o, `r${round}w${w}`, false)
      for (let w = 0; w < o.windows; w++) {
        if (o.mode === 'gc') await sleep(o.idleMs)
        const r = (await window(broker, o, `r${round}m${w}`, true))!
        const perMessage = { cpuUsPerMsg: r.cpuUs! / o.count, heapBytesPerMsg: r.heapBytes! / o.count, arrayBufferBytesPerMsg: r.arrayBufferBytes! / o.count }
        const row = { ...perMessage, scavenges: r.scavenges!, markCompacts: r.markCompacts!, gcMs: r.gcMs! }
        const list = results.get(script) ?? []
        list.push(row)
        results.set(script, list)
        process.stdout.write(`${script} round ${round + 1} window ${w + 1}: ${row.cpuUsPerMsg.toFixed(1)} µs CPU/msg, ` +
          `${row.heapBytesPerMsg.toFixed(0)} B heap/msg, ${row.arrayBufferBytesPerMsg.toFixed(0)} B buffers/msg, ` +
          `${row.scavenges} scavenges, ${row.markCompacts} mark-compacts, GC ${row.gcMs} ms\n`)
      }
    } finally {
      await broker.stop()
    }
  }
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]! }
for (const [script, rows] of results) {
  process.stdout.write(`${script}: medians of ${rows.length} windows (QoS ${o.qos}, ${o.count} messages at ${o.rate}/s, mode ${o.mode}): ` +
    `${median(rows.map((r) => r.cpuUsPerMsg!)).toFixed(1)} µs CPU/msg, ${median(rows.map((r) => r.heapBytesPerMsg!)).toFixed(0)} B heap/msg, ` +
    `${median(rows.map((r) => r.scavenges!))} scavenges/window\n`)
}
process.exit(0)
