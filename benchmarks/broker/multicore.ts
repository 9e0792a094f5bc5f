/**
 * How throughput grows with the number of broker processes on one host (`mqtt-broker --workers N`,
 * docs/multicore.md). Starts one redis-server (a free loopback port, a temporary directory, no
 * persistence), then one `mqtt-broker --redis URL --workers N` per N in 1…max (each on its own port
 * and Redis prefix; N = 1 is one process on the same redis backend), plus one single process on the
 * memory backend for reference, and runs the throughput scenarios against each, interleaved
 * (the order rotates per repetition), with a warm-up round. Reports medians of deliveries/s and the
 * CPU of every process involved (primary, workers, redis-server), from /proc.
 *
 *   node --import tsx benchmarks/broker/multicore.ts [--max-workers N] [--reps 3]
 *     [--scenarios fanin-q0,pairs-q0,pairs-q1,fanout-q1] [--no-memory] [size flags of run.ts, --scale X]
 *     [--cpu-cap 0.3] [--node-flags "--cpu-prof --cpu-prof-dir=DIR"] [--base DIR]
 *
 * `--cpu-cap F` gives every broker process (each worker, the primary, the single processes) a CPU
 * budget of its own of F CPUs (a cgroup with a CFS quota, cpu-budget.ts; root only): a stand-in for
 * a core per process on a small shared host. redis-server and the load generator stay uncapped; the
 * table reports their CPU, the machine's idle CPU during each run (the headroom: the rows say how
 * throughput grows with processes only while it stays above zero), and how long the budgets held
 * the broker processes back (throttled).
 *
 * The broker command runs as one esbuild bundle (as in run.ts), so the workers cluster.fork the
 * bundle, not a TypeScript loader. Every child is stopped by its pid at the end.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseSizes, runScenario, scaled, type ScenarioName, type Sizes } from '../../lib/bench/scenarios.js'
import type { ThroughputResult } from '../../lib/bench/throughput.js'
import { cpuTimes } from '../../lib/bench/proc.js'
import { cpuBudgets, sweepStale, throttledSeconds, type CpuBudgets } from './cpu-budget.js'
import { median, table } from '../../lib/bench/results.js'
import { freePort } from './targets.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')
const children = new Set<ChildProcess>()
const tempDirs: string[] = []
const tempFiles: string[] = []
/** The cgroups of `--cpu-cap`, if any. */
let budgets: CpuBudgets | undefined

/** A broker under test: its primary pid and label. */
interface Target {
  label: string
  processes: number
  port: number
  child: ChildProcess
  output: () => string
  /** Its processes' cgroup directories under `--cpu-cap` (empty without). */
  groups: string[]
}

function killAll (): void {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) { try { process.kill(c.pid, 'SIGKILL') } catch { /* gone */ } }
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true })
  for (const f of tempFiles) rmSync(f, { force: true })
  budgets?.release()
}

/** Busy and total CPU ticks of the whole machine so far (the first line of /proc/stat). */
function machineTicks (): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'latin1').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = fields.reduce((a, b) => a + b, 0)
  // idle + iowait are not busy.
  return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total }
}

/** Pids of `pid` and its descendants (from /proc/<n>/stat's ppid field). */
function processTree (pid: number): number[] {
  const parents = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = parents.get(ppid) ?? []
      list.push(Number(name))
      parents.set(ppid, list)
    } catch { /* gone */ }
  }
  const out = [pid]
  for (let i = 0; i < out.length; i++) out.push(...(parents.get(out[i]!) ?? []))
  return out
}

function cpuOf (pids: number[]): number {
  let total = 0
  for (const pid of pids) { const t = cpuTimes(pid); if (t !== undefined) total += t.user + t.sys }
  return total
}

/** Redis command calls so far per command (INFO commandstats; commands run by scripts included). */
function redisCalls (port: number): Map<string, number> {
  const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { encoding: 'utf8' })
  const calls = new Map<string, number>()
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]))
  return calls
}

function sum (calls: Map<string, number>): number {
  let total = 0
  for (const n of calls.values()) total += n
  return total
}

/** `after - before` per command, the largest first. */
function callDelta (before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after].map(([k, v]): [string, number] => [k, v - (before.get(k) ?? 0)]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])
}

/**
 * Waits until Redis is quiet (fewer than 100 calls in 250 ms, at most 30 s): a QoS 0 publish does
 * not wait for Redis, so its Redis work may trail the run; it is part of the run's cost.
 */
async function redisQuiet (port: number): Promise<void> {
  let last = sum(redisCalls(port))
  for (let i = 0; i < 120; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const now = sum(redisCalls(port))
    if (now - last < 100) return
    last = now
  }
}

async function bundle (tree = ROOT, tag = 'head'): Promise<string> {
  const esbuild = await import('esbuild')
  const out = join(ROOT, '.tmp/bench-broker', `mqtt-broker-${tag}-${process.pid}.mjs`)
  tempFiles.push(out)
  await esbuild.build({ entryPoints: [join(tree, 'bin/mqtt-broker.ts')], outfile: out, bundle: true, platform: 'node',
    format: 'esm', target: 'node20', packages: 'external', logLevel: 'silent' })
  return out
}

function spawnTracked (argv: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', ['-c', 'ulimit -n 20000 && exec "$@"', 'bash', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let text = ''
  const keep = (b: Buffer): void => { text = (text + b.toString()).slice(-16384) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return { child, output: () => text }
}

async function waitFor (what: string, output: () => string, pattern: RegExp, child: ChildProcess, ms = 180_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms
  for (;;) {
    const m = pattern.exec(output())
    if (m !== null) return m
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function startRedis (): Promise<{ url: string; pid: number; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
  tempDirs.push(dir)
  const port = await freePort()
  const r = spawnTracked(['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir])
  await waitFor('redis-server', r.output, /Ready to accept connections/, r.child, 15_000)
  return { url: `redis://127.0.0.1:${port}`, pid: r.child.pid!, port }
}

/** V8/Node flags for every broker process (`--node-flags "--cpu-prof --cpu-prof-dir=DIR"`); workers inherit them. */
let nodeFlags: string[] = []
/** `--cpu-cap F`: the CPU budget of each broker process, in CPUs. */
let cpuCap: number | undefined

async function startBroker (bin: string, label: string, processes: number, extra: string[]): Promise<Target> {
  const flags = ['--port', '0', '--log-level', 'warn', '--sys-interval', '0', '--max-outgoing-queue', '1000000', '--max-publisher-pause', '600000']
  const { child, output } = spawnTracked([process.execPath, ...nodeFlags, bin, ...flags, ...extra])
  const m = await waitFor(label, output, /listening on tcp:\/\/127\.0\.0\.1:(\d+)/, child)
  const groups: string[] = []
  if (budgets !== undefined && cpuCap !== undefined) {
    // The primary and every worker (all listen once the line above is printed), each on its own budget.
    for (const pid of processTree(child.pid!)) {
      budgets.cap(pid, cpuCap)
      groups.push(`${budgets.root}/p${pid}`)
    }
  }
  return { label, processes, port: Number(m[1]), child, output, groups }
}

async function main (): Promise<void> {
  const { sizes, rest } = parseSizes(process.argv.slice(2))
  let maxWorkers = Math.max(2, availableParallelism())
  let reps = 3
  let memory = true
  let scenarios: ScenarioName[] = ['fanin-q0', 'pairs-q0', 'pairs-q1', 'fanout-q1']
  let baseTree: string | undefined
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    const v = (): string => { const x = rest[++i]; if (x === undefined) throw new Error(`${a} needs a value`); return x }
    if (a === '--max-workers') maxWorkers = Number(v())
    else if (a === '--reps') reps = Number(v())
    else if (a === '--scenarios') scenarios = v().split(',') as ScenarioName[]
    else if (a === '--no-memory') memory = false
    else if (a === '--base') baseTree = v()
    else if (a === '--node-flags') nodeFlags = v().split(/\s+/).filter(Boolean)
    else if (a === '--cpu-cap') {
      cpuCap = Number(v())
      if (!(cpuCap > 0 && cpuCap <= availableParallelism())) throw new Error(`--cpu-cap needs a number of CPUs in (0, ${availableParallelism()}], got ${rest[i]}`)
    }
    else throw new Error(`unknown argument ${a} (see the header of benchmarks/broker/multicore.ts)`)
  }
  if (cpuCap !== undefined) {
    sweepStale()
    const b = cpuBudgets()
    if (typeof b === 'string') throw new Error(`--cpu-cap: ${b}`)
    budgets = b
    process.stderr.write(`every broker process capped at ${cpuCap} CPU (cgroups under ${b.root}); redis-server and the load generator uncapped\n`)
  }
  const bin = await bundle()
  const baseBin = baseTree === undefined ? undefined : await bundle(baseTree, 'base')
  const redis = await startRedis()
  const targets: Target[] = []
  if (memory) targets.push(await startBroker(bin, 'memory, 1 process', 1, []))
  for (const [tag, b] of [['', bin], ['base ', baseBin]] as const) {
    if (b === undefined) continue
    for (let n = 1; n <= maxWorkers; n++) {
      targets.push(await startBroker(b, `${tag}redis, ${n} process${n > 1 ? 'es' : ''}`, n,
        ['--redis', redis.url, '--redis-prefix', `mc${tag.trim()}${n}`, ...(n > 1 ? ['--workers', String(n)] : [])]))
    }
  }
  interface Run { result: ThroughputResult; cpu: number; redisCpu: number; calls: number; top: [string, number][]; loadCpu: number; idle: number; throttled: number }
  const throttled = (t: Target): number[] => t.groups.map((g) => throttledSeconds(g) ?? 0)
  const run = async (t: Target, name: ScenarioName, s: Sizes, id: string): Promise<Run> => {
    await redisQuiet(redis.port)
    const pids = processTree(t.child.pid!)
    const before = cpuOf(pids)
    const redisBefore = cpuOf([redis.pid])
    const callsBefore = redisCalls(redis.port)
    const loadBefore = process.cpuUsage()
    const ticksBefore = machineTicks()
    const throttledBefore = throttled(t)
    // CPU and Redis calls are read once Redis is quiet again (the work a QoS 0 flood left behind).
    const measured = async (result: ThroughputResult): Promise<Run> => {
      // The load generator's CPU and the machine's idle share: from before connecting to the end of the run.
      const load = process.cpuUsage(loadBefore)
      const ticks = machineTicks()
      const idle = 1 - (ticks.busy - ticksBefore.busy) / Math.max(ticks.total - ticksBefore.total, 1)
      const loadCpu = (load.user + load.system) / 1e6
      // The most held back of the target's processes (the primary of a cluster is mostly idle).
      const held = Math.max(0, ...throttled(t).map((x, i) => x - (throttledBefore[i] ?? 0)))
      await redisQuiet(redis.port)
      const top = callDelta(callsBefore, redisCalls(redis.port))
      return { result, cpu: cpuOf(pids) - before, redisCpu: cpuOf([redis.pid]) - redisBefore, calls: top.reduce((a, [, n]) => a + n, 0), top, loadCpu, idle, throttled: held }
    }
    try {
      return await measured(await runScenario(name, { host: '127.0.0.1', port: t.port, transport: 'tcp' }, undefined, s, id) as ThroughputResult)
    } catch (error) {
      // A refused or dropped connection (an overloaded target) is a failed run, not the end of the benchmark.
      const problem = error instanceof Error ? error.message : String(error)
      return await measured({ ok: false, problem, deliveriesPerSec: 0, deliveries: 0, seconds: 1 } as ThroughputResult)
    }
  }
  process.stderr.write(`warm-up (${targets.length} targets)\n`)
  for (const t of targets) for (const name of scenarios) await run(t, name, scaled(sizes, 0.2), `mcw${t.processes}${name}`)
  interface Rec { rate: number[]; cpu: number[]; redisCpu: number[]; perCpu: number[]; calls: number[]; ok: boolean[]; loadCpu: number[]; idle: number[]; throttled: number[] }
  const records = new Map<string, Rec>()
  for (let r = 0; r < reps; r++) {
    for (const [si, name] of scenarios.entries()) {
      const order = targets.map((_, i) => targets[(i + r + si) % targets.length]!)
      for (const t of order) {
        const { result, cpu, redisCpu, calls, top, loadCpu, idle, throttled: held } = await run(t, name, sizes, `mc${r}${si}${t.processes}${t.label.startsWith('base') ? 'b' : ''}`)
        const key = `${name}\u0000${t.label}`
        const rec = records.get(key) ?? { rate: [], cpu: [], redisCpu: [], perCpu: [], calls: [], ok: [], loadCpu: [], idle: [], throttled: [] }
        const seconds = Math.max(result.seconds, 1e-9)
        rec.rate.push(result.deliveriesPerSec)
        rec.cpu.push(cpu / seconds)
        rec.redisCpu.push(redisCpu / seconds)
        // Deliveries per CPU-second of every process of the target (broker processes + redis-server).
        rec.perCpu.push(result.deliveries / Math.max(cpu + redisCpu, 0.01))
        rec.calls.push(result.deliveries > 0 ? calls / result.deliveries : NaN)
        rec.ok.push(result.ok)
        rec.loadCpu.push(loadCpu / seconds)
        rec.idle.push(idle)
        rec.throttled.push(held / seconds)
        records.set(key, rec)
        process.stderr.write(`${name} ${t.label}: ${Math.round(result.deliveriesPerSec)}/s, ${Math.round(result.deliveries / Math.max(cpu + redisCpu, 0.01))} per CPU-s ` +
          `(broker ${Math.round(cpu / seconds * 100)} %, redis ${Math.round(redisCpu / seconds * 100)} %, load generator ${Math.round(loadCpu / seconds * 100)} %, ` +
          `machine idle ${Math.round(idle * 100)} %${budgets === undefined ? '' : `, throttled ${Math.round(held / seconds * 100)} %`}), ${(calls / Math.max(result.deliveries, 1)).toFixed(2)} Redis calls/delivery ` +
          `[${top.slice(0, 5).map(([k, n]) => `${k} ${(n / Math.max(result.deliveries, 1)).toFixed(2)}`).join(', ')}] ${result.ok ? 'ok' : result.problem ?? 'FAIL'}\n`)
        if (!result.ok) process.stderr.write(`  ${t.label} said: ${t.output().split('\n').slice(-6).join('\n  ')}\n`)
      }
    }
  }
  const rows: string[][] = []
  for (const name of scenarios) {
    const base = median(records.get(`${name}\u0000redis, 1 process`)?.rate ?? [NaN])
    for (const t of targets) {
      const rec = records.get(`${name}\u0000${t.label}`)!
      const m = median(rec.rate)
      const bad = rec.ok.filter((ok) => !ok).length
      rows.push([name, t.label, Math.round(m).toLocaleString('en-US'),
        `${Math.round(Math.min(...rec.rate)).toLocaleString('en-US')}–${Math.round(Math.max(...rec.rate)).toLocaleString('en-US')}`,
        (m / base).toFixed(2), Math.round(median(rec.perCpu)).toLocaleString('en-US'), `${Math.round(median(rec.cpu) * 100)}`,
        `${Math.round(median(rec.cpu) * 100 / t.processes)}`, `${Math.round(median(rec.redisCpu) * 100)}`, `${Math.round(median(rec.loadCpu) * 100)}`,
        `${Math.round(median(rec.idle) * 100)}`, ...(budgets === undefined ? [] : [`${Math.round(median(rec.throttled) * 100)}`]),
        median(rec.calls).toFixed(3), bad === 0 ? 'ok' : `FAIL ${bad}/${rec.ok.length}`])
    }
  }
  if (cpuCap !== undefined) process.stdout.write(`Every broker process capped at ${cpuCap} CPU (a cgroup each); redis-server and the load generator uncapped.\n`)
  process.stdout.write(table(['scenario', 'broker', 'deliveries/s', 'min–max', '× redis 1 process', 'per CPU-s (broker + redis)',
    'broker CPU %', 'per process %', 'redis CPU %', 'load gen. CPU %', 'machine idle %', ...(budgets === undefined ? [] : ['throttled %']),
    'Redis calls/delivery', 'runs'], rows) + '\n')
  for (const t of targets) t.child.kill('SIGTERM')
  await Promise.all(targets.map((t) => new Promise((resolve) => { if (t.child.exitCode !== null) resolve(undefined); else t.child.once('exit', resolve) })))
  rmSync(bin, { force: true })
  budgets?.release()
}

process.on('SIGINT', () => { killAll(); process.exit(130) })
process.on('SIGTERM', () => { killAll(); process.exit(143) })
process.on('exit', () => killAll())
main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`multicore: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
})
