/**
 * The standalone load generator: runs scenarios against any MQTT 3.1.1 broker that is already
 * listening, and prints one JSON result per scenario.
 *
 *   node --import tsx benchmarks/broker/load.ts --port 1883 [--host 127.0.0.1] [--ws [--path /mqtt]]
 *     [--pid <broker pid>] [--scenarios fanin-q0,latency,...] [--fanin-count 50000 ...] [--scale 10]
 *
 * With --pid it also reports the broker's CPU time and RSS from /proc. Raise `ulimit -n` first
 * for the connections scenario.
 */
import { SCENARIOS, parseSizes, runScenario, type ScenarioName } from '../../lib/bench/scenarios.js'
import type { ConnTarget } from '../../lib/bench/conn.js'

async function main (): Promise<void> {
  const { sizes, rest } = parseSizes(process.argv.slice(2))
  const target: ConnTarget = { host: '127.0.0.1', port: 1883, transport: 'tcp' }
  let pid: number | undefined
  let names: ScenarioName[] = SCENARIOS.filter((s) => s !== 'connections')
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    const v = (): string => { const x = rest[++i]; if (x === undefined) throw new Error(`${a} needs a value`); return x }
    if (a === '--host') target.host = v()
    else if (a === '--port') target.port = Number(v())
    else if (a === '--ws') target.transport = 'ws'
    else if (a === '--path') target.path = v()
    else if (a === '--pid') pid = Number(v())
    else if (a === '--scenarios') names = v().split(',') as ScenarioName[]
    else throw new Error(`unknown argument ${a} (see the header of benchmarks/broker/load.ts)`)
  }
  for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`unknown scenario ${n}`)
  const runId = `load${process.pid}`
  for (const [i, name] of names.entries()) {
    const res = await runScenario(name, target, pid, sizes, `${runId}x${i}`)
    process.stdout.write(JSON.stringify(res) + '\n')
  }
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`load: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
