import { expect } from 'chai'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock, until } from '../helpers/virtual-clock.js'
import { rss, spawnBroker, stopBroker } from './fixtures/process.js'
import type { SpawnedBroker } from './fixtures/process.js'

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port }, () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Resolves true once `socket` closed, false after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

/** A fixed header: type byte and remaining length `announced`. */
function header(first: number, announced: number): Buffer {
  const bytes = [first]
  do {
    let byte = announced % 128
    announced = Math.floor(announced / 128)
    if (announced > 0) byte |= 0x80
    bytes.push(byte)
  } while (announced > 0)
  return Buffer.from(bytes)
}

const MAX_REMAINING = 268_435_455

describe('broker – before CONNECT, almost nothing', function () {
  this.timeout(20000)
  const teardown = useTeardown()

  it('closes a connection whose first byte is not a CONNECT, before any more arrives', async () => {
    const broker = makeBroker(teardown, { connectTimeout: 60_000 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    for (const first of [0x30, 0x82, 0xc0, 0xe0, 0x00]) {
      const socket = teardown.add(await open(port), (s) => s.destroy())
      socket.on('error', () => undefined)
      socket.write(Buffer.from([first])) // only the type byte: no length, no body
      expect(await closedWithin(socket, 3000), `first byte 0x${first.toString(16)}`).to.equal(true)
    }
    expect(broker.stats.protocolErrors).to.equal(5)
  })

  it('closes a CONNECT announcing more than maxConnectPacketSize from its fixed header', async () => {
    const broker = makeBroker(teardown, { connectTimeout: 60_000 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const socket = teardown.add(await open(port), (s) => s.destroy())
    socket.on('error', () => undefined)
    socket.write(header(0x10, MAX_REMAINING))
    expect(await closedWithin(socket, 3000)).to.equal(true)
  })

  it('answers an MQTT 5 CONNECT above the CONNECT bound with CONNACK 0x95, and accepts one within it', async () => {
    const broker = makeBroker(teardown, { maxConnectPacketSize: 2000 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const big = new Peer({ stream: teardown.add(await open(port), (s) => s.destroy()) })
    const will = { topic: 'w', payload: Buffer.alloc(3000), qos: 0 as const, retain: false }
    expect(await big.connect({ protocolLevel: 5, clientId: 'big', will })).to.deep.include({ type: 'connack', reasonCode: ReasonCode.PacketTooLarge })
    await big.waitClosed()
    const small = new Peer({ stream: teardown.add(await open(port), (s) => s.destroy()) })
    expect(await small.connect({ protocolLevel: 5, clientId: 'small', will: { ...will, payload: Buffer.alloc(1000) } })).to.deep.include({ type: 'connack', reasonCode: 0 })
    // After CONNECT the bound is maximumPacketSize: a 100 KB PUBLISH is fine.
    small.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'big', qos: 0 }] })
    expect((await small.next()).type).to.equal('suback')
    small.send(publish('big', 'x'.repeat(100_000)))
    const got = await small.next(5000)
    expect(got.type === 'publish' && got.payload.length).to.equal(100_000)
  })

  it('answers a PUBLISH above maximumPacketSize with DISCONNECT 0x95 from its fixed header', async () => {
    const broker = makeBroker(teardown, { maximumPacketSize: 10_000 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const socket = teardown.add(await open(port), (s) => s.destroy())
    const peer = new Peer({ stream: socket })
    expect(await peer.connect({ protocolLevel: 5, clientId: 'p' })).to.deep.include({ reasonCode: 0 })
    peer.send(header(0x30, MAX_REMAINING))
    expect(await peer.next()).to.deep.equal({ type: 'disconnect', reasonCode: ReasonCode.PacketTooLarge })
    await peer.waitClosed()
  })

  it('closes a connection that trickles its CONNECT after connectTimeout', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { connectTimeout: 1000, timerInterval: 100, clock })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const socket = teardown.add(await open(port), (s) => s.destroy())
    socket.on('error', () => undefined)
    const connect = Buffer.concat([header(0x10, 200), Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0])])
    const read = (): number => broker.trafficBytes().get(undefined)?.received ?? 0
    await until(() => broker.stats.connectionsOpen === 1, 'the connection adopted')
    // One byte every 100 ms of virtual time, each read by the broker before the clock moves on.
    let sent = 0
    while (sent < connect.length && broker.stats.connectionsOpen === 1) {
      socket.write(connect.subarray(sent, sent + 1))
      sent++
      await until(() => read() >= sent, `byte ${sent} read`)
      await clock.advance(100)
    }
    // Closed at the first tick past connectTimeout after the connection came: 1.1 s, 11 bytes.
    expect(broker.stats.connectionsOpen).to.equal(0)
    expect(sent).to.equal(11)
    expect(await closedWithin(socket, 5000)).to.equal(true)
  })

  it('uses 4 MiB as the default maximum packet size', async () => {
    const broker = makeBroker(teardown, { maximumPacketSize: undefined })
    expect(broker.options.maximumPacketSize).to.equal(4 * 1024 * 1024)
    expect(broker.options.maxConnectPacketSize).to.equal(65_536)
  })

  describe('in a spawned broker process', function () {
    let spawned: SpawnedBroker | undefined
    afterEach(() => stopBroker(spawned))

    /** Write `header` then `size` body bytes on `count` connections; resolve once each closed or sent it all. */
    async function flood(port: number, first: Buffer, size: number, count: number): Promise<void> {
      const body = Buffer.alloc(size, 0x61)
      await Promise.all(
        Array.from({ length: count }, async () => {
          const socket = await open(port)
          socket.on('error', () => undefined)
          await new Promise<void>((resolve) => {
            socket.once('close', () => resolve())
            socket.write(first)
            socket.write(body, () => resolve())
          })
          teardown.add(socket, (s) => s.destroy())
        })
      )
    }

    it('keeps its memory flat under 256 MB announced CONNECT and first PUBLISH packets', async () => {
      spawned = await spawnBroker({ connectTimeout: 60_000 })
      const pid = spawned.child.pid!
      // Warm up: one round trip, then a baseline.
      const peer = new Peer({ stream: teardown.add(await open(spawned.port), (s) => s.destroy()) })
      expect(await peer.connect({ clientId: 'warm' })).to.deep.include({ reasonCode: 0 })
      const before = rss(pid)
      const size = 12 * 1024 * 1024
      await flood(spawned.port, Buffer.concat([header(0x10, MAX_REMAINING), Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 0])]), size, 4)
      await flood(spawned.port, header(0x30, MAX_REMAINING), size, 4)
      // Whatever the broker kept is resident by now (it read what was sent, or closed).
      await new Promise((resolve) => setTimeout(resolve, 500))
      const grown = rss(pid) - before
      expect(grown, `RSS grew by ${(grown / 1048576).toFixed(1)} MiB`).to.be.below(24 * 1024 * 1024)
      // And it still serves.
      peer.send({ type: 'pingreq' })
      expect(await peer.next(5000)).to.deep.equal({ type: 'pingresp' })
    })
  })
})
