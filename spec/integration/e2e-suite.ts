/**
 * One end-to-end suite, run over every transport (TCP, WebSocket, the in-memory pair) by the
 * e2e-*.spec.ts files: scripted clients drive a real Broker with a MemoryBackend (or any backend
 * the caller makes) through full exchanges.
 */
import { expect } from 'chai'
import type { Duplex } from 'node:stream'
import { Broker } from '../../lib/broker/broker.js'
import { silentLogger } from '../../lib/broker/logger.js'
import { MemoryBackend } from '../../lib/backend/memory-backend.js'
import type { Backend } from '../../lib/backend/backend.js'
import type { PublishPacket } from '../../lib/packet/types.js'
import { Peer } from '../helpers/flow.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import type { ConnectPacket } from '../../lib/packet/types.js'

/** How a transport under test opens client connections to a broker. */
export interface TransportUnderTest {
  name: string
  /** Make the broker reachable (listen, or nothing for in-memory); returns a connector. */
  start(broker: Broker): Promise<() => Promise<Duplex | 'memory'>>
  /** Backend factory (default MemoryBackend). */
  backend?: () => Backend
}

/** Declare the end-to-end suite for one transport. */
export function e2eSuite(transport: TransportUnderTest): void {
  describe(`end to end over ${transport.name}`, () => {
    const teardown = useTeardown()
    let broker: Broker
    let open: () => Promise<Duplex | 'memory'>

    beforeEach(async () => {
      const backend = transport.backend?.() ?? new MemoryBackend()
      broker = teardown.add(new Broker({ backend, logger: silentLogger }), (b) => b.close())
      open = await transport.start(broker)
    })

    async function client(fields: Partial<ConnectPacket> & { clientId: string }): Promise<Peer> {
      const stream = await open()
      const peer = stream === 'memory' ? new Peer(broker) : new Peer({ stream })
      teardown.defer(() => peer.destroy())
      const ack = await peer.connect(fields)
      expect(ack).to.include({ type: 'connack', reasonCode: 0 })
      return peer
    }

    for (const level of [3, 4, 5] as const) {
      it(`level ${level}: QoS 0, 1 and 2 round trips`, async () => {
        const sub = await client({ clientId: 'sub', protocolLevel: level })
        sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'e2e/#', qos: 2 }] })
        expect(await sub.next()).to.deep.equal({ type: 'suback', packetId: 1, reasonCodes: [2] })
        const pub = await client({ clientId: 'pub', protocolLevel: level })
        pub.send(publish('e2e/0', 'zero'))
        pub.send(publish('e2e/1', 'one', 1, 1))
        pub.send(publish('e2e/2', 'two', 2, 2))
        const acks = [await pub.next(), await pub.next()]
        expect(acks).to.deep.include({ type: 'puback', packetId: 1 })
        expect(acks).to.deep.include({ type: 'pubrec', packetId: 2 })
        pub.send({ type: 'pubrel', packetId: 2 })
        expect(await pub.next()).to.deep.equal({ type: 'pubcomp', packetId: 2 })
        const got: PublishPacket[] = []
        while (got.length < 3) got.push((await sub.next()) as PublishPacket)
        expect(got.map((p) => [p.topic, p.payload.toString(), p.qos])).to.deep.equal([
          ['e2e/0', 'zero', 0],
          ['e2e/1', 'one', 1],
          ['e2e/2', 'two', 2]
        ])
        sub.send({ type: 'puback', packetId: got[1]!.packetId! })
        sub.send({ type: 'pubrec', packetId: got[2]!.packetId! })
        expect(await sub.next()).to.deep.equal({ type: 'pubrel', packetId: got[2]!.packetId })
        sub.send({ type: 'pubcomp', packetId: got[2]!.packetId! })
      })
    }

    it('retained message to a later subscriber', async () => {
      const pub = await client({ clientId: 'pub' })
      pub.send(publish('ret', 'kept', 1, 1, { retain: true }))
      expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
      const sub = await client({ clientId: 'sub' })
      sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'ret', qos: 0 }] })
      expect(await sub.next()).to.deep.equal({ type: 'suback', packetId: 1, reasonCodes: [0] })
      expect(await sub.next()).to.deep.equal(publish('ret', 'kept', 0, undefined, { retain: true }))
    })

    it('will on abrupt close', async () => {
      const sub = await client({ clientId: 'sub' })
      sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'will', qos: 0 }] })
      await sub.next()
      const dying = await client({
        clientId: 'dying',
        will: { topic: 'will', payload: Buffer.from('bye'), qos: 0, retain: false }
      })
      dying.destroy()
      expect(await sub.next()).to.deep.equal(publish('will', 'bye'))
    })

    it('persistent session gets what was queued while away', async () => {
      const sub = await client({ clientId: 'away', clean: false })
      sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'q', qos: 1 }] })
      await sub.next()
      sub.send({ type: 'disconnect' })
      await sub.waitClosed()
      const pub = await client({ clientId: 'pub' })
      pub.send(publish('q', 'while away', 1, 1))
      await pub.next()
      const back = await open()
      const peer = back === 'memory' ? new Peer(broker) : new Peer({ stream: back })
      teardown.defer(() => peer.destroy())
      expect(await peer.connect({ clientId: 'away', clean: false })).to.deep.equal({
        type: 'connack',
        sessionPresent: true,
        reasonCode: 0
      })
      expect(await peer.next()).to.deep.include({ topic: 'q', qos: 1 })
    })

    it('takeover closes the older connection (MQTT 5: DISCONNECT 0x8E first)', async () => {
      const first = await client({ clientId: 'same', protocolLevel: 5 })
      await client({ clientId: 'same', protocolLevel: 5 })
      expect(await first.next()).to.deep.include({ type: 'disconnect', reasonCode: 0x8e })
      await first.waitClosed()
    })

    it('takeover of a 3.1.1 connection closes it without a packet', async () => {
      const first = await client({ clientId: 'same' })
      await client({ clientId: 'same' })
      await first.waitClosed()
    })

    it('a 200 KB message crosses chunk boundaries intact', async () => {
      const sub = await client({ clientId: 'sub' })
      sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'big', qos: 1 }] })
      await sub.next()
      const pub = await client({ clientId: 'pub' })
      const payload = Buffer.alloc(200_000, 7)
      pub.send({ type: 'publish', topic: 'big', payload, qos: 1, packetId: 1, retain: false, dup: false })
      expect(await pub.next()).to.deep.equal({ type: 'puback', packetId: 1 })
      const got = (await sub.next()) as PublishPacket
      expect(got.payload.equals(payload)).to.equal(true)
    })

    it('1000 QoS 0 messages arrive complete and in order', async () => {
      const sub = await client({ clientId: 'sub' })
      sub.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'n', qos: 0 }] })
      await sub.next()
      const pub = await client({ clientId: 'pub' })
      for (let i = 0; i < 1000; i++) pub.send(publish('n', String(i)))
      const got: string[] = []
      while (got.length < 1000) got.push(((await sub.next()) as PublishPacket).payload.toString())
      expect(got).to.deep.equal(Array.from({ length: 1000 }, (_, i) => String(i)))
    })
  })
}
