/**
 * Micro-benchmark: the engine's own part of one message on the latency path — decode → handler →
 * MemoryBackend route → Outbound → output batch → flush — without sockets or Node streams: the
 * broker is handed two fake streams (input pushed as 'data' events, one chunk per PUBLISH, each a
 * fresh Buffer view as a socket read gives; writes only counted). Per message: CPU ns and heap
 * bytes allocated (measured with a 64 MB young generation so that no scavenge falls in a round;
 * the tool checks it). ROOT is a checkout, so two versions compare side by side:
 *
 *   node --min-semi-space-size=64 --max-semi-space-size=64 --import tsx \
 *     benchmarks/broker/micro/publish-path.ts ROOT [qos] [packets per chunk]
 *
 * HEAP_PROFILE=FILE also writes V8's sampling heap profile of one round (objects that died young
 * included; every 64 bytes) to FILE: bytes per allocating function, as DevTools shows it (inlined
 * functions count in the function they were inlined into).
 */
import { EventEmitter } from 'node:events'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import { PerformanceObserver } from 'node:perf_hooks'

const root = resolve(process.argv[2] ?? '.')
const qos = Number(process.argv[3] ?? 0)
/** PUBLISH packets per input chunk (1: the latency scenario; more: what a flooding publisher's reads hold). */
const perChunk = Number(process.argv[4] ?? 1)
const from = (path: string): string => pathToFileURL(resolve(root, path)).href
const { Broker, MemoryBackend } = await import(from('lib/index.ts'))

/** The parts of a socket the engine uses: input as 'data' events, writes counted. */
class FakeStream extends EventEmitter {
  destroyed = false
  writable = true
  writableLength = 0
  written = 0
  last: Buffer | undefined = undefined
  write (bytes: Buffer): boolean { this.written += bytes.length; this.last = bytes; return true }
  pause (): this { return this }
  resume (): this { return this }
  end (): this { return this }
  destroy (): this { this.destroyed = true; return this }
}

function connect (id: string): Buffer {
  const idBytes = Buffer.from(id)
  const body = Buffer.concat([Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, idBytes.length]), idBytes])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

const broker = new Broker({ backend: new MemoryBackend() })
const pub = new FakeStream()
const sub = new FakeStream()
broker.handle({ stream: pub as never, transport: 'tcp', remoteAddress: '127.0.0.1:1' })
broker.handle({ stream: sub as never, transport: 'tcp', remoteAddress: '127.0.0.1:2' })
const settle = (): Promise<void> => new Promise((done) => setTimeout(done, 20))
pub.emit('data', connect('pub'))
sub.emit('data', connect('sub'))
await settle()
const topic = Buffer.from('bench/micro/latency')
sub.emit('data', Buffer.concat([Buffer.from([0x82, 2 + 2 + topic.length + 1, 0, 1, 0, topic.length]), topic, Buffer.from([qos])]))
await settle()

// `perChunk` PUBLISH packets (64-byte payloads) per chunk, as a fresh view of a read buffer (what a socket read gives).
const payload = Buffer.alloc(64, 7)
const head = qos === 0 ? Buffer.from([0x30, 2 + topic.length + 64, 0, topic.length]) : Buffer.from([0x32, 2 + topic.length + 2 + 64, 0, topic.length])
const packet = Buffer.concat([head, topic, ...(qos === 0 ? [] : [Buffer.from([0, 0])]), payload])
const slab = Buffer.allocUnsafeSlow(64 * 1024)
let pos = 0
let packetId = 0
let subId = 0
const acks = Buffer.alloc(4 * perChunk)
const round = (n: number): void => {
  for (let i = 0; i < n; i += perChunk) {
    if (pos + packet.length * perChunk > slab.length) pos = 0
    const start = pos
    for (let k = 0; k < perChunk; k++) {
      packet.copy(slab, pos)
      if (qos > 0) {
        packetId = packetId === 65_535 ? 1 : packetId + 1
        slab.writeUInt16BE(packetId, pos + head.length + topic.length)
      }
      pos += packet.length
    }
    pub.emit('data', Buffer.from(slab.buffer, start, pos - start))
    if (qos > 0) {
      // The subscriber acknowledges the deliveries it got (their packet ids from the written bytes).
      const last = sub.last!
      for (let k = 0; k < perChunk; k++) {
        const id = last.readUInt16BE(k * packet.length + head.length + topic.length)
        subId = id
        acks[4 * k] = 0x40
        acks[4 * k + 1] = 2
        acks.writeUInt16BE(id, 4 * k + 2)
      }
      sub.emit('data', Buffer.from(acks))
    }
  }
}
let gcs = 0
new PerformanceObserver((list) => { gcs += list.getEntries().length }).observe({ entryTypes: ['gc'] })
const N = 20_000
round(N) // warm-up
await settle()
const heapProfile = process.env.HEAP_PROFILE
if (heapProfile !== undefined) {
  const { Session } = await import('node:inspector/promises')
  const { writeFileSync } = await import('node:fs')
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.enable')
  await session.post('HeapProfiler.startSampling', { samplingInterval: 64, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never)
  round(N)
  const { profile } = await session.post('HeapProfiler.stopSampling')
  writeFileSync(heapProfile, JSON.stringify(profile))
  session.disconnect()
}
const cpu: number[] = []
const heap: number[] = []
for (let r = 0; r < 9; r++) {
  await settle()
  const before = gcs
  const h0 = getHeapStatistics().used_heap_size
  const t0 = process.cpuUsage()
  round(N)
  const u = process.cpuUsage(t0)
  const h1 = getHeapStatistics().used_heap_size
  await settle()
  if (gcs !== before) { r--; continue }
  cpu.push(((u.user + u.system) * 1000) / N)
  heap.push((h1 - h0) / N)
}
if (sub.written < 10 * N * packet.length) throw new Error(`only ${sub.written} bytes delivered`)
cpu.sort((a, b) => a - b)
heap.sort((a, b) => a - b)
console.log(`${root} QoS ${qos}, ${perChunk} per chunk: ns CPU per message median ${cpu[4]!.toFixed(0)} min ${cpu[0]!.toFixed(0)}; heap bytes per message median ${heap[4]!.toFixed(0)} (last sub id ${subId})`)
await broker.close()
process.exit(0)
