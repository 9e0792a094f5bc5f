/**
 * Client benchmark: our client against MQTT.js, publishing and receiving, in one run, through the
 * same broker (mosquitto by default: neutral and written in C; `--broker ours` starts our broker in a
 * child process). For each QoS and library a publisher process and a subscriber process of that
 * library exchange N messages of 64 bytes; the libraries alternate, repeated `--reps` times,
 * medians reported with ratios ours / MQTT.js.
 *
 *   node --import tsx benchmarks/client/run.ts [--qos 0,1,2] [--reps 3] [--scale 1] [--broker mosquitto|ours] [--baseline DIR]
 *
 * `--baseline DIR`: also run our client from another checkout of this repository (e.g. an
 * extracted earlier commit with node_modules linked), as a third library in the same run: a
 * before/after comparison under the same load.
 *
 * Figures: deliveries/s end to end (publisher start → last message received), CPU µs per message
 * for each side (user + system of that process, from connected to done) and for the broker process
 * (from /proc, Linux), peak RSS per process.
 * Window: QoS 0 at most 1,000 outstanding publish promises, QoS 1/2 at most 64 unacknowledged,
 * for both libraries. A run with loss or (at QoS 2) duplicates is reported as invalid.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startMosquitto } from '../../spec/client/helpers/mosquitto.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const ROOT = resolve(HERE, '../..')
const args = process.argv.slice(2)
const flag = (name: string, fallback: string): string => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? (args[at + 1] ?? fallback) : fallback
}
const qosList = flag('qos', '0,1,2').split(',').map(Number) as (0 | 1 | 2)[]
const reps = Number(flag('reps', '3'))
const scale = Number(flag('scale', '1'))
const brokerKind = flag('broker', 'mosquitto')
const baseline = flag('baseline', '')
const LIBS = baseline === '' ? ['ours', 'mqttjs'] : ['ours', 'mqttjs', 'baseline']
const COUNTS = { 0: 100_000, 1: 40_000, 2: 20_000 }

interface Side {
  cpuUs: number
  maxRssKb: number
  start?: number
  end?: number
  first?: number
  last?: number
  received?: number
  duplicates?: number
}

/** Children to stop if the run is interrupted. */
const children = new Set<ChildProcess>()
let stopBroker: (() => Promise<void>) | undefined
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL')
    void (stopBroker?.() ?? Promise.resolve()).finally(() => process.exit(130))
  })
}

function worker(argv: string[]): { child: ChildProcess; ready: Promise<void>; result: Promise<Side> } {
  // The baseline is our client from another checkout: its own worker, run as 'ours' there.
  const root = argv[0] === 'baseline' ? resolve(baseline) : ROOT
  const script = join(root, 'benchmarks/client/worker.ts')
  const workerArgv = argv[0] === 'baseline' ? ['ours', ...argv.slice(1)] : argv
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...workerArgv], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  let out = ''
  let onReady: () => void = () => undefined
  const ready = new Promise<void>((r) => (onReady = r))
  const result = new Promise<Side>((resolveResult, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready\n')) onReady()
    })
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (code !== 0 || line === undefined) reject(new Error(`worker ${argv.join(' ')} exited ${code}`))
      else resolveResult(JSON.parse(line) as Side)
    })
  })
  return { child, ready, result }
}

/**
 * CPU (user + system, µs) the broker process used so far, from /proc (Linux; clock ticks of 10 ms:
 * read per run of thousands of messages, not per message). NaN where /proc is missing.
 */
function brokerCpuUs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10_000
  } catch {
    return NaN
  }
}

async function startOurs(): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(HERE, 'broker.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolvePort) => child.stdout!.on('data', (d: Buffer) => resolvePort(Number(d.toString().trim()))))
  return { url: `mqtt://127.0.0.1:${port}`, pid: child.pid, stop: async () => void child.kill('SIGTERM') }
}

interface Row {
  lib: string
  qos: number
  rate: number
  pubCpu: number
  subCpu: number
  pubRss: number
  subRss: number
  brokerCpu: number
  valid: boolean
}

async function once(url: string, brokerPid: number | undefined, lib: string, qos: 0 | 1 | 2): Promise<Row> {
  const count = Math.round(COUNTS[qos] * scale)
  const topic = `bench/${lib}/${qos}/${process.pid}/${Date.now()}`
  const sub = worker([lib, 'sub', String(qos), String(count), url, topic])
  await sub.ready
  const broker0 = brokerCpuUs(brokerPid)
  const pub = worker([lib, 'pub', String(qos), String(count), url, topic])
  const [p, s] = await Promise.all([pub.result, sub.result])
  const brokerCpu = (brokerCpuUs(brokerPid) - broker0) / count
  const received = s.received ?? 0
  const valid = received === count && (qos !== 2 || (s.duplicates ?? 0) === 0)
  return { lib, qos, rate: received / (((s.last ?? 0) - (p.start ?? 0)) / 1000), pubCpu: p.cpuUs / count, subCpu: s.cpuUs / count, pubRss: p.maxRssKb / 1024, subRss: s.maxRssKb / 1024, brokerCpu, valid }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? NaN
}

async function main(): Promise<void> {
  const broker = brokerKind === 'ours' ? await startOurs() : await startMosquitto().then((m) => ({ url: `mqtt://127.0.0.1:${m.tcpPort}`, pid: m.process.pid, stop: () => m.stop() }))
  stopBroker = () => broker.stop()
  const rows: Row[] = []
  try {
    for (const qos of qosList) {
      for (let r = 0; r < reps; r++) {
        // Rotate the order per repetition: no library always goes first.
        for (const lib of [...LIBS.slice(r % LIBS.length), ...LIBS.slice(0, r % LIBS.length)]) {
          const row = await once(broker.url, broker.pid, lib, qos)
          rows.push(row)
          process.stderr.write(`qos ${qos} rep ${r + 1} ${lib}: ${Math.round(row.rate)} msg/s${row.valid ? '' : ' (INVALID: loss/duplicates)'}\n`)
        }
      }
    }
  } finally {
    await broker.stop()
  }
  const lines = [`broker: ${brokerKind}, 64-byte payloads, medians of ${reps}, scale ${scale}, node ${process.version}`, '', '| QoS | library | deliveries/s | pub CPU µs/msg | sub CPU µs/msg | broker CPU µs/msg | pub RSS MB | sub RSS MB | ratio msg/s | ratio CPU (pub+sub) |', '|---|---|---|---|---|---|---|---|---|---|']
  for (const qos of qosList) {
    const by = (lib: string): Row => {
      const rs = rows.filter((r) => r.lib === lib && r.qos === qos && r.valid)
      return { lib, qos, rate: median(rs.map((r) => r.rate)), pubCpu: median(rs.map((r) => r.pubCpu)), subCpu: median(rs.map((r) => r.subCpu)), pubRss: median(rs.map((r) => r.pubRss)), subRss: median(rs.map((r) => r.subRss)), brokerCpu: median(rs.map((r) => r.brokerCpu)), valid: rs.length > 0 }
    }
    const js = by('mqttjs')
    const names: Record<string, string> = { ours: 'ours', mqttjs: 'MQTT.js', baseline: 'ours (baseline)' }
    for (const row of LIBS.map(by)) {
      const ratio = row.lib === 'mqttjs' ? '' : `${(row.rate / js.rate).toFixed(2)}×`
      const cpu = row.lib === 'mqttjs' ? '' : `${((row.pubCpu + row.subCpu) / (js.pubCpu + js.subCpu)).toFixed(2)}×`
      lines.push(`| ${qos} | ${names[row.lib]} | ${Math.round(row.rate)} | ${row.pubCpu.toFixed(1)} | ${row.subCpu.toFixed(1)} | ${row.brokerCpu.toFixed(1)} | ${row.pubRss.toFixed(0)} | ${row.subRss.toFixed(0)} | ${ratio} | ${cpu} |`)
    }
  }
  process.stdout.write(lines.join('\n') + '\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`${String((error as Error).stack ?? error)}\n`)
  process.exit(1)
})
