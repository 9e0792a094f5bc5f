import { expect } from 'chai'
import type { Duplex } from 'node:stream'
import type { Broker } from '../../lib/broker/broker.js'
import { TURN_HOLD_BYTES } from '../../lib/broker/output-scheduler.js'
import { Decoder, encode } from '../../lib/packet/index.js'
import type { Packet, PublishPacket } from '../../lib/packet/types.js'
import { memoryPair } from '../../lib/transport/memory.js'
import { makeBroker } from '../helpers/broker.js'
import { Peer } from '../helpers/flow.js'
import { publish, subscribe } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'

/**
 * Output for other connections than the one whose input chunk produced it (deliveries) is held for
 * the end of the event-loop turn, so that several publishers feeding one subscriber in one turn make
 * one write to it; the publisher's own acknowledgements still leave at the end of its chunk.
 *
 * The in-memory transport delivers each write in its own `setImmediate`: chunks written in one tick
 * are read by the broker in one turn, and each broker write arrives as one `data` event. The broker
 * holds in a turn when the last turn with output read two chunks or more (`busy`), and writes at
 * once after a turn of one chunk (`quiet`).
 */
describe('broker – output held for the end of the event-loop turn', function () {
  this.timeout(15000)
  const teardown = useTeardown()

  /** The broker-side writes of every connection, in the order they happened: [name, packets]. */
  type Log = [string, Packet[]][]

  /** A peer whose broker-side writes are logged (decoded) under `name`. */
  async function peer(broker: Broker, name: string, log: Log, level: 4 | 5 = 4): Promise<Peer> {
    const pair = memoryPair()
    const server = pair.server.stream as Duplex
    const write = server.write.bind(server) as (chunk: Buffer) => boolean
    server.write = ((chunk: Buffer) => {
      const packets: Packet[] = []
      const probe = new Decoder((packet) => packets.push(packet), { role: 'client', protocolLevel: level })
      probe.push(Buffer.from(chunk))
      log.push([name, packets])
      return write(chunk)
    }) as typeof server.write
    broker.handle(pair.server)
    const p = new Peer({ stream: pair.client })
    const ack = await p.connect({ clientId: name, protocolLevel: level })
    expect(ack).to.include({ type: 'connack', reasonCode: 0 })
    return p
  }

  async function packets(p: Peer, n: number): Promise<Packet[]> {
    const got: Packet[] = []
    while (got.length < n) got.push(await p.next())
    return got
  }

  async function receive(p: Peer, n: number): Promise<PublishPacket[]> {
    const got: PublishPacket[] = []
    while (got.length < n) {
      const packet = await p.next()
      if (packet.type === 'publish') got.push(packet)
    }
    return got
  }

  /** Acknowledge `got` (one chunk of PUBACKs). */
  function ack(p: Peer, got: PublishPacket[]): void {
    p.send(Buffer.concat(got.map((m) => encode({ type: 'puback', packetId: m.packetId! }, 4))))
  }

  /** A turn of two chunks with output (two PINGREQ): the next turn holds. */
  async function busy(a: Peer, b: Peer, log: Log): Promise<void> {
    a.send({ type: 'pingreq' })
    b.send({ type: 'pingreq' })
    expect(await a.next()).to.deep.equal({ type: 'pingresp' })
    expect(await b.next()).to.deep.equal({ type: 'pingresp' })
    log.length = 0
  }

  /** A turn of one chunk with output: the next turn does not hold. */
  async function quiet(a: Peer, log: Log): Promise<void> {
    a.send({ type: 'pingreq' })
    expect(await a.next()).to.deep.equal({ type: 'pingresp' })
    log.length = 0
  }

  /** Five QoS 1 PUBLISH from publisher `name` in one write (one input chunk), packet ids 1-5. */
  function burst(name: string, payloadBytes = 0): Buffer {
    return Buffer.concat(
      [1, 2, 3, 4, 5].map((i) => {
        const payload = payloadBytes > 0 ? Buffer.alloc(payloadBytes, i) : Buffer.from(`${name}-${i}`)
        return encode({ ...publish(`t/${name}`, '', 1, i), payload }, 4)
      })
    )
  }

  it('four publishers in one turn: each gets its PUBACKs at the end of its chunk, the subscriber all 20 messages in one write after them', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const sub = await peer(broker, 'sub', log)
    await subscribe(sub, [{ topicFilter: 't/#', qos: 1 }])
    const names = ['p0', 'p1', 'p2', 'p3']
    const pubs = await Promise.all(names.map((name) => peer(broker, name, log)))
    await busy(pubs[0]!, pubs[1]!, log)
    let subChunks = 0
    sub.stream.on('data', () => subChunks++)
    // One tick: the broker reads the four chunks in one turn.
    names.forEach((name, i) => pubs[i]!.send(burst(name)))
    const got = await receive(sub, 20)
    for (const [i, p] of pubs.entries()) {
      const acks = await packets(p, 5)
      expect(acks, names[i]).to.deep.equal([1, 2, 3, 4, 5].map((packetId) => ({ type: 'puback', packetId })))
    }
    // Each publisher's messages in its order; none lost, none twice.
    for (const name of names) {
      expect(got.filter((m) => m.topic === `t/${name}`).map((m) => m.payload.toString())).to.deep.equal(
        [1, 2, 3, 4, 5].map((i) => `${name}-${i}`)
      )
    }
    expect(got.map((m) => m.packetId)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1))
    // The acknowledgements at each chunk's end, then one write to the subscriber.
    expect(log.map(([name, packets]) => [name, packets.length])).to.deep.equal([
      ['p0', 5],
      ['p1', 5],
      ['p2', 5],
      ['p3', 5],
      ['sub', 20]
    ])
    expect(subChunks).to.equal(1)
  })

  it('a receiver whose gathered output passes TURN_HOLD_BYTES is written at the end of the chunk, not held', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const sub = await peer(broker, 'sub', log)
    await subscribe(sub, [{ topicFilter: 't/#', qos: 1 }])
    const pubs = await Promise.all(['p0', 'p1'].map((name) => peer(broker, name, log)))
    await busy(pubs[0]!, pubs[1]!, log)
    // Five messages of a fifth of the bound each: every chunk reaches it.
    const size = Math.ceil(TURN_HOLD_BYTES / 5)
    pubs[0]!.send(burst('p0', size))
    pubs[1]!.send(burst('p1', size))
    const got = await receive(sub, 10)
    expect(got.map((m) => m.topic)).to.deep.equal([...Array(5).fill('t/p0'), ...Array(5).fill('t/p1')])
    // Each chunk's deliveries at its end (the subscriber was fed first, then acknowledged).
    expect(log.map(([name, packets]) => [name, packets.length])).to.deep.equal([
      ['sub', 5],
      ['p0', 5],
      ['sub', 5],
      ['p1', 5]
    ])
  })

  it('what is held in one turn comes to TURN_HOLD_BYTES at most, over all receivers: beyond, output is written at the chunk end', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const subA = await peer(broker, 'subA', log)
    await subscribe(subA, [{ topicFilter: 't/p0', qos: 1 }])
    const subB = await peer(broker, 'subB', log)
    await subscribe(subB, [{ topicFilter: 't/p1', qos: 1 }])
    const pubs = await Promise.all(['p0', 'p1'].map((name) => peer(broker, name, log)))
    await busy(pubs[0]!, pubs[1]!, log)
    // Each chunk makes 5 × (bound / 8) for its subscriber: the first is held, the second would
    // take the turn's held output past the bound and is written at once.
    const size = Math.ceil(TURN_HOLD_BYTES / 8)
    pubs[0]!.send(burst('p0', size))
    pubs[1]!.send(burst('p1', size))
    expect((await receive(subA, 5)).map((m) => m.topic)).to.deep.equal(Array(5).fill('t/p0'))
    expect((await receive(subB, 5)).map((m) => m.topic)).to.deep.equal(Array(5).fill('t/p1'))
    expect(log.map(([name, packets]) => [name, packets.length])).to.deep.equal([
      ['p0', 5],
      ['subB', 5],
      ['p1', 5],
      ['subA', 5]
    ])
  })

  it('a subscriber whose own chunk comes in the same turn gets what was held for it with its own answer, in order', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const sub = await peer(broker, 'sub', log)
    await subscribe(sub, [{ topicFilter: 't/#', qos: 1 }])
    const pub = await peer(broker, 'p0', log)
    await busy(pub, sub, log)
    // The publisher's chunk, then in the same turn the subscriber's PINGREQ: the held deliveries
    // leave with the PINGRESP, before it.
    pub.send(burst('p0'))
    sub.send({ type: 'pingreq' })
    const got = await packets(sub, 6)
    expect(got.map((p) => p.type)).to.deep.equal(['publish', 'publish', 'publish', 'publish', 'publish', 'pingresp'])
    expect(log.map(([name, written]) => [name, written.map((p) => p.type).join(',')])).to.deep.equal([
      ['p0', 'puback,puback,puback,puback,puback'],
      ['sub', 'publish,publish,publish,publish,publish,pingresp']
    ])
  })

  it('after a turn of one chunk (a low rate) deliveries are not held: written at the chunk end, before the acknowledgements', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const sub = await peer(broker, 'sub', log)
    await subscribe(sub, [{ topicFilter: 't/#', qos: 1 }])
    const pub = await peer(broker, 'p0', log)
    await busy(pub, sub, log)
    await quiet(pub, log)
    pub.send(burst('p0'))
    expect((await receive(sub, 5)).map((m) => m.payload.toString())).to.deep.equal([1, 2, 3, 4, 5].map((i) => `p0-${i}`))
    expect((await packets(pub, 5)).map((p) => p.type)).to.deep.equal(Array(5).fill('puback'))
    expect(log.map(([name, packets]) => [name, packets.length])).to.deep.equal([
      ['sub', 5],
      ['p0', 5]
    ])
  })

  it('stops holding after turns whose held output merged nothing (pairs), and holds again once it merges (fan-in)', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const subA = await peer(broker, 'subA', log)
    await subscribe(subA, [{ topicFilter: 't/p0', qos: 1 }])
    const subB = await peer(broker, 'subB', log)
    await subscribe(subB, [{ topicFilter: 't/p1', qos: 1 }])
    const [p0, p1] = await Promise.all(['p0', 'p1'].map((name) => peer(broker, name, log)))
    await busy(p0!, p1!, log)
    /** One turn: each publisher's chunk feeds its own subscriber; the order of the writes. */
    // Each publisher sends two chunks in the turn: feeding its subscriber twice is not a merge.
    const pairsTurn = async (): Promise<string[]> => {
      log.length = 0
      p0!.send(burst('p0'))
      p0!.send(burst('p0'))
      p1!.send(burst('p1'))
      p1!.send(burst('p1'))
      ack(subA, await receive(subA, 10))
      ack(subB, await receive(subB, 10))
      await packets(p0!, 10)
      await packets(p1!, 10)
      return log.map(([name]) => name)
    }
    const held = ['p0', 'p0', 'p1', 'p1', 'subA', 'subB']
    const atChunkEnd = ['subA', 'p0', 'subA', 'p0', 'subB', 'p1', 'subB', 'p1']
    // Held, merging nothing: four such turns in a row stop it.
    for (let turn = 0; turn < 4; turn++) expect(await pairsTurn(), `turn ${turn}`).to.deep.equal(held)
    expect(await pairsTurn()).to.deep.equal(atChunkEnd)
    expect(await pairsTurn()).to.deep.equal(atChunkEnd)
    // Fan-in now: a subscriber of both. Holding is tried again within 16 busy turns, merges, and stays.
    const subF = await peer(broker, 'subF', log)
    await subscribe(subF, [{ topicFilter: 't/#', qos: 1 }])
    const faninTurn = async (): Promise<string[]> => {
      log.length = 0
      p0!.send(burst('p0'))
      p1!.send(burst('p1'))
      ack(subF, await receive(subF, 10))
      ack(subA, await receive(subA, 5))
      ack(subB, await receive(subB, 5))
      await packets(p0!, 5)
      await packets(p1!, 5)
      return log.map(([name]) => name)
    }
    let order = await faninTurn()
    for (let turn = 0; turn < 17 && order[0] !== 'p0'; turn++) order = await faninTurn()
    expect(order.slice(0, 2)).to.deep.equal(['p0', 'p1'])
    expect(order.filter((name) => name === 'subF')).to.have.length(1)
    expect((await faninTurn()).slice(0, 2)).to.deep.equal(['p0', 'p1'])
  })

  it('a subscriber that closes while output is held for it loses nothing of the publisher and ends cleanly', async () => {
    const broker = makeBroker(teardown, {})
    const log: Log = []
    const sub = await peer(broker, 'sub', log)
    await subscribe(sub, [{ topicFilter: 't/#', qos: 1 }])
    const pub = await peer(broker, 'p0', log)
    pub.send(burst('p0'))
    sub.destroy()
    const acks = await packets(pub, 5)
    expect(acks.map((a) => a.type)).to.deep.equal(Array(5).fill('puback'))
    // The broker goes on: the publisher is served.
    pub.send({ type: 'pingreq' })
    expect(await pub.next()).to.deep.equal({ type: 'pingresp' })
  })
})
