/**
 * What watching the broker costs in throughput: fan-in against the plain broker and against the
 * same broker with its HTTP listener watched (servers/ours-observed.ts), all variants running at
 * once as separate processes and measured in interleaved rounds (every round runs each variant once,
 * in rotated order), so that neighbours' load and thermal drift hit every variant alike. Reports per
 * variant the medians of deliveries/s and deliveries per broker CPU-second, and the median of the
 * per-round ratios to `plain` (each ratio compares two repetitions run back to back).
 *
 *   node --import tsx benchmarks/broker/observed-ab.ts [--variants plain,external,in-process,idle]
 *     [--rounds 8] [--scenario fanin-q0] [--scale 20] [--node-flags "..."] [--quiet-wait-ms 15000] [--tsx]
 *
 * Variants: `plain` (servers/ours.ts); `external` (HTTP listener scraped every second from this
 * process, as Prometheus and an open dashboard would: /metrics, /api/v1/overview,
 * /api/v1/clients?limit=200); `in-process` (the same requests made by the broker's own process);
 * `idle` (listener and metrics registry, no requests).
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isLatencyScenario, parseSizes, runScenario, scaled, SCENARIOS, type ScenarioName } from '../../lib/bench/scenarios.js'
import type { ThroughputResult } from '../../lib/bench/throughput.js'
import { systemBusySeconds } from '../../lib/bench/proc.js'
import { median } from '../../lib/bench/results.js'
import { killAll, startTarget, type RunningBroker } from './targets.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const VARIANTS = ['plain', 'external', 'in-process', 'idle'] as const
type Variant = (typeof VARIANTS)[number]
/** One observation round: a scrape plus what an open dashboard asks each second. */
const PATHS = ['/metrics', '/api/v1/overview', '/api/v1/clients?limit=200']

const { sizes, rest } = parseSizes(process.argv.slice(2))
let variants: Variant[] = ['plain', 'external', 'in-process']
let rounds = 8
let scenario: ScenarioName = 'fanin-q0'
let nodeFlags: string[] = []
let quietWaitMs = 15_000
let maxBackground = 60
let useTsx = false
for (let i = 0; i < rest.length; i++) {
  const a = rest[i]
  const v = (): string => {
    const x = rest[++i]
    if (x === undefined) throw new Error(`${a} needs a value`)
    return x
  }
  if (a === '--variants') variants = v().split(',') as Variant[]
  else if (a === '--rounds') rounds = Number(v())
  else if (a === '--scenario') scenario = v() as ScenarioName
  else if (a === '--node-flags') nodeFlags = v().split(/\s+/).filter(Boolean)
  else if (a === '--quiet-wait-ms') quietWaitMs = Number(v())
  else if (a === '--max-background') maxBackground = Number(v())
  else if (a === '--tsx') useTsx = true
  else throw new Error(`unknown argument ${a}`)
}
for (const x of variants) if (!VARIANTS.includes(x)) throw new Error(`unknown variant ${x} (known: ${VARIANTS.join(', ')})`)
if (!SCENARIOS.includes(scenario) || isLatencyScenario(scenario) || scenario === 'connections') throw new Error(`--scenario must be a throughput scenario`)
if (!(rounds >= 1)) throw new Error('--rounds must be at least 1')

const log = (s: string): void => {
  process.stderr.write(s + '\n')
}

/** Waits until the rest of the machine uses less than `maxPct` % of one core (or `maxWaitMs` passed). */
async function waitForQuiet(maxPct: number, maxWaitMs: number): Promise<void> {
  const until = performance.now() + maxWaitMs
  do {
    const sys0 = systemBusySeconds()
    const self0 = process.cpuUsage()
    await new Promise((resolve) => setTimeout(resolve, 250))
    const self = process.cpuUsage(self0)
    if (((systemBusySeconds() - sys0 - (self.user + self.system) / 1e6) / 0.25) * 100 < maxPct) return
  } while (performance.now() < until)
}

const brokers = new Map<Variant, RunningBroker>()
let scraper: ReturnType<typeof setInterval> | undefined
let scrapes = 0
process.on('SIGINT', () => {
  killAll()
  process.exit(130)
})
process.on('exit', () => killAll())

// The same for every variant: a machine busy with other jobs stretches the event loop past the
// overload threshold (1 s), and the shedding that follows would lose repetitions at random.
process.env.BENCH_MAX_EVENT_LOOP_LAG = '0'
try {
  for (const variant of variants) {
    if (variant === 'plain') delete process.env.BENCH_OBSERVER
    else process.env.BENCH_OBSERVER = variant
    const script = join(HERE, 'servers', variant === 'plain' ? 'ours.ts' : 'ours-observed.ts')
    const broker = await startTarget('ours', { transport: 'tcp', nodeFlags, nofile: 20_000, oursScript: script, useTsx })
    brokers.set(variant, broker)
    if (variant === 'external') {
      await new Promise((resolve) => setTimeout(resolve, 200))
      const url = /http (\S+)/.exec(broker.takeOutput())?.[1]
      if (url === undefined) throw new Error('the external variant did not print its HTTP url')
      scraper = setInterval(() => {
        void Promise.all(
          PATHS.map(async (path) => {
            const response = await fetch(url + path)
            await response.arrayBuffer()
            if (!response.ok) throw new Error(`${path}: ${response.status}`)
          })
        ).then(
          () => scrapes++,
          (error: unknown) => log(`scrape failed: ${String(error)}`)
        )
      }, 1000)
    }
  }
  /** One repetition; undefined when it failed (told, and left out of the figures). */
  const run = async (variant: Variant, s: typeof sizes, id: string): Promise<ThroughputResult | undefined> => {
    const broker = brokers.get(variant) as RunningBroker
    if (!broker.alive()) throw new Error(`${variant} died:\n${broker.takeOutput()}`)
    const result = (await runScenario(scenario, { host: '127.0.0.1', port: broker.port, transport: 'tcp' }, broker.pid, s, id)) as ThroughputResult
    if (result.ok) return result
    log(`${variant} failed: ${result.problem ?? 'failed'}\n${broker.takeOutput().slice(-1000)}`)
    return undefined
  }
  for (const variant of variants) await run(variant, scaled(sizes, 0.2), `w-${variant}`)
  const perCpu = new Map<Variant, number[]>(variants.map((x) => [x, []]))
  const perSec = new Map<Variant, number[]>(variants.map((x) => [x, []]))
  const ratios = new Map<Variant, number[]>(variants.map((x) => [x, []]))
  for (let round = 0; round < rounds; round++) {
    const order = variants.map((_, i) => variants[(i + round) % variants.length] as Variant)
    const inRound = new Map<Variant, number>()
    for (const variant of order) {
      if (quietWaitMs > 0) await waitForQuiet(maxBackground, quietWaitMs)
      const r = await run(variant, sizes, `r${round}-${variant}`)
      if (r === undefined) continue
      perCpu.get(variant)?.push(r.perBrokerCpuSec)
      perSec.get(variant)?.push(r.deliveriesPerSec)
      inRound.set(variant, r.perBrokerCpuSec)
      log(`round ${round + 1} ${variant}: ${r.deliveriesPerSec.toLocaleString('en-US')} deliveries/s, ${r.perBrokerCpuSec.toLocaleString('en-US')} per CPU-s`)
    }
    const base = inRound.get('plain')
    if (base !== undefined) for (const [variant, value] of inRound) ratios.get(variant)?.push(value / base)
  }
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
  const lines = [
    `${scenario}, ${rounds} rounds, ${sizes.faninCount.toLocaleString('en-US')} messages per repetition${nodeFlags.length > 0 ? `, node ${nodeFlags.join(' ')}` : ''}`,
    '',
    '| variant | deliveries/s (median) | per broker CPU-s (median) | per CPU-s vs plain, median of rounds (min–max) |',
    '|---|---:|---:|---:|'
  ]
  for (const variant of variants) {
    const r = ratios.get(variant) ?? []
    const ratio = r.length === 0 ? 'n/a' : `${median(r).toFixed(3)} (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})`
    lines.push(`| ${variant} | ${fmt(median(perSec.get(variant) ?? []))} | ${fmt(median(perCpu.get(variant) ?? []))} | ${ratio} |`)
  }
  if (scraper !== undefined) lines.push('', `external scraper: ${scrapes} rounds`)
  process.stdout.write(`\n${lines.join('\n')}\n`)
} finally {
  if (scraper !== undefined) clearInterval(scraper)
  for (const broker of brokers.values()) await broker.stop()
}
process.exit(0)
