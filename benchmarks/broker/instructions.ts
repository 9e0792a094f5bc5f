/**
 * Instructions per message, counted by valgrind's callgrind: a figure that does not move with the
 * machine's load, for before/after comparisons that wall-clock and CPU-time runs on this shared
 * 2-core machine cannot decide (benchmarks/broker/README.md, "Counting instructions").
 *
 *   node --import tsx benchmarks/broker/instructions.ts [--targets ours,node-floor,mosquitto]
 *     [--qos 0|1] [--rate 100] [--seconds 10] [--warmups 6] [--warmup-rate 1000] [--reps 4] [--ours-script FILE]
 *
 * Each target runs under `valgrind --tool=callgrind` (every thread, user space only: system calls
 * are not counted, so compare this with the CPU-time figures, not instead of them). The broker
 * first runs uninstrumented (valgrind's core only, a few times slower than native) through
 * `--warmups` runs of the paced latency scenario at `--warmup-rate` for `--seconds`, so that the JIT
 * has settled (a Node.js broker still tiers up for thousands of messages); then instrumentation is
 * switched on and each repetition takes two windows of `--seconds`: one with paced messages at
 * `--rate` (one message per write, as in the latency scenario) and one idle. V8's collector and
 * compilers run in bursts that land in a window or not as the machine's timing decides, and only
 * ever add: the steady figure per message is the smallest message window less the smallest idle
 * window, ÷ deliveries; the average (bursts included) and their share are printed too. A window is cut
 * with `callgrind_control --dump`, which the broker serves on its next return from a system call: a
 * PINGREQ on a spare connection makes that return at once (a few hundred instructions).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Conn, type ConnTarget } from '../../lib/bench/conn.js'
import { runLatency } from '../../lib/bench/latency.js'
import { dumpCost, type DumpCost } from './callgrind-dump.js'
import { killAll, startTarget, TARGET_NAMES, type RunningBroker, type TargetName } from './targets.js'

interface Options {
  targets: TargetName[]
  qos: 0 | 1
  rate: number
  seconds: number
  warmups: number
  warmupRate: number
  reps: number
  oursScript?: string
}

function parseArgs (argv: string[]): Options {
  const o: Options = { targets: ['ours', 'node-floor', 'mosquitto'], qos: 0, rate: 100, seconds: 10, warmups: 6, warmupRate: 1000, reps: 4 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = (): string => { const x = argv[++i]; if (x === undefined) throw new Error(`${a} needs a value`); return x }
    if (a === '--targets') o.targets = v().split(',') as TargetName[]
    else if (a === '--qos') o.qos = v() === '1' ? 1 : 0
    else if (a === '--rate') o.rate = Number(v())
    else if (a === '--seconds') o.seconds = Number(v())
    else if (a === '--warmups') o.warmups = Number(v())
    else if (a === '--warmup-rate') o.warmupRate = Number(v())
    else if (a === '--reps') o.reps = Number(v())
    else if (a === '--ours-script') o.oursScript = v()
    else throw new Error(`unknown argument ${a} (see the header of benchmarks/broker/instructions.ts)`)
  }
  for (const t of o.targets) if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target ${t}`)
  if (!(o.rate > 0 && o.seconds > 0 && o.reps >= 1 && o.warmups >= 0)) throw new Error('--rate, --seconds and --reps must be positive')
  if (o.qos === 1 && Math.max(o.rate, o.warmupRate) * o.seconds >= 65_535) throw new Error('at QoS 1, --rate (and --warmup-rate) × --seconds must stay below 65,535')
  return o
}

/** Runs `callgrind_control ARGS PID` while poking the broker so that it serves the request now. */
async function control (args: string[], pid: number, poke: Conn): Promise<void> {
  const child = spawn('callgrind_control', [...args, String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  child.stderr.on('data', (b: Buffer) => { out += b.toString() })
  const done = new Promise<number | null>((resolve) => child.once('exit', resolve))
  // callgrind_control polls for valgrind's answer; poke until it has one.
  let answered = false
  void done.then(() => { answered = true })
  while (!answered) {
    await new Promise((resolve) => setTimeout(resolve, 100))
    if (answered) break
    poke.write(Buffer.from([0xc0, 0]))
    await Promise.race([poke.expect(13), done])
  }
  const code = await done
  if (code !== 0) throw new Error(`callgrind_control ${args.join(' ')} ${pid}: exit ${String(code)}\n${out}`)
}

/** The cost in the newest dump file of `dir`, checked against its `totals:` line. */
function takeDump (dir: string, seen: Set<string>): DumpCost {
  // Requested dumps are cg.out.1, cg.out.2, ...; cg.out itself is the one written at exit.
  const fresh = readdirSync(dir).filter((f) => /^cg\.out\.\d+$/.test(f) && !seen.has(f))
  if (fresh.length !== 1) throw new Error(`expected one new callgrind dump in ${dir}, found ${fresh.join(', ')}`)
  seen.add(fresh[0]!)
  const text = readFileSync(join(dir, fresh[0]!), 'utf8')
  const cost = dumpCost(text)
  // The parser's check: its sum matches the part's summary (within 0.1 %: a few lines of a dump
  // taken while threads run, e.g. a call still open, are not plain self costs).
  const summary = /^summary: (\d+)/m.exec(text)
  if (summary === null || Math.abs(Number(summary[1]) - cost.total) > Number(summary[1]) * 0.001) {
    throw new Error(`${fresh[0]!}: self costs add up to ${cost.total}, the file says ${summary?.[1] ?? 'nothing'}`)
  }
  return cost
}

/** One repetition: the message window, the idle window after it, and the deliveries. */
interface Windows {
  busy: DumpCost
  idle: DumpCost
  deliveries: number
}

async function measureTarget (name: TargetName, o: Options, log: (s: string) => void): Promise<Windows[]> {
  const dir = mkdtempSync(join(tmpdir(), `callgrind-${name}-`))
  let broker: RunningBroker | undefined
  let poke: Conn | undefined
  try {
    broker = await startTarget(name, {
      transport: 'tcp', nodeFlags: [], nofile: 4096, ...(o.oursScript !== undefined ? { oursScript: o.oursScript } : {}),
      wrapper: ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--dump-instr=no', '--compress-strings=no',
        `--callgrind-out-file=${join(dir, 'cg.out')}`],
      startTimeoutMs: 300_000
    })
    const target: ConnTarget = { host: '127.0.0.1', port: broker.port, transport: 'tcp' }
    poke = await Conn.open(target, `insn-poke-${process.pid}`, 0)
    const latency = async (runId: string, rate: number): Promise<number> => {
      const r = await runLatency({ target, rate, duration: o.seconds, payload: 64, runId, drainMs: 30_000, qos: o.qos })
      if (!r.ok) throw new Error(`${name}: ${r.problem ?? 'not ok'}`)
      return r.deliveries
    }
    for (let w = 0; w < o.warmups; w++) {
      const n = await latency(`insn-${process.pid}-w${w}`, o.warmupRate)
      log(`${name} warm-up ${w + 1}: ${n} messages`)
    }
    await control(['--instr=on'], broker.pid, poke)
    const seen = new Set<string>()
    const reps: Windows[] = []
    const f = (n: number): string => Math.round(n).toLocaleString('en-US')
    for (let rep = 0; rep < o.reps; rep++) {
      await control(['--zero'], broker.pid, poke)
      const deliveries = await latency(`insn-${process.pid}-r${rep}`, o.rate)
      await control(['--dump=messages'], broker.pid, poke)
      const busy = takeDump(dir, seen)
      await new Promise((resolve) => setTimeout(resolve, o.seconds * 1000))
      await control(['--dump=idle'], broker.pid, poke)
      const idle = takeDump(dir, seen)
      reps.push({ busy, idle, deliveries })
      log(`${name} rep ${rep + 1}: message window ${f(busy.total)} (GC ${f(busy.gc)}, compilers ${f(busy.compile)}), ` +
        `idle window ${f(idle.total)} (GC ${f(idle.gc)}, compilers ${f(idle.compile)}), ${deliveries} deliveries`)
    }
    return reps
  } finally {
    poke?.end()
    await broker?.stop()
    if (process.env.KEEP_CALLGRIND === undefined) rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A target's figures per message. Steady: the quietest message window less the quietest idle
 * window (bursts of the collector and the compilers only ever add, so the smallest window is the
 * one with the fewest). Average: every message window, bursts included, less the quietest idle
 * window (a burst in an idle window is not the messages' saving). Collector and compilers: their
 * share of the message windows.
 */
export function perMessage (reps: Windows[]): { steady: number; average: number; gcCompile: number } {
  const deliveries = reps.reduce((n, r) => n + r.deliveries, 0)
  const perRep = deliveries / reps.length
  const sum = (f: (r: Windows) => number): number => reps.reduce((n, r) => n + f(r), 0)
  return {
    steady: (Math.min(...reps.map((r) => r.busy.total)) - Math.min(...reps.map((r) => r.idle.total))) / perRep,
    average: sum((r) => r.busy.total) / deliveries - Math.min(...reps.map((r) => r.idle.total)) / perRep,
    gcCompile: sum((r) => r.busy.gc + r.busy.compile) / deliveries
  }
}

async function main (): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  // A broker under valgrind stalls for seconds at a collection or a compilation: our overload
  // protection would shed QoS 0 (servers/ours.ts reads this). Its monitor still runs, as by default.
  process.env.BENCH_MAX_EVENT_LOOP_LAG ??= '600000'
  const log = (s: string): void => { process.stderr.write(s + '\n') }
  const results = new Map<TargetName, ReturnType<typeof perMessage>>()
  for (const t of o.targets) results.set(t, perMessage(await measureTarget(t, o, log)))
  const reference = results.get('mosquitto')
  const f = (n: number): string => Math.round(n).toLocaleString('en-US')
  const x = (a: number, b: number | undefined): string => (b === undefined || b <= 0 ? '' : (a / b).toFixed(2))
  const lines = [
    `Instructions per message (callgrind: user space, every thread; paced QoS ${o.qos} at ${o.rate} msg/s, windows of ${o.seconds} s, ` +
      `${o.reps} repetitions, after ${o.warmups} × ${o.seconds} s at ${o.warmupRate} msg/s uninstrumented)`,
    '',
    '| target | steady | × mosquitto | average, GC and compilers included | × mosquitto | of which GC and compilers |',
    '|---|---:|---:|---:|---:|---:|'
  ]
  for (const [t, r] of results) {
    const me = t === 'mosquitto'
    lines.push(`| ${t} | ${f(r.steady)} | ${me ? '' : x(r.steady, reference?.steady)} | ${f(r.average)} | ${me ? '' : x(r.average, reference?.average)} | ${f(r.gcCompile)} |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`instructions: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  killAll()
  process.exit(1)
})
