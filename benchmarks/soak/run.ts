/**
 * Soak: a broker process (soak/server.ts, default options) under steady mixed load and abuse for
 * a long time, with its resident memory sampled. Not a unit test: run it by hand.
 *
 *   node --import tsx benchmarks/soak/run.ts [--minutes 10] [--rate 2000] [--sample-s 10]
 *
 * Load, all on 127.0.0.1: 4 publishers (QoS 0 and 1 alternately, `rate` messages/s in all, 256 B)
 * on 64 topics; 8 subscribers reading everything (`soak/#`, QoS 1, acknowledging); one frozen
 * subscriber that never reads; every second a client that connects, subscribes and leaves, a
 * socket of random bytes, a CONNECT announcing 256 MB, and a write-only client that sends PINGREQ
 * and never reads. Every `sample-s` seconds it prints the broker's RSS and delivered counts; at the
 * end, the verdict: memory is steady when the mean RSS of the last third exceeds that of the
 * middle third by less than 10% (the first third is warm-up).
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { Packet } from '../../lib/packet/types.js'

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const MINUTES = arg('minutes', 10)
const RATE = arg('rate', 2000)
const SAMPLE_S = arg('sample-s', 10)

const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./server.ts', import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] })
const port = await new Promise<number>((resolve, reject) => {
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
    const m = /listening (\d+)/.exec(out)
    if (m !== null) resolve(Number(m[1]))
  })
  child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)))
})
const stopBroker = (): void => {
  if (child.exitCode === null) child.kill('SIGTERM')
}
process.on('SIGINT', () => {
  stopBroker()
  process.exit(1)
})

function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

/** A raw MQTT 3.1.1 client: CONNECT sent, packets handed to `onPacket`. */
function client(clientId: string, onPacket: (packet: Packet, socket: Socket) => void = () => undefined): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => {
      socket.setNoDelay(true)
      socket.write(encode({ type: 'connect', protocolLevel: 4, clean: true, keepalive: 60, clientId }, 4))
      resolve(socket)
    })
    socket.on('error', () => undefined)
    const decoder = new Decoder((p) => onPacket(p, socket), { role: 'client', protocolLevel: 4 })
    socket.on('data', (chunk: Buffer) => void decoder.push(chunk))
  })
}

let delivered = 0
const subscribers: Socket[] = []
for (let i = 0; i < 8; i++) {
  const socket = await client(`soak-sub-${i}`, (packet, s) => {
    if (packet.type !== 'publish') return
    delivered++
    if (packet.qos === 1) s.write(encode({ type: 'puback', packetId: packet.packetId! }, 4))
  })
  socket.write(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'soak/#', qos: 1 }] }, 4))
  subscribers.push(socket)
}
const frozen = await client('soak-frozen')
frozen.write(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'soak/#', qos: 1 }] }, 4))
setTimeout(() => frozen.pause(), 500)

const publishers = await Promise.all(Array.from({ length: 4 }, (_, i) => client(`soak-pub-${i}`)))
const payload = Buffer.alloc(256, 0x61)
let sequence = 0
const tick = 20
const perTick = Math.max(1, Math.round((RATE * tick) / 1000 / publishers.length))
const publishing = setInterval(() => {
  for (const [i, socket] of publishers.entries()) {
    const batch: Buffer[] = []
    for (let k = 0; k < perTick; k++) {
      const qos = (sequence++ & 1) as 0 | 1
      const packet = { type: 'publish' as const, topic: `soak/${i}/${sequence % 16}`, payload, qos, retain: false, dup: false }
      batch.push(encode(qos === 1 ? { ...packet, packetId: (sequence % 65000) + 1 } : packet, 4))
    }
    socket.write(Buffer.concat(batch))
  }
}, tick)

let churned = 0
const abuse = setInterval(() => {
  churned++
  void client(`soak-churn-${churned}`).then((s) => {
    s.write(encode({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: `soak/${churned % 4}/+`, qos: 0 }] }, 4))
    setTimeout(() => s.destroy(), 300)
  })
  const junk = tcpConnect({ host: '127.0.0.1', port }, () => junk.end(Buffer.from(Array.from({ length: 64 }, () => Math.floor(Math.random() * 256)))))
  junk.on('error', () => undefined)
  const huge = tcpConnect({ host: '127.0.0.1', port }, () => huge.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])))
  huge.on('error', () => undefined)
  setTimeout(() => huge.destroy(), 2000)
  void client(`soak-writeonly-${churned}`).then((s) => {
    s.pause()
    const pings = Buffer.concat(Array.from({ length: 1000 }, () => encode({ type: 'pingreq' }, 4)))
    s.write(pings)
    setTimeout(() => s.destroy(), 5000)
  })
}, 1000)

const samples: number[] = []
const started = Date.now()
console.log('elapsed s\tRSS MiB\tdelivered')
await new Promise<void>((resolve) => {
  const sampler = setInterval(() => {
    const value = rss()
    samples.push(value)
    console.log(`${Math.round((Date.now() - started) / 1000)}\t${(value / 1048576).toFixed(1)}\t${delivered}`)
    if (Date.now() - started >= MINUTES * 60_000) {
      clearInterval(sampler)
      resolve()
    }
  }, SAMPLE_S * 1000)
})
clearInterval(publishing)
clearInterval(abuse)
for (const s of [...subscribers, ...publishers, frozen]) s.destroy()
const third = Math.floor(samples.length / 3)
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1)
const middle = mean(samples.slice(third, 2 * third))
const last = mean(samples.slice(2 * third))
const growth = middle === 0 ? 0 : (last - middle) / middle
const alive = child.exitCode === null
console.log(`broker alive: ${alive}; mean RSS middle third ${(middle / 1048576).toFixed(1)} MiB, last third ${(last / 1048576).toFixed(1)} MiB (${(growth * 100).toFixed(1)}%)`)
console.log(alive && growth < 0.1 ? 'steady' : 'NOT STEADY')
stopBroker()
process.exit(alive && growth < 0.1 ? 0 : 1)
