import { expect } from 'chai'
import fc from 'fast-check'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { encode } from '../../lib/packet/index.js'
import type { Packet, ProtocolLevel } from '../../lib/packet/types.js'
import { anyPacketArbitrary } from '../packet/arbitraries.js'
import { Peer } from '../helpers/flow.js'
import { useTeardown } from '../helpers/teardown.js'
import { rss, spawnBroker, stopBroker } from './fixtures/process.js'
import type { SpawnedBroker } from './fixtures/process.js'

/**
 * A network fuzz run against a broker in its own process: many concurrent connections send valid,
 * mutated and random packets in random chunks for a bounded time; afterwards the process is alive,
 * its memory bounded, and it serves a round trip. Seeded and reproducible: FUZZ_SEED picks another
 * run, FUZZ_MS its length (default 15,000 ms), FUZZ_CONNECTIONS the concurrency (default 40).
 */
const SEED = Number(process.env.FUZZ_SEED ?? 0x6e657477)
const DURATION = Number(process.env.FUZZ_MS ?? 15_000)
const CONNECTIONS = Number(process.env.FUZZ_CONNECTIONS ?? 40)

/** A small seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const CLIENT_TYPES = new Set<Packet['type']>(['publish', 'puback', 'pubrec', 'pubrel', 'pubcomp', 'subscribe', 'unsubscribe', 'pingreq', 'disconnect', 'auth', 'connect'])

/** Valid encodings of packets a client sends, at both levels. */
const corpus: { level: ProtocolLevel; bytes: Buffer }[] = fc
  .sample(anyPacketArbitrary({ maxPayload: 3000 }), { seed: SEED, numRuns: 600 })
  .filter(({ packet }) => CLIENT_TYPES.has(packet.type))
  .map(({ level, packet }) => ({ level, bytes: encode(packet, level) }))

function mutate(bytes: Buffer, random: () => number): Buffer {
  const out = Buffer.from(bytes)
  const kind = Math.floor(random() * 5)
  const at = Math.floor(random() * out.length)
  switch (kind) {
    case 0: // flip a bit
      out[at] = out[at]! ^ (1 << Math.floor(random() * 8))
      return out
    case 1: // random byte
      out[at] = Math.floor(random() * 256)
      return out
    case 2: // truncate
      return out.subarray(0, at)
    case 3: // huge announced length
      return Buffer.concat([out.subarray(0, 1), Buffer.from([0xff, 0xff, 0xff, 0x7f]), out.subarray(2)])
    default: // insert random bytes
      return Buffer.concat([out.subarray(0, at), Buffer.from(Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * 256))), out.subarray(at)])
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.once('error', reject)
  })
}

/** One fuzzing connection: until `deadline` or until the broker closes it. */
async function fuzzOne(port: number, random: () => number, deadline: number, id: number): Promise<number> {
  let socket: Socket
  try {
    socket = await open(port)
  } catch {
    return 0
  }
  socket.on('error', () => undefined)
  socket.on('data', () => undefined) // read what comes, so our side never blocks the broker
  let closed = false
  socket.once('close', () => (closed = true))
  const level: ProtocolLevel = random() < 0.5 ? 4 : 5
  let sent = 0
  if (random() < 0.8) {
    socket.write(encode({ type: 'connect', protocolLevel: level, clean: random() < 0.5, keepalive: 5, clientId: `fuzz-${id}` }, level))
  }
  while (!closed && Date.now() < deadline) {
    const roll = random()
    let bytes: Buffer
    const sample = corpus[Math.floor(random() * corpus.length)]!
    if (roll < 0.5) bytes = sample.bytes
    else if (roll < 0.9) bytes = mutate(sample.bytes, random)
    else bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)))
    // Random chunking.
    for (let o = 0; o < bytes.length && !closed; ) {
      const n = 1 + Math.floor(random() * (bytes.length - o))
      socket.write(bytes.subarray(o, o + n))
      o += n
    }
    sent++
    await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 10)))
  }
  socket.destroy()
  return sent
}

describe('broker – network fuzz (seeded, bounded)', function () {
  this.timeout(DURATION + 60_000)
  const teardown = useTeardown()
  let spawned: SpawnedBroker | undefined
  afterEach(() => stopBroker(spawned))

  it(`survives ${CONNECTIONS} concurrent connections of random and mutated packets for ${DURATION} ms (seed ${SEED})`, async () => {
    spawned = await spawnBroker({ connectTimeout: 3000 })
    const port = spawned.port
    const random = prng(SEED)
    const deadline = Date.now() + DURATION
    let next = 0
    let total = 0
    // Keep CONNECTIONS connections going: each one that ends is replaced until the deadline.
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (Date.now() < deadline) total += await fuzzOne(port, prng(Math.floor(random() * 2 ** 32)), deadline, next++)
      })
    )
    expect(total).to.be.above(100)
    expect(spawned.child.exitCode, spawned.stderr()).to.equal(null)
    expect(rss(spawned.child.pid!)).to.be.below(400 * 1024 * 1024)
    // Still serves a round trip.
    const sub = new Peer({ stream: teardown.add(await open(port), (s) => s.destroy()) })
    expect(await sub.connect({ clientId: 'after-sub' })).to.deep.include({ reasonCode: 0 })
    sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'after', qos: 1 }] })
    expect((await sub.next(5000)).type).to.equal('suback')
    const pub = new Peer({ stream: teardown.add(await open(port), (s) => s.destroy()) })
    expect(await pub.connect({ clientId: 'after-pub' })).to.deep.include({ reasonCode: 0 })
    pub.send({ type: 'publish', topic: 'after', payload: Buffer.from('still here'), qos: 1, packetId: 1, retain: false, dup: false })
    expect(await pub.next(5000)).to.deep.include({ type: 'puback', packetId: 1 })
    expect(await sub.next(5000)).to.deep.include({ type: 'publish', topic: 'after' })
  })
})
