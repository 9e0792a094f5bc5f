import { expect } from 'chai'
import { BROKER_SHARED_TAKE } from '../../lib/broker/output-batch.js'
import { encode } from '../../lib/packet/index.js'
import type { Packet, PublishPacket } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'
import { useTeardown } from '../helpers/teardown.js'

describe('broker – subscribers with the same output share one Buffer', function () {
  this.timeout(15000)
  const teardown = useTeardown()

  async function subscriber(port: number, clientId: string, filter: string, qos: 0 | 1): Promise<Peer> {
    const peer = await openTcpPeer(teardown, port)
    await peer.connect({ clientId })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: filter, qos }] })
    expect(await peer.next()).to.deep.include({ type: 'suback' })
    return peer
  }

  async function receive(peer: Peer, n: number): Promise<PublishPacket[]> {
    const got: PublishPacket[] = []
    while (got.length < n) {
      const packet: Packet = await peer.next()
      if (packet.type === 'publish') got.push(packet)
    }
    return got
  }

  async function start(): Promise<number> {
    const broker = makeBroker(teardown, {})
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return port
  }

  /** Five QoS 1 PUBLISH to `t` in one write: the broker handles them in one input chunk. */
  function burst(): Buffer {
    return Buffer.concat(
      [1, 2, 3, 4, 5].map((i) =>
        encode({ type: 'publish', topic: 't', payload: Buffer.from(`m${i}`), qos: 1, retain: false, dup: false, packetId: i }, 4)
      )
    )
  }

  const payloads = ['m1', 'm2', 'm3', 'm4', 'm5']
  const seen = (got: PublishPacket[]): unknown[] => got.map((p) => [p.payload.toString(), p.qos, p.packetId])

  it('QoS 0 subscribers of one input chunk are written one Buffer, each getting every message in order', async () => {
    const port = await start()
    const zeroA = await subscriber(port, 'zero-a', 't', 0)
    const zeroB = await subscriber(port, 'zero-b', 't', 0)
    const publisher = await openTcpPeer(teardown, port)
    await publisher.connect({ clientId: 'pub' })
    const hits = BROKER_SHARED_TAKE.hits
    publisher.send(burst())
    for (const peer of [zeroA, zeroB]) expect(seen(await receive(peer, 5))).to.deep.equal(payloads.map((m) => [m, 0, undefined]))
    expect(BROKER_SHARED_TAKE.hits).to.be.greaterThan(hits)
  })

  it('QoS 1 subscribers whose sessions number the messages differently each get their own packet ids', async () => {
    const port = await start()
    const oneA = await subscriber(port, 'one-a', 't', 1)
    const oneB = await subscriber(port, 'one-b', '#', 1)
    const oneC = await subscriber(port, 'one-c', 't', 1)
    const publisher = await openTcpPeer(teardown, port)
    await publisher.connect({ clientId: 'pub' })
    // One message only one-b takes: its packet ids run one ahead of the others' from then on.
    publisher.send({ type: 'publish', topic: 'other', payload: Buffer.from('first'), qos: 1, retain: false, dup: false, packetId: 100 })
    expect(await publisher.next()).to.deep.include({ type: 'puback', packetId: 100 })
    expect((await receive(oneB, 1))[0]).to.deep.include({ topic: 'other', packetId: 1 })
    oneB.send({ type: 'puback', packetId: 1 })
    publisher.send(burst())
    expect(seen(await receive(oneA, 5))).to.deep.equal(payloads.map((m, i) => [m, 1, i + 1]))
    expect(seen(await receive(oneB, 5))).to.deep.equal(payloads.map((m, i) => [m, 1, i + 2]))
    expect(seen(await receive(oneC, 5))).to.deep.equal(payloads.map((m, i) => [m, 1, i + 1]))
  })
})
