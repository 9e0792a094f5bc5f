/**
 * Codec benchmark: packets/s for decode and encode, ours (lib/packet) side by side with
 * mqtt-packet 9 (the codec of MQTT.js and Aedes), interleaved in one process, after a warm-up,
 * several repetitions, medians, ratios (ours ÷ mqtt-packet). Prints one Markdown table on stdout
 * (progress on stderr) and writes JSON tagged with the git commit, Node version and date to
 * benchmarks/results/codec-<start time>-<commit>[-dirty].json (gitignored).
 *
 *   npm run bench                         # = node --import tsx benchmarks/codec/run.ts
 *   npm run bench -- --reps 9 --ms 200    # more and longer samples
 *   npm run bench -- --filter publish     # only cases whose name contains "publish"
 *
 * Decode: a stream of many packets (as a socket delivers it), cut into 64 KiB chunks, fed to one
 * Decoder (ours) and to one parser via `parser.parse()` (theirs): same bytes, same chunks.
 * Encode: ours `encode(packet, level)`, ours `PublishTemplate.encode()` reusing one template
 * (PUBLISH only), theirs `generate(object, { protocolVersion })`, each making a fresh Buffer per
 * packet from the same packets.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { generate, parser } from 'mqtt-packet'
import type { Packet as MqttPacket } from 'mqtt-packet'
import { Decoder, encode, PublishTemplate } from '../../lib/packet/index.js'
import type { Packet, ProtocolLevel, PublishPacket, QoS } from '../../lib/packet/index.js'
import { toMqttPacket } from '../../spec/packet/mqtt-packet-map.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '7' },
    ms: { type: 'string', default: '120' },
    warmup: { type: 'string', default: '300' },
    chunk: { type: 'string', default: '65536' },
    filter: { type: 'string', default: '' },
    out: { type: 'string', default: join(ROOT, 'benchmarks', 'results') },
    help: { type: 'boolean', default: false }
  }
})

if (args.help) {
  process.stdout.write(`node --import tsx benchmarks/codec/run.ts [options]
  --reps N      repetitions per measurement, interleaved (default 7; the median is reported)
  --ms N        length of one sample in milliseconds (default 120)
  --warmup N    warm-up per measurement in milliseconds (default 300)
  --chunk N     decode chunk size in bytes (default 65536, a typical socket read)
  --filter S    only cases whose name contains S
  --out DIR     where the JSON goes (default benchmarks/results)
`)
  process.exit(0)
}

const REPS = Number(args.reps)
const SAMPLE_MS = Number(args.ms)
const WARMUP_MS = Number(args.warmup)
const CHUNK = Number(args.chunk)

/** One benchmark case: the packets of the stream and the level they are encoded at. */
interface Case {
  name: string
  level: ProtocolLevel
  packets: Packet[]
  /** Set for PUBLISH cases: the template row reuses one template for every packet. */
  publish?: { topic: string; payload: Buffer; qos: QoS }
}

const TOPIC = 'sensors/building-7/floor-3/temperature'

function publishCase(qos: QoS, size: number, level: ProtocolLevel): Case {
  const payload = Buffer.alloc(size, 0x61)
  // Enough packets for a stream of ~512 KiB, at least 2,000.
  const count = Math.max(2000, Math.ceil((512 * 1024) / (size + TOPIC.length + 8)))
  const packets: PublishPacket[] = []
  for (let i = 0; i < count; i++) {
    const p: PublishPacket = { type: 'publish', topic: TOPIC, payload, qos, retain: false, dup: false }
    if (qos > 0) p.packetId = (i % 65535) + 1
    packets.push(p)
  }
  const sizeName = size >= 1024 ? `${size / 1024} KiB` : `${size} B`
  return { name: `PUBLISH QoS ${qos} ${sizeName} v${level}`, level, packets, publish: { topic: TOPIC, payload, qos } }
}

function connectCase(level: ProtocolLevel): Case {
  const packets: Packet[] = []
  for (let i = 0; i < 2000; i++) {
    packets.push({
      type: 'connect', protocolName: 'MQTT', protocolLevel: level, clean: true, keepalive: 60,
      clientId: `bench-client-${String(i).padStart(6, '0')}`, username: 'user', password: Buffer.from('secret')
    })
  }
  return { name: `CONNECT v${level}`, level, packets }
}

function subscribeCase(level: ProtocolLevel): Case {
  const packets: Packet[] = []
  for (let i = 0; i < 2000; i++) {
    packets.push({
      type: 'subscribe',
      packetId: (i % 65535) + 1,
      subscriptions: [
        { topicFilter: 'sensors/+/floor-3/temperature', qos: 1 },
        { topicFilter: 'alerts/#', qos: 0 }
      ]
    })
  }
  return { name: `SUBSCRIBE v${level}`, level, packets }
}

const ALL_CASES: Case[] = [
  publishCase(0, 16, 4), publishCase(0, 1024, 4), publishCase(1, 16, 4), publishCase(1, 1024, 4),
  publishCase(0, 16, 5), publishCase(0, 1024, 5), publishCase(1, 16, 5), publishCase(1, 1024, 5),
  connectCase(4), subscribeCase(4)
]
const CASES = ALL_CASES.filter((c) => c.name.toLowerCase().includes(args.filter.toLowerCase()))

/** A measured operation: one call processes a batch and returns how many packets it handled. */
type Op = () => number

let sink = 0 // keeps results alive so the work is not optimised away

function chunks(bytes: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let o = 0; o < bytes.length; o += CHUNK) out.push(bytes.subarray(o, o + CHUNK))
  return out
}

function decodeOps(c: Case): { ours: Op; theirs: Op } {
  const stream = chunks(Buffer.concat(c.packets.map((p) => encode(p, c.level))))
  const n = c.packets.length
  const ours: Op = () => {
    let count = 0
    const d = new Decoder(() => { count++ }, { protocolLevel: c.level })
    for (const chunk of stream) {
      const error = d.push(chunk)
      if (error !== undefined) throw error
    }
    if (count !== n) throw new Error(`ours decoded ${count} of ${n} packets`)
    return count
  }
  const theirs: Op = () => {
    let count = 0
    const p = parser({ protocolVersion: c.level })
    p.on('packet', () => { count++ })
    p.on('error', (error: Error) => { throw error })
    for (const chunk of stream) p.parse(chunk)
    if (count !== n) throw new Error(`mqtt-packet decoded ${count} of ${n} packets`)
    return count
  }
  return { ours, theirs }
}

function encodeOps(c: Case): { ours: Op; template?: Op; theirs: Op } {
  const packets = c.packets
  const objects: MqttPacket[] = packets.map((p) => toMqttPacket(p, c.level))
  const opts = { protocolVersion: c.level }
  const ours: Op = () => {
    let bytes = 0
    for (const p of packets) bytes += encode(p, c.level).length
    sink += bytes
    return packets.length
  }
  const theirs: Op = () => {
    let bytes = 0
    for (const o of objects) bytes += generate(o, opts).length
    sink += bytes
    return objects.length
  }
  let template: Op | undefined
  if (c.publish !== undefined) {
    const { topic, payload, qos } = c.publish
    const t = new PublishTemplate({ topic, payload }, c.level)
    template = () => {
      let bytes = 0
      for (let i = 0; i < packets.length; i++) bytes += t.encode(qos, false, false, qos > 0 ? (i % 65535) + 1 : undefined).length
      sink += bytes
      return packets.length
    }
  }
  // Both encoders must produce the same bytes for these packets (no properties, no options).
  for (let i = 0; i < Math.min(packets.length, 10); i++) {
    const a = encode(packets[i]!, c.level)
    const b = generate(objects[i]!, opts)
    if (!a.equals(b)) throw new Error(`${c.name}: encoders disagree on packet ${i}: ${a.toString('hex')} vs ${b.toString('hex')}`)
  }
  return template === undefined ? { ours, theirs } : { ours, template, theirs }
}

/** Packets per second of `op` over about `ms` milliseconds. */
function sample(op: Op, ms: number): number {
  let packets = 0
  const start = process.hrtime.bigint()
  const limit = BigInt(ms) * 1_000_000n
  let elapsed = 0n
  do {
    packets += op()
    elapsed = process.hrtime.bigint() - start
  } while (elapsed < limit)
  return packets / (Number(elapsed) / 1e9)
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** One row of the report: an operation, ours vs theirs. */
interface Row {
  case: string
  op: 'decode' | 'encode' | 'encode (PublishTemplate)'
  ours: number
  theirs: number
  ratio: number
  oursSamples: number[]
  theirsSamples: number[]
}

/** Measure `ours` against `theirs`: warm-up, then REPS interleaved samples of each (order alternating). */
function compare(caseName: string, op: Row['op'], ours: Op, theirs: Op): Row {
  sample(ours, WARMUP_MS)
  sample(theirs, WARMUP_MS)
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < REPS; r++) {
    if (r % 2 === 0) {
      a.push(sample(ours, SAMPLE_MS))
      b.push(sample(theirs, SAMPLE_MS))
    } else {
      b.push(sample(theirs, SAMPLE_MS))
      a.push(sample(ours, SAMPLE_MS))
    }
  }
  const row: Row = { case: caseName, op, ours: median(a), theirs: median(b), ratio: median(a) / median(b), oursSamples: a, theirsSamples: b }
  process.stderr.write(`  ${caseName} ${op}: ours ${fmt(row.ours)}/s, mqtt-packet ${fmt(row.theirs)}/s, ×${row.ratio.toFixed(2)}\n`)
  return row
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(0)} k`
}

function git(argv: string[]): string {
  try {
    return execFileSync('git', argv, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return ''
  }
}

function main(): void {
  const started = new Date()
  process.stderr.write(`codec benchmark: ${CASES.length} cases, ${REPS} reps × ${SAMPLE_MS} ms, warm-up ${WARMUP_MS} ms, chunks of ${CHUNK} B\n`)
  const rows: Row[] = []
  for (const c of CASES) {
    const d = decodeOps(c)
    rows.push(compare(c.name, 'decode', d.ours, d.theirs))
    const e = encodeOps(c)
    rows.push(compare(c.name, 'encode', e.ours, e.theirs))
    if (e.template !== undefined) rows.push(compare(c.name, 'encode (PublishTemplate)', e.template, e.theirs))
  }

  const lines = [
    '| case | operation | ours (packets/s) | mqtt-packet (packets/s) | ours ÷ mqtt-packet |',
    '|---|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.case} | ${r.op} | ${fmt(r.ours)} | ${fmt(r.theirs)} | ${r.ratio.toFixed(2)} |`)
  ]
  process.stdout.write(`${lines.join('\n')}\n`)

  const commit = git(['rev-parse', 'HEAD']) || 'unknown'
  const dirty = git(['status', '--porcelain']).length > 0
  mkdirSync(args.out, { recursive: true })
  const file = join(args.out, `codec-${started.toISOString().replace(/[:.]/g, '-')}-${commit.slice(0, 8)}${dirty ? '-dirty' : ''}.json`)
  const record = {
    benchmark: 'codec',
    commit,
    dirty,
    date: started.toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    mqttPacket: '9',
    settings: { reps: REPS, sampleMs: SAMPLE_MS, warmupMs: WARMUP_MS, chunk: CHUNK, filter: args.filter },
    rows,
    table: lines.join('\n')
  }
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`)
  process.stderr.write(`wrote ${file} (sink ${sink > 0 ? 'ok' : 'empty'})\n`)
}

main()
