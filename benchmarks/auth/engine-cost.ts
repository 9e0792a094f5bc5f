/**
 * What access control costs the real engine, without sockets: a `Broker` (the engine, its decoder,
 * output batching and the `MemoryBackend`, with the options of `servers/ours.ts`) whose connections
 * are in-memory streams that take every write at once, fed synchronously with the chunks a load
 * generator sends (64 PUBLISH packets of 64 B each). Like the socket benchmark's repetitions, each
 * round opens fresh connections and rounds alternate fan-in (4 → 1 `#` subscriber, 200,000
 * messages) and fan-out (1 → 100 `#` subscribers, 10,000 messages). It contains the engine's own
 * calls, so it shows what the decorator does to them (inlining, extra layers), which `acl-cost.ts`
 * (backend only) cannot; and it reads CPU time of the main thread apart from the whole process's
 * (Linux: /proc/thread-self/schedstat), which includes V8's background compiler and GC threads.
 *
 *   node --import tsx benchmarks/auth/engine-cost.ts [--variant plain|pass|wrap|acl] [--acl]
 *     [--scenario fanin|fanout|both] [--rounds 9] [--messages N]
 *
 * Variants: `plain` MemoryBackend; `acl` behind `withAccessControl` and the 20 rules of
 * servers/acl-rules.ts; `pass` behind a decorator that decides nothing and passes the engine's
 * handles; `wrap` the same with one forwarding handle per connection (pass-through.ts). One variant
 * per process (V8's feedback of one must not shape the other's code): engine-cost-run.ts alternates
 * processes and bundles the harness as the benchmark servers are. Prints medians of CPU ns per delivery.
 */
import { readFileSync } from 'node:fs'
import { Duplex } from 'node:stream'
import { encodeConnect, encodeSubscribe, PublishTemplate } from '../../lib/bench/mqtt-bytes.js'
import { Broker, MemoryBackend, withAccessControl } from '../../lib/index.js'
import type { AclRule, Backend } from '../../lib/index.js'
import { benchmarkAcl } from '../broker/servers/acl-rules.js'
import { passThrough } from './pass-through.js'

interface Options { variant: 'plain' | 'pass' | 'wrap' | 'acl'; scenario: 'fanin' | 'fanout' | 'both'; rounds: number; messages: number | undefined }

function parse (args: string[]): Options {
  const o: Options = { variant: 'plain', scenario: 'both', rounds: 9, messages: undefined }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--acl') o.variant = 'acl'
    else if (a === '--variant') { const v = args[++i]; o.variant = v === 'pass' || v === 'wrap' || v === 'acl' ? v : 'plain' }
    else if (a === '--scenario') { const v = args[++i]; o.scenario = v === 'fanin' || v === 'fanout' ? v : 'both' }
    else if (a === '--rounds') o.rounds = Number(args[++i])
    else if (a === '--messages') o.messages = Number(args[++i])
    else throw new Error(`unknown argument ${a}`)
  }
  return o
}

/** A connection's stream: input is pushed by `feed` (synchronously, as a socket's 'data'), output counted and dropped. */
class SinkStream extends Duplex {
  written = 0
  override _read (): void {}
  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written += chunk.length
    callback()
  }

  feed (chunk: Buffer): void {
    this.emit('data', chunk)
  }
}

const o = parse(process.argv.slice(2))
const rules: AclRule[] = benchmarkAcl()
const memory: Backend = new MemoryBackend()
const backend: Backend = o.variant === 'acl'
  ? withAccessControl(memory, { acl: rules, bruteForce: false })
  : o.variant === 'plain' ? memory : passThrough(memory, o.variant === 'wrap')
// As servers/ours.ts, but no overload shedding: on a starved machine the event loop lags seconds
// between turns, and the point here is CPU per delivery, not admission.
const broker = new Broker({ backend, maxOutgoingQueue: 1_000_000, maxPublisherPause: 600_000, maxEventLoopLag: 0 })
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** CPU time of this (the main) thread in ns, from /proc (Linux); undefined elsewhere. */
function threadCpuNs (): number | undefined {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0])
  } catch {
    return undefined
  }
}

async function until (done: () => boolean): Promise<void> {
  for (let k = 0; !done(); k++) {
    if (k > 100_000) throw new Error('the broker did not answer CONNECT / SUBSCRIBE')
    await turn()
  }
}

function open (clientId: string): SinkStream {
  const stream = new SinkStream()
  broker.handle({ stream, transport: 'tcp', remoteAddress: '127.0.0.1' })
  stream.feed(encodeConnect(clientId, 0))
  return stream
}

/** One run of a scenario on fresh connections (as each repetition of the socket benchmark), closed after. */
async function run (scenario: 'fanin' | 'fanout', messages: number): Promise<{ process: number, main: number }> {
  const runId = Math.random().toString(36).slice(2, 8)
  const publishers = scenario === 'fanin' ? 4 : 1
  const subscribers = scenario === 'fanin' ? 1 : 100
  const subs = Array.from({ length: subscribers }, (_, i) => open(`${runId}-s${i}`))
  const pubs = Array.from({ length: publishers }, (_, i) => open(`${runId}-p${i}`))
  // CONNACK (4 bytes) to everyone, then SUBACK (5 bytes) to the subscribers.
  await until(() => [...subs, ...pubs].every((c) => c.written >= 4))
  for (const s of subs) s.feed(encodeSubscribe(1, '#', 0))
  await until(() => subs.every((c) => c.written >= 9))
  // Chunks of 64 PUBLISH packets, each a buffer of its own (as read from a socket), reused round-robin.
  const template = new PublishTemplate(`bench/${runId}/${scenario}`, 64, 0)
  const chunks = Array.from({ length: 64 }, () => {
    const chunk = Buffer.allocUnsafe(template.length * PER_CHUNK)
    for (let i = 0; i < PER_CHUNK; i++) template.bytes.copy(chunk, i * template.length)
    return chunk
  })
  const n = Math.ceil(messages / PER_CHUNK)
  const before = subs.reduce((sum, s) => sum + s.written, 0)
  const t0 = process.cpuUsage()
  const m0 = threadCpuNs()
  // Publishers take turns chunk by chunk.
  for (let c = 0; c < n; c++) {
    pubs[c % publishers]!.feed(chunks[c % chunks.length]!)
    if (c % 16 === 15) await turn()
  }
  await turn()
  const u = process.cpuUsage(t0)
  const m1 = threadCpuNs()
  const deliveries = n * PER_CHUNK * subscribers
  const received = subs.reduce((sum, s) => sum + s.written, 0) - before
  if (received < deliveries * template.length) throw new Error(`${scenario}: subscribers received ${received} bytes of ${deliveries * template.length}: deliveries were lost (${JSON.stringify(broker.stats)})`)
  for (const s of [...subs, ...pubs]) s.destroy()
  for (let k = 0; k < 5; k++) await turn()
  return { process: ((u.user + u.system) * 1000) / deliveries, main: m0 === undefined || m1 === undefined ? NaN : (m1 - m0) / deliveries }
}

const PER_CHUNK = 64
// Rounds alternate fan-in and fan-out as the socket benchmark's repetitions do (a warm-up round first).
const scenarios: ('fanin' | 'fanout')[] = o.scenario === 'both' ? ['fanin', 'fanout'] : [o.scenario]
const results = new Map(scenarios.map((s) => [s, { process: [] as number[], main: [] as number[] }]))
const sizes = (s: 'fanin' | 'fanout'): number => o.messages ?? (s === 'fanin' ? 200_000 : 10_000)
for (const s of scenarios) await run(s, sizes(s) / 5)
for (let r = 0; r < o.rounds; r++) {
  for (const s of scenarios) {
    const { process: p, main } = await run(s, sizes(s))
    results.get(s)!.process.push(p)
    results.get(s)!.main.push(main)
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
for (const [s, { process: p, main }] of results) {
  const all = (xs: number[]): string => xs.map((x) => x.toFixed(0)).join(' ')
  // The least figure of the rounds too: the round least disturbed by other processes on a loaded machine.
  console.log(`${s} ${o.variant}: ${median(main).toFixed(1)} ns per delivery on the main thread, ${median(p).toFixed(1)} ns in the process ` +
    `(medians of ${o.rounds}); least ${Math.min(...main).toFixed(1)} and ${Math.min(...p).toFixed(1)} (main ${all(main)}; process ${all(p)})`)
}
// With --expose-gc: the live heap after the run (what the rounds of fresh connections left behind).
const gc = (globalThis as { gc?: () => void }).gc
if (gc !== undefined) {
  gc()
  console.log(`${o.variant}: heap used after the run and a full GC: ${(process.memoryUsage().heapUsed / 1048576).toFixed(2)} MiB`)
}
await broker.close()
