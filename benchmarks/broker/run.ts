/**
 * The broker benchmark runner: starts each target broker as its own child process, drives it
 * with the load generator (in this process), interleaves targets, repeats, and prints one report
 * with medians and ratios; writes JSON tagged with the git commit to benchmarks/results/.
 *
 *   node --import tsx benchmarks/broker/run.ts [--scenarios fanin-q0,latency,...] [--reps 3]
 *     [--targets ours,aedes,mosquitto] [--transport tcp|ws] [--no-warmup] [--warmup-scale 0.2]
 *     [--node-flags "--max-semi-space-size=1"] [--out benchmarks/results] [size flags, --scale X]
 *
 * See benchmarks/broker/README.md.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, release } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { DEFAULT_SIZES, SCENARIOS, isLatencyScenario, parseSizes, runScenario, scaled, sizeFlag, type ScenarioName, type ScenarioResult, type Sizes } from '../../lib/bench/scenarios.js'
import { cpuTimes, systemBusySeconds } from '../../lib/bench/proc.js'
import { DEFAULT_TARGETS, TARGET_NAMES, killAll, startTarget, unavailable, version, type RunningBroker, type TargetName, type TargetOptions } from './targets.js'
import { connectionsTable, latencyTable, throughputTable, type RunRecord } from './report.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../..')
const NOFILE = 20_000
/** Warm-up runs of the latency scenario per target (see the warm-up loop). */
const LATENCY_WARMUP_RUNS = 3

interface RunnerOptions {
  scenarios: ScenarioName[]
  reps: number
  targets: TargetName[]
  warmup: boolean
  warmupScale: number
  out: string
  /** Before each run, wait (up to `quietWaitMs`) until other processes use less than this % of one core. */
  maxBackground: number
  quietWaitMs: number
  target: TargetOptions
  sizes: Sizes
}

const HELP = `Usage: node --import tsx benchmarks/broker/run.ts [options]
  --scenarios a,b     ${SCENARIOS.join(',')} (default: all but the -q2 ones)
  --reps N            repetitions, medians reported (default 3)
  --targets a,b       ${TARGET_NAMES.join(',')} (default: ${DEFAULT_TARGETS.join(',')}, those available)
  --transport tcp|ws  (default tcp)
  --no-warmup         skip the warm-up round;  --warmup-scale F (default 0.2)
  --node-flags "..."  extra node flags for the Node.js brokers
  --out DIR           where the JSON goes (default benchmarks/results)
  --ours-script FILE  run this server script as 'ours' instead of servers/ours.ts
  --tsx               run the Node.js servers through tsx instead of an esbuild bundle (+~35 MB RSS)
  --max-background P  before each run wait until other processes use < P% of one core (default 50)
  --quiet-wait-ms MS  ... but at most this long (default 1000; 0 disables the wait)
  --scale X           multiply the three message counts by X
size flags (defaults): ${(Object.keys(DEFAULT_SIZES) as Array<keyof Sizes>).map((k) => `${sizeFlag(k)} ${DEFAULT_SIZES[k]}`).join(', ')}`

function parseArgs (argv: string[]): RunnerOptions {
  const { sizes, rest } = parseSizes(argv)
  const o: RunnerOptions = {
    scenarios: SCENARIOS.filter((s) => !s.endsWith('-q2')),
    reps: 3,
    targets: [...DEFAULT_TARGETS],
    warmup: true,
    warmupScale: 0.2,
    out: join(ROOT, 'benchmarks/results'),
    maxBackground: 50,
    quietWaitMs: 1_000,
    target: { transport: 'tcp', nodeFlags: [], nofile: NOFILE },
    sizes
  }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    const v = (): string => { const x = rest[++i]; if (x === undefined) throw new Error(`${a} needs a value`); return x }
    if (a === '--scenarios') o.scenarios = v().split(',') as ScenarioName[]
    else if (a === '--reps') o.reps = Number(v())
    else if (a === '--targets') o.targets = v().split(',') as TargetName[]
    else if (a === '--transport') o.target.transport = v() === 'ws' ? 'ws' : 'tcp'
    else if (a === '--no-warmup') o.warmup = false
    else if (a === '--warmup-scale') o.warmupScale = Number(v())
    else if (a === '--node-flags') o.target.nodeFlags = v().split(/\s+/).filter(Boolean)
    else if (a === '--out') o.out = resolve(v())
    else if (a === '--ours-script') o.target.oursScript = resolve(v())
    else if (a === '--tsx') o.target.useTsx = true
    else if (a === '--max-background') o.maxBackground = Number(v())
    else if (a === '--quiet-wait-ms') o.quietWaitMs = Number(v())
    else if (a === '--help' || a === '-h') { process.stdout.write(HELP + '\n'); process.exit(0) }
    else throw new Error(`unknown argument ${a}\n${HELP}`)
  }
  for (const s of o.scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}`)
  for (const t of o.targets) if (!(TARGET_NAMES as readonly string[]).includes(t)) throw new Error(`unknown target ${t}`)
  if (!(o.reps >= 1)) throw new Error('--reps must be at least 1')
  o.target.nofile = Math.max(NOFILE, o.sizes.connections + 1000)
  // Canonical order, whatever order they were given in.
  o.scenarios = SCENARIOS.filter((s) => o.scenarios.includes(s))
  o.targets = TARGET_NAMES.filter((t) => o.targets.includes(t))
  return o
}

/** The soft open-files limit of this process (from /proc/self/limits). */
function openFilesLimit (): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'))
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1])
}

/**
 * Waits until the rest of the machine (everything but this process) has used less than
 * `maxPct`% of one core over a 250 ms window, or `maxWaitMs` passed. Returns the last reading.
 */
async function waitForQuiet (maxPct: number, maxWaitMs: number): Promise<number> {
  const until = performance.now() + maxWaitMs
  let pct = 0
  do {
    const sys0 = systemBusySeconds()
    const self0 = process.cpuUsage()
    await new Promise((resolve) => setTimeout(resolve, 250))
    const self = process.cpuUsage(self0)
    pct = Math.round((systemBusySeconds() - sys0 - (self.user + self.system) / 1e6) / 0.25 * 100)
    if (pct < maxPct) return pct
  } while (performance.now() < until)
  return pct
}

/** Runs one scenario and measures everything else's CPU around it. */
async function measured (name: ScenarioName, b: RunningBroker, o: RunnerOptions, sizes: Sizes, runId: string, rep: number): Promise<RunRecord> {
  if (o.quietWaitMs > 0 && rep >= 0) await waitForQuiet(o.maxBackground, o.quietWaitMs)
  const sys0 = systemBusySeconds()
  const self0 = process.cpuUsage()
  const brk0 = cpuTimes(b.pid)
  const t0 = performance.now()
  let result: ScenarioResult
  try {
    result = await runScenario(name, { host: '127.0.0.1', port: b.port, transport: o.target.transport }, b.pid, sizes, runId)
  } catch (err) {
    result = { scenario: name, ok: false, problem: err instanceof Error ? err.message : String(err) } as unknown as ScenarioResult
  }
  const wall = (performance.now() - t0) / 1000
  const said = b.takeOutput().trim()
  if (!result.ok && said.length > 0) log(`${b.name} said:\n${said.slice(-2000)}`)
  const self = process.cpuUsage(self0)
  const brk1 = cpuTimes(b.pid)
  const brk = brk0 !== undefined && brk1 !== undefined ? brk1.user + brk1.sys - brk0.user - brk0.sys : 0
  const other = systemBusySeconds() - sys0 - (self.user + self.system) / 1e6 - brk
  return { scenario: name, target: b.name, rep, result, backgroundCpuPct: Math.max(0, Math.round(other / wall * 100)) }
}

function describe (r: RunRecord): string {
  const x = r.result as unknown as Record<string, number | string | boolean>
  const fig = isLatencyScenario(r.scenario) ? `p50 ${String(x.p50)} ms, p99 ${String(x.p99)} ms`
    : r.scenario === 'connections' ? `${String(x.connected)} conns, ${String(x.bytesPerConn)} B/conn`
      : `${Number(x.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, ${Number(x.perBrokerCpuSec).toLocaleString('en-US')} per CPU-s`
  return `${r.scenario} ${r.target} rep ${r.rep + 1}: ${fig}, other CPU ${r.backgroundCpuPct}% ${r.result.ok ? 'ok' : `FAIL: ${r.result.problem ?? ''}`}`
}

const log = (s: string): void => { process.stderr.write(s + '\n') }

/** Rotates `xs` by `k` so that no target always runs first. */
function rotate<T> (xs: T[], k: number): T[] {
  const n = xs.length
  return xs.map((_, i) => xs[(i + k) % n]!)
}

async function main (): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const targets = o.targets.filter((t) => {
    const why = unavailable(t, o.target)
    if (why !== undefined) log(`skipping ${t}: ${why}`)
    return why === undefined
  })
  if (targets.length === 0) throw new Error('no target can run')
  if (o.scenarios.includes('connections') && openFilesLimit() < o.sizes.connections + 1000) {
    // Too few file descriptors for the client side: run again under a raised limit, once.
    const want = Math.max(NOFILE, o.sizes.connections + 1000)
    if (process.env.BENCH_BROKER_REEXEC === '1') throw new Error(`open-files limit ${openFilesLimit()} is too low for ${o.sizes.connections} connections`)
    log(`raising the open-files limit to ${want} (ulimit -n) and starting again`)
    const r = spawnSync('bash', ['-c', `ulimit -n ${want} && exec "$@"`, 'bash', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
      { stdio: 'inherit', env: { ...process.env, BENCH_BROKER_REEXEC: '1' } })
    process.exit(r.status ?? 1)
  }
  const started = new Date()
  const records: RunRecord[] = []
  let runNo = 0
  const runId = (): string => `b${process.pid}r${runNo++}`
  const flow = o.scenarios.filter((s) => s !== 'connections')

  if (flow.length > 0) {
    const brokers = new Map<TargetName, RunningBroker>()
    for (const t of [...targets]) {
      try {
        brokers.set(t, await startTarget(t, o.target))
      } catch (err) {
        // e.g. Debian's mosquitto 2.0.11 cannot open a websockets listener: leave that target out.
        log(`skipping ${t}: ${err instanceof Error ? err.message.trim() : String(err)}`)
        targets.splice(targets.indexOf(t), 1)
      }
    }
    if (targets.length === 0) throw new Error('no target could start')
    const get = async (t: TargetName): Promise<RunningBroker> => {
      let b = brokers.get(t)!
      if (!b.alive()) { log(`${t} died; restarting it`); b = await startTarget(t, o.target); brokers.set(t, b) }
      return b
    }
    if (o.warmup) {
      const w = scaled(o.sizes, o.warmupScale)
      for (const t of targets) {
        for (const s of flow) {
          // Latency: three short runs, each with new connections and a new topic, as every measured
          // repetition has. A JIT-compiled broker deoptimizes its hot path on what the first runs did
          // not show it yet (our broker: 18, then 9, then 0 deoptimizations per run), and runs slower
          // until it re-optimized: with one warm-up run, the first measured repetition paid for that.
          for (let round = 0; round < (isLatencyScenario(s) ? LATENCY_WARMUP_RUNS : 1); round++) {
            const r = await measured(s, await get(t), o, w, runId(), -1)
            log(`warm-up ${describe(r)}`)
          }
        }
      }
    }
    for (let rep = 0; rep < o.reps; rep++) {
      for (const [si, s] of flow.entries()) {
        for (const t of rotate(targets, rep + si)) {
          const r = await measured(s, await get(t), o, o.sizes, runId(), rep)
          records.push(r)
          log(describe(r))
        }
      }
    }
    for (const b of brokers.values()) await b.stop()
  }

  if (o.scenarios.includes('connections')) {
    for (let rep = 0; rep < o.reps; rep++) {
      for (const t of rotate(targets, rep)) {
        const b = await startTarget(t, o.target) // fresh process: RSS before is the idle broker's
        await new Promise((resolve) => setTimeout(resolve, 1000))
        const r = await measured('connections', b, o, o.sizes, runId(), rep)
        await b.stop()
        records.push(r)
        log(describe(r))
      }
    }
  }

  const tables: string[] = []
  const tput = flow.filter((s) => !isLatencyScenario(s))
  if (tput.length > 0) tables.push(`Throughput (${o.target.transport}, medians of ${o.reps}; ratios: higher is better)\n\n` + throughputTable(records, tput, targets))
  for (const s of flow.filter(isLatencyScenario)) {
    tables.push(`Latency${s === 'latency-q1' ? ' at QoS 1' : ''} (${o.sizes.latencyRate} msg/s for ${o.sizes.latencySeconds} s, QoS ${s === 'latency-q1' ? 1 : 0}, ` +
      `${o.sizes.payload} B; medians of ${o.reps}; ratios: lower is better)\n\n` + latencyTable(records, targets, s))
  }
  if (o.scenarios.includes('connections')) {
    tables.push(`Idle connections (${o.sizes.connections} at concurrency ${o.sizes.connConcurrency}, held ${o.sizes.holdMs} ms, fresh broker each run; ` +
      `medians of ${o.reps}; ratios: lower is better)\n\n` + connectionsTable(records, targets))
  }
  const report = tables.join('\n\n')
  process.stdout.write('\n' + report + '\n')

  const git = (args: string[]): string => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim() ?? ''
  const commit = git(['rev-parse', 'HEAD']) || 'unknown'
  const dirty = git(['status', '--porcelain']).length > 0
  mkdirSync(o.out, { recursive: true })
  const file = join(o.out, `broker-${started.toISOString().replace(/[:.]/g, '-')}-${commit.slice(0, 8)}${dirty ? '-dirty' : ''}.json`)
  writeFileSync(file, JSON.stringify({
    commit,
    dirty,
    started: started.toISOString(),
    finished: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', kernel: release(), node: process.version },
    versions: Object.fromEntries(targets.map((t) => [t, version(t)])),
    options: { scenarios: o.scenarios, reps: o.reps, targets, transport: o.target.transport, warmup: o.warmup, nodeFlags: o.target.nodeFlags, nodeServersVia: o.target.useTsx === true ? 'tsx' : 'esbuild bundle' },
    sizes: o.sizes,
    records,
    report
  }, null, 2) + '\n')
  log(`\nwrote ${file}`)
}

process.on('SIGINT', () => { killAll(); process.exit(130) })
process.on('SIGTERM', () => { killAll(); process.exit(143) })
process.on('exit', () => killAll())
main().then(() => process.exit(0), (err: unknown) => {
  log(`run: ${err instanceof Error ? err.message : String(err)}`)
  killAll()
  process.exit(1)
})
