import { expect } from 'chai'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { encode } from '../../lib/packet/index.js'
import type { QoS } from '../../lib/packet/types.js'
import type { DisconnectReason } from '../../lib/broker/events.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock } from '../helpers/virtual-clock.js'
import type { Teardown } from '../helpers/teardown.js'
import { rss, spawnBroker, stopBroker } from './fixtures/process.js'
import type { SpawnedBroker } from './fixtures/process.js'

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.once('error', reject)
  })
}

async function peer(teardown: Teardown, port: number, clientId: string, protocolLevel: 4 | 5 = 4): Promise<Peer> {
  const socket = teardown.add(await open(port), (s) => s.destroy())
  socket.on('error', () => undefined)
  const p = new Peer({ stream: socket })
  expect(await p.connect({ clientId, protocolLevel })).to.deep.include({ type: 'connack', reasonCode: 0 })
  return p
}

async function subscribed(teardown: Teardown, port: number, clientId: string, qos: QoS): Promise<Peer> {
  const p = await peer(teardown, port, clientId)
  p.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'flood', qos }] })
  expect((await p.next()).type).to.equal('suback')
  return p
}

/** Reads `count` PUBLISH packets on `p` (acknowledging QoS 1); resolves with how many arrived before `deadline`. */
async function receive(p: Peer, count: number, deadline: number): Promise<number> {
  let got = 0
  while (got < count) {
    const left = deadline - Date.now()
    if (left <= 0) break
    let packet
    try {
      packet = await p.next(left)
    } catch {
      break
    }
    if (packet.type !== 'publish') continue
    got++
    if (packet.qos === 1) p.send({ type: 'puback', packetId: packet.packetId! })
  }
  return got
}

describe('broker – a slow or frozen subscriber stalls nobody', function () {
  this.timeout(60000)
  const teardown = useTeardown()

  for (const qos of [0, 1] as const) {
    it(`a frozen subscriber does not stop another subscriber of the same publisher (QoS ${qos})`, async () => {
      const broker = makeBroker(teardown, { maxBufferedBytes: 1024 * 1024, sendTimeout: 120_000 })
      const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
      const frozen = await subscribed(teardown, port, 'frozen', qos)
      ;(frozen.stream as Socket).pause() // reads nothing more: the broker's writes to it pile up
      const healthy = await subscribed(teardown, port, 'healthy', qos)
      const publisher = await peer(teardown, port, 'publisher')
      const count = 800
      const payload = 'x'.repeat(16 * 1024) // 800 × 16 KiB: far more than the frozen socket takes
      const writes = (async () => {
        for (let i = 0; i < count; i += 50) {
          const batch = Array.from({ length: 50 }, (_, k) => encode(publish('flood', payload, qos, qos === 1 ? i + k + 1 : undefined), 4))
          if (!publisher.stream.write(Buffer.concat(batch))) await new Promise((resolve) => publisher.stream.once('drain', resolve))
        }
      })()
      const got = await receive(healthy, count, Date.now() + 30_000)
      await Promise.race([writes, new Promise((resolve) => setTimeout(resolve, 5000))])
      expect(got, 'messages the healthy subscriber got').to.equal(count)
      expect(frozen.isConnectionClosed).to.equal(false)
      if (qos === 0) expect(broker.stats.outputDrops, 'QoS 0 dropped for the frozen one').to.be.above(0)
    })
  }

  it('a subscriber whose output does not drain within sendTimeout is disconnected with 0x97', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { maxBufferedBytes: 256 * 1024, sendTimeout: 1500, timerInterval: 100, clock })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const reasons: DisconnectReason[] = []
    const watch = broker.events$.subscribe((event) => {
      if (event.type === 'client.disconnected') reasons.push(event.reason)
    })
    teardown.defer(() => watch.unsubscribe())
    const frozen = await peer(teardown, port, 'frozen5', 5)
    frozen.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'flood', qos: 1 }] })
    expect((await frozen.next()).type).to.equal('suback')
    ;(frozen.stream as Socket).pause()
    const publisher = await peer(teardown, port, 'publisher')
    const payload = 'y'.repeat(32 * 1024)
    // Flood (no virtual time passing) until the frozen socket holds so much that publishers wait.
    const started = Date.now()
    while (broker.stats.backpressurePauses === 0) {
      if (Date.now() - started > 20_000) throw new Error('the frozen subscriber never backed up')
      publisher.send(publish('flood', payload, 1, 1))
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    // Its output backed up at virtual time 0 (or later, if the kernel took more): never cut before sendTimeout.
    await clock.advance(1400)
    expect(broker.stats.sendTimeouts, 'cut before sendTimeout').to.equal(0)
    for (let i = 0; i < 100 && broker.stats.sendTimeouts === 0; i++) await clock.advance(100)
    expect(broker.stats.sendTimeouts).to.equal(1)
    expect(broker.stats.slowConsumers + broker.stats.sendTimeouts).to.be.at.least(1)
    expect(publisher.isConnectionClosed).to.equal(false)
    await waitFor(() => broker.connectedClients.length === 1, 5000)
    expect(reasons).to.deep.equal(['slow-consumer'])
  })

  it('a client that never reads is not read either, and is cut off once its output stalls', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { maxBufferedBytes: 64 * 1024, sendTimeout: 2000, timerInterval: 100, clock })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const writer = await peer(teardown, port, 'write-only')
    const socket = writer.stream as Socket
    socket.pause() // never reads PINGRESP or PUBACK
    const chunk = Buffer.concat(
      Array.from({ length: 2000 }, (_, i) => Buffer.concat([encode({ type: 'pingreq' }, 4), encode(publish('w', 'z', 1, (i % 65000) + 1), 4)]))
    )
    // Write (no virtual time passing) until the broker stops reading it: its output to it is full.
    const started = Date.now()
    let sent = 0
    while (broker.stats.inputPauses === 0) {
      if (Date.now() - started > 30_000) throw new Error(`still read after ${sent} bytes`)
      if (socket.writableLength < 1024 * 1024) {
        socket.write(chunk)
        sent += chunk.length
      }
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await clock.advance(1900)
    expect(broker.stats.sendTimeouts, 'cut before sendTimeout').to.equal(0)
    for (let i = 0; i < 100 && broker.stats.sendTimeouts === 0; i++) await clock.advance(100)
    expect(broker.stats.sendTimeouts).to.equal(1)
    // The paused socket sees the broker's end only when its writes fail.
    while (!writer.isConnectionClosed && Date.now() - started < 30_000) {
      socket.write(chunk)
      await Promise.race([writer.closed, new Promise((resolve) => setTimeout(resolve, 10))])
    }
    expect(writer.isConnectionClosed, `still open after sending ${sent} bytes`).to.equal(true)
    expect(broker.stats.inputPauses).to.be.at.least(1)
    expect(broker.stats.sendTimeouts).to.equal(1)
    // The broker still serves others.
    const other = await peer(teardown, port, 'other')
    other.send({ type: 'pingreq' })
    expect(await other.next()).to.deep.equal({ type: 'pingresp' })
  })
})

describe('broker – a client that never reads, in a spawned broker process', function () {
  this.timeout(60000)
  const teardown = useTeardown()
  let spawned: SpawnedBroker | undefined
  afterEach(() => stopBroker(spawned))

  it('is cut off with the broker memory bounded', async () => {
    spawned = await spawnBroker({ maxBufferedBytes: 256 * 1024, sendTimeout: 3000, timerInterval: 200 })
    const pid = spawned.child.pid!
    const writer = await peer(teardown, spawned.port, 'write-only')
    const socket = writer.stream as Socket
    socket.pause()
    const before = rss(pid)
    let peak = before
    const chunk = Buffer.concat(
      Array.from({ length: 4000 }, (_, i) => Buffer.concat([encode({ type: 'pingreq' }, 4), encode(publish('w', 'z', 1, (i % 65000) + 1), 4)]))
    )
    const started = Date.now()
    while (!writer.isConnectionClosed && Date.now() - started < 25_000) {
      if (!socket.write(chunk)) {
        await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), writer.closed, new Promise((resolve) => setTimeout(resolve, 100))])
      } else {
        await new Promise((resolve) => setImmediate(resolve))
      }
      peak = Math.max(peak, rss(pid))
    }
    expect(writer.isConnectionClosed, `open after ${Date.now() - started} ms`).to.equal(true)
    expect(peak - before, `RSS peak growth ${((peak - before) / 1048576).toFixed(1)} MiB`).to.be.below(64 * 1024 * 1024)
  })
})

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
