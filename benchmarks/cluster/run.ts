/**
 * Cluster benchmark: our broker on the Redis backend (one and two processes) vs one MemoryBackend
 * process vs Aedes with aedes-persistence-redis + mqemitter-redis (one and two processes), side by
 * side in one run, fan-in and fan-out at QoS 1 and 0. See README.md.
 *
 *   node --import tsx benchmarks/cluster/run.ts [--reps 3] [--configs a,b] [--scenarios a,b]
 *     [--fanin-publishers 4] [--fanin-count 10000] [--fanout-subscribers 50] [--fanout-count 1000]
 *
 * Prints progress on stderr and a Markdown report on stdout; writes the records to
 * benchmarks/results/cluster-<time>.json.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from '@redis/client'
import { freePort, startRedisServer, type RedisServer } from '../../spec/helpers/redis-server.js'
import { runClusterThroughput, type ClusterRunResult } from './throughput.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..')

/** A configuration: which server script, how many processes. */
interface Config {
  name: string
  script: string
  processes: number
  redis: boolean
}

const CONFIGS: Config[] = [
  { name: 'memory-1', script: 'benchmarks/broker/servers/ours.ts', processes: 1, redis: false },
  { name: 'redis-1', script: 'benchmarks/cluster/servers/ours-redis.ts', processes: 1, redis: true },
  { name: 'redis-2', script: 'benchmarks/cluster/servers/ours-redis.ts', processes: 2, redis: true },
  { name: 'aedes-redis-1', script: 'benchmarks/cluster/servers/aedes-redis.ts', processes: 1, redis: true },
  { name: 'aedes-redis-2', script: 'benchmarks/cluster/servers/aedes-redis.ts', processes: 2, redis: true }
]

const SCENARIOS = ['fanin-q1', 'fanout-q1', 'fanin-q0', 'fanout-q0'] as const
type Scenario = (typeof SCENARIOS)[number]

interface Options {
  reps: number
  configs: string[]
  scenarios: Scenario[]
  faninPublishers: number
  faninCount: number
  fanoutSubscribers: number
  fanoutCount: number
}

function parseArgs(args: string[]): Options {
  const o: Options = {
    reps: 3,
    configs: CONFIGS.map((c) => c.name),
    scenarios: [...SCENARIOS],
    faninPublishers: 4,
    faninCount: 10_000,
    fanoutSubscribers: 50,
    fanoutCount: 1_000
  }
  for (let i = 0; i < args.length; i++) {
    const flag = args[i]
    const value = args[++i] ?? ''
    if (flag === '--reps') o.reps = Number(value)
    else if (flag === '--configs') o.configs = value.split(',')
    else if (flag === '--scenarios') o.scenarios = value.split(',') as Scenario[]
    else if (flag === '--fanin-publishers') o.faninPublishers = Number(value)
    else if (flag === '--fanin-count') o.faninCount = Number(value)
    else if (flag === '--fanout-subscribers') o.fanoutSubscribers = Number(value)
    else if (flag === '--fanout-count') o.fanoutCount = Number(value)
    else throw new Error(`unknown flag ${String(flag)} (see the header of benchmarks/cluster/run.ts)`)
  }
  for (const c of o.configs) if (!CONFIGS.some((k) => k.name === c)) throw new Error(`unknown config ${c}`)
  for (const s of o.scenarios) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}`)
  return o
}

const children = new Set<ChildProcess>()

/** Starts one server process and waits for `listening`. */
async function startServer(config: Config, redis: RedisServer, node: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort()
  // BENCH_NODE_FLAGS: extra node flags for the servers (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const flags = (process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter((f) => f !== '')
  const args = [...flags, '--import', 'tsx', join(ROOT, config.script), '--port', String(port)]
  if (config.redis) args.push('--redis', redis.url, '--prefix', 'bench', '--node', node)
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let output = ''
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${config.name} did not start: ${output}`)), 30_000)
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('listening')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${config.name} exited with ${code}: ${output}`))
    })
  })
  return { child, port }
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 4000)
  await exited
  clearTimeout(timer)
}

function stopAllNow(): void {
  for (const child of children) child.kill('SIGKILL')
}
process.on('SIGINT', () => {
  stopAllNow()
  process.exit(130)
})

async function flush(url: string): Promise<void> {
  const client = createClient({ url })
  await client.connect()
  await client.sendCommand(['FLUSHALL'])
  await client.close()
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length === 0 ? 0 : s.length % 2 === 1 ? (s[m] as number) : Math.round(((s[m - 1] as number) + (s[m] as number)) / 2)
}

interface Record {
  config: string
  scenario: Scenario
  rep: number
  result: ClusterRunResult
}

async function runScenario(o: Options, scenario: Scenario, ports: number[], pids: number[], runId: string, scale = 1): Promise<ClusterRunResult> {
  const [topology, q] = scenario.split('-') as ['fanin' | 'fanout', string]
  return await runClusterThroughput({
    targets: ports.map((port) => ({ host: '127.0.0.1', port, transport: 'tcp' as const })),
    pids,
    topology,
    qos: q === 'q1' ? 1 : 0,
    width: topology === 'fanin' ? o.faninPublishers : o.fanoutSubscribers,
    count: Math.max(50, Math.round((topology === 'fanin' ? o.faninCount : o.fanoutCount) * scale)),
    payload: 64,
    window: 64,
    batch: 64,
    runId,
    timeoutMs: 120_000,
    stallMs: 10_000
  })
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  const redis = await startRedisServer()
  const records: Record[] = []
  try {
    for (const name of o.configs) {
      const config = CONFIGS.find((c) => c.name === name) as Config
      await flush(redis.url)
      const servers = []
      for (let k = 0; k < config.processes; k++) servers.push(await startServer(config, redis, `${config.name}-${k}`))
      const ports = servers.map((s) => s.port)
      const pids = servers.map((s) => s.child.pid as number)
      try {
        // Warm-up (JIT, connections to Redis), not recorded.
        for (const scenario of o.scenarios) await runScenario(o, scenario, ports, pids, `w${config.name.replace(/\W/g, '')}${scenario.replace('-', '')}`, 0.1)
        for (let rep = 0; rep < o.reps; rep++) {
          for (const scenario of o.scenarios) {
            const runId = `r${rep}${config.name.replace(/\W/g, '')}${scenario.replace('-', '')}`
            const result = await runScenario(o, scenario, ports, pids, runId)
            records.push({ config: config.name, scenario, rep, result })
            process.stderr.write(
              `${config.name} ${scenario} #${rep}: ${result.deliveriesPerSec} deliveries/s, cpu ${result.brokerCpuPct}%${result.ok ? '' : ` (${result.problem ?? 'not ok'})`}\n`
            )
          }
        }
      } finally {
        await Promise.all(servers.map((s) => stopServer(s.child)))
      }
    }
  } finally {
    stopAllNow()
    await redis.dispose()
  }
  const report = renderReport(o, records)
  process.stdout.write(report)
  const dir = join(ROOT, 'benchmarks/results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ options: o, node: process.version, cpus: cpus().length, records, report }, null, 2))
  process.stderr.write(`records: ${file}\n`)
}

/** The Markdown report: median deliveries/s per configuration and scenario, and the ratios. */
function renderReport(o: Options, records: Record[]): string {
  const cell = (config: string, scenario: Scenario): { rate: number; cpu: number; ok: boolean } => {
    const rs = records.filter((r) => r.config === config && r.scenario === scenario)
    return { rate: median(rs.map((r) => r.result.deliveriesPerSec)), cpu: median(rs.map((r) => r.result.brokerCpuPct)), ok: rs.every((r) => r.result.ok) }
  }
  const lines: string[] = []
  lines.push(`## Cluster benchmark (median of ${o.reps}; deliveries/s, broker CPU % of one core in brackets)`, '')
  lines.push(
    `fan-in: ${o.faninPublishers} publishers × ${o.faninCount} → 1 subscriber; fan-out: 1 publisher × ${o.fanoutCount} → ${o.fanoutSubscribers} subscribers; 64 B payloads, QoS 1 window 64. Clients spread over the processes (client k on process k mod N). ${cpus().length} CPUs, Node ${process.version}.`,
    ''
  )
  lines.push(`| scenario | ${o.configs.join(' | ')} |`, `|---|${o.configs.map(() => '---:').join('|')}|`)
  for (const s of o.scenarios) {
    lines.push(
      `| ${s} | ${o.configs
        .map((c) => {
          const x = cell(c, s)
          return `${x.rate.toLocaleString('en-US')} (${x.cpu}%)${x.ok ? '' : ' ⚠'}`
        })
        .join(' | ')} |`
    )
  }
  const pairs: [string, string][] = [
    ['redis-1', 'aedes-redis-1'],
    ['redis-2', 'aedes-redis-2'],
    ['redis-2', 'redis-1'],
    ['redis-1', 'memory-1']
  ].filter(([a, b]) => o.configs.includes(a as string) && o.configs.includes(b as string)) as [string, string][]
  if (pairs.length > 0) {
    lines.push('', '| ratio | ' + o.scenarios.join(' | ') + ' |', `|---|${o.scenarios.map(() => '---:').join('|')}|`)
    for (const [a, b] of pairs) {
      lines.push(`| ${a} / ${b} | ${o.scenarios.map((s) => {
        const d = cell(b, s).rate
        return d > 0 ? `${(cell(a, s).rate / d).toFixed(2)}×` : '–'
      }).join(' | ')} |`)
    }
  }
  if (records.some((r) => !r.result.ok)) lines.push('', '⚠: at least one run lost or duplicated deliveries, or stalled (see the JSON records).')
  lines.push('')
  return lines.join('\n')
}

await main()
