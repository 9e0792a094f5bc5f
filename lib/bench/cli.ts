/**
 * `mqtt-bench`: the project's load generator as a command (docs/cli.md).
 *
 *   mqtt-bench [run] [URL] [options]          scenarios against one broker
 *   mqtt-bench compare NAME=URL NAME=URL ...  several brokers, interleaved, with ratios
 *   mqtt-bench plot FILE... --out chart.svg   SVG charts from result files (JSON lines)
 *
 * Loopback only unless --allow-remote. Results: a table on stdout (or JSON lines with --json),
 * JSON lines appended to --out FILE, a progress line on stderr.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { UsageError, flag, int, parseArgs, str } from '../cli/args.js'
import type { FlagSpec } from '../cli/args.js'
import type { CommandIo } from '../cli/io.js'
import { plotSvg } from './plot.js'
import { compareTable, parseRecords, resultTable } from './results.js'
import type { BenchRecord } from './results.js'
import { DEFAULT_SIZES, SCENARIOS, parseSizes, runScenario, sizeFlag } from './scenarios.js'
import type { ScenarioName, Sizes } from './scenarios.js'
import { parseTarget } from './target.js'
import type { ConnTarget } from './conn.js'

const FLAGS: FlagSpec[] = [
  { key: 'scenarios', names: ['scenarios', 's'], arity: 1 },
  { key: 'reps', names: ['reps', 'r'], arity: 1 },
  { key: 'pid', names: ['pid'], arity: 1 },
  { key: 'json', names: ['json'], arity: 0 },
  { key: 'out', names: ['out', 'o'], arity: 1 },
  { key: 'allowRemote', names: ['allow-remote'], arity: 0 },
  { key: 'ca', names: ['ca', 'cafile'], arity: 1 },
  { key: 'insecure', names: ['insecure'], arity: 0 },
  { key: 'title', names: ['title'], arity: 1 },
  { key: 'quiet', names: ['quiet', 'q'], arity: 0 },
  { key: 'help', names: ['help'], arity: 0 }
]

const DEFAULT_SCENARIOS: ScenarioName[] = ['fanin-q0', 'fanin-q1', 'fanout-q0', 'fanout-q1', 'pairs-q0', 'pairs-q1', 'latency']

/** Run mqtt-bench; resolves with the exit status (0 ok, 1 a run failed or a broker was unreachable, 2 usage). */
export async function runBench(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    const args = [...argv]
    const command = args[0] === 'run' || args[0] === 'compare' || args[0] === 'plot' ? args.shift()! : 'run'
    const { sizes, rest } = parseSizes(args)
    const parsed = parseArgs(rest, FLAGS)
    if (flag(parsed, 'help')) {
      io.stdout.write(benchHelp())
      return 0
    }
    if (command === 'plot') return plot(parsed.positionals, str(parsed, 'out'), str(parsed, 'title'), io)
    const scenarios = (str(parsed, 'scenarios')?.split(',') ?? DEFAULT_SCENARIOS).map((s) => (s === 'connect-storm' || s === 'idle' ? 'connections' : s)) as ScenarioName[]
    for (const s of scenarios) if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`unknown scenario ${s} (${SCENARIOS.join(', ')})`)
    const reps = int(parsed, 'reps', 1, 1000, '--reps') ?? (command === 'compare' ? 3 : 1)
    const pid = int(parsed, 'pid', 1, 2 ** 31, '--pid')
    const targetOptions = { allowRemote: flag(parsed, 'allowRemote'), caFile: str(parsed, 'ca'), insecure: flag(parsed, 'insecure') }
    let brokers: { name: string; url: string; target: ConnTarget }[]
    if (command === 'compare') {
      if (parsed.positionals.length < 2) throw new UsageError('compare: give at least two brokers as NAME=URL')
      brokers = parsed.positionals.map((spec) => {
        const at = spec.indexOf('=')
        if (at <= 0) throw new UsageError(`compare: "${spec}" is not NAME=URL`)
        const url = spec.slice(at + 1)
        return { name: spec.slice(0, at), url, target: target(url, targetOptions) }
      })
    } else {
      if (parsed.positionals.length > 1) throw new UsageError('run: one broker URL')
      const url = parsed.positionals[0] ?? 'mqtt://127.0.0.1:1883'
      brokers = [{ name: new URL(url).host, url, target: target(url, targetOptions) }]
    }
    const records = await execute(brokers, scenarios, reps, sizes, pid, str(parsed, 'out'), flag(parsed, 'json'), flag(parsed, 'quiet'), io)
    if (!flag(parsed, 'json')) io.stdout.write(command === 'compare' ? compareTable(records) : resultTable(records))
    return records.every((r) => r.ok) ? 0 : 1
  } catch (error) {
    io.stderr.write(`mqtt-bench: ${(error as Error).message}\n`)
    return error instanceof UsageError ? 2 : 1
  }
}

function target(url: string, options: Parameters<typeof parseTarget>[1]): ConnTarget {
  try {
    return parseTarget(url, options)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/** Every repetition runs every scenario on every broker; the broker order rotates per repetition (interleaving evens out drift). */
async function execute(
  brokers: { name: string; url: string; target: ConnTarget }[],
  scenarios: ScenarioName[],
  reps: number,
  sizes: Sizes,
  pid: number | undefined,
  out: string | undefined,
  json: boolean,
  quiet: boolean,
  io: CommandIo
): Promise<BenchRecord[]> {
  const records: BenchRecord[] = []
  const total = reps * scenarios.length * brokers.length
  const tty = (io.stderr as { isTTY?: boolean }).isTTY === true
  let done = 0
  for (let rep = 1; rep <= reps; rep++) {
    for (const scenario of scenarios) {
      for (let b = 0; b < brokers.length; b++) {
        const broker = brokers[(b + rep - 1) % brokers.length]!
        if (!quiet) {
          const line = `[${done + 1}/${total}] ${broker.name} ${scenario} (rep ${rep}/${reps})`
          io.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`)
        }
        const runId = `bench${process.pid}r${rep}${scenario.replace(/\W/g, '')}${b}`
        let result
        try {
          result = await runScenario(scenario, broker.target, brokers.length === 1 ? pid : undefined, sizes, runId)
        } catch (error) {
          throw new Error(`${broker.name} (${broker.url}) ${scenario}: ${(error as Error).message}`)
        }
        const record = { ...result, broker: broker.name, url: broker.url, rep, time: new Date().toISOString() } as BenchRecord
        records.push(record)
        const line = JSON.stringify(record) + '\n'
        if (json) io.stdout.write(line)
        if (out !== undefined) appendFileSync(out, line)
        done++
        if (!quiet && !record.ok) io.stderr.write(`${tty ? '\n' : ''}mqtt-bench: ${broker.name} ${scenario}: not ok: ${record.problem ?? ''}\n`)
      }
    }
  }
  if (!quiet && tty) io.stderr.write('\r\x1b[K')
  return records
}

function plot(files: string[], out: string | undefined, title: string | undefined, io: CommandIo): number {
  if (files.length === 0) throw new UsageError('plot: give result files (JSON lines written with --out)')
  if (out === undefined) throw new UsageError('plot: give --out chart.svg')
  const records = files.flatMap((file) => {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new UsageError(`plot: ${(error as Error).message}`)
    }
    return parseRecords(text, file)
  })
  if (records.length === 0) throw new UsageError('plot: the files hold no records')
  writeFileSync(out, plotSvg(records, title))
  io.stderr.write(`mqtt-bench: wrote ${out} (${records.length} records)\n`)
  return 0
}

/** `mqtt-bench --help`. */
export function benchHelp(): string {
  const sizes = (Object.keys(DEFAULT_SIZES) as (keyof Sizes)[]).map((k) => `       ${sizeFlag(k).padEnd(24)} ${DEFAULT_SIZES[k]}`).join('\n')
  return `NAME
       mqtt-bench — load generator for any MQTT broker

SYNOPSIS
       mqtt-bench [run] [URL] [options]
       mqtt-bench compare NAME=URL NAME=URL ... [options]
       mqtt-bench plot FILE... --out chart.svg [--title TEXT]

DESCRIPTION
       Runs load scenarios against brokers that are already listening and reports deliveries per
       second, lost and duplicate deliveries (every payload carries publisher, sequence and send
       time), latency percentiles, connection rates and memory. URL: mqtt://, mqtts://, ws://,
       wss:// (default mqtt://127.0.0.1:1883). Only loopback addresses unless --allow-remote.

       compare runs every scenario on every broker, repetition after repetition, rotating the
       broker order (interleaved, so drift of the machine affects all alike), and prints the
       medians side by side with the first broker's ratio to each other one.

SCENARIOS (--scenarios a,b,...)
       fanin-q0, fanin-q1     N publishers → 1 subscriber, QoS 0 / 1
       fanout-q0, fanout-q1   1 publisher → N subscribers
       pairs-q0, pairs-q1     N publisher/subscriber pairs, one topic each
       latency, latency-q1    one paced publisher at a fixed rate, QoS 0 / 1; p50/p99/p99.9
       connections            connect storm (conn/s, connect p50/p99) then idle connections
                              held; with --pid, the broker's memory per connection
       default: ${DEFAULT_SCENARIOS.join(',')}

OPTIONS
       --reps N               repetitions (run: 1, compare: 3); medians are reported
       --pid PID              the broker's process (run only): CPU and memory from /proc
       --json                 JSON lines on stdout instead of the table
       --out FILE             append the JSON lines to FILE (for plot)
       --ca FILE, --insecure  TLS: trust FILE's CA / do not verify
       --allow-remote         allow non-loopback brokers
       --quiet                no progress line
       --scale X              multiply the message counts

SIZES
${sizes}

EXIT STATUS
       0 every run ok, 1 a run not ok or a broker unreachable, 2 usage error
`
}
