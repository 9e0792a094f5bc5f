import { expect } from 'chai'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqtt from 'mqtt'
import { Broker } from '../../../lib/broker/broker.js'
import { silentLogger } from '../../../lib/broker/logger.js'
import type { KeyvBackend, KeyvBackendEvent } from '../../../lib/backend/keyv/index.js'
import { encode } from '../../../lib/packet/index.js'
import { useRedisServer } from '../../helpers/redis-server.js'
import { useTeardown } from '../../helpers/teardown.js'
import { randomRoot, sleep, startNode, waitFor } from './nodes.js'

// A QoS 0 publish does not wait for Redis (awaitQos0 false, the default). A publisher that floods
// faster than Redis routes must still not pile up Redis work without bound: the backlog would
// outlast the command timeout, the backend would report Redis unavailable, and every publish
// after it would be refused (messages lost, connections closed, CONNACK 3) although Redis is
// fine. The link's back-pressure makes such a publisher wait instead: here Redis stops answering
// for 4 s (CLIENT PAUSE), and the broker must stop reading the publisher meanwhile (it delivers
// locally before Redis answers, so what the subscriber gets during the pause shows how far it read).
describe('KeyvBackend – Redis behind (a QoS 0 flood, a timeout)', function () {
  this.timeout(120_000)
  const teardown = useTeardown()
  const server = useRedisServer()

  it('stops reading the publisher while Redis is behind, and loses nothing', async () => {
    const events: KeyvBackendEvent['type'][] = []
    const node: KeyvBackend = teardown.add(await startNode(server.url, randomRoot(), { awaitQos0: false, commandTimeout: 10_000 }), (n) => n.close())
    node.events$.subscribe((e) => events.push(e.type))
    const broker = teardown.add(new Broker({ backend: node, logger: silentLogger, maxOutgoingQueue: 1_000_000 }), (b) => b.close())
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })

    const subscriber = teardown.add(mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId: 'flood-sub', reconnectPeriod: 0 }), (c) => c.end(true))
    await new Promise<void>((resolve, reject) => {
      subscriber.once('connect', () => resolve())
      subscriber.once('error', reject)
    })
    await subscriber.subscribeAsync('flood/t', { qos: 0 })
    const total = 60_000
    let received = 0
    let inOrder = true
    subscriber.on('message', (_topic, payload) => {
      if (payload.readUInt32BE(0) !== received) inOrder = false
      received++
    })

    // The publisher: one raw TCP connection that writes every PUBLISH at once (the kernel and the
    // broker's reads are the only pace).
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port }, () => resolve(s))
      s.once('error', reject)
    })
    teardown.add(socket, (s) => s.destroy())
    let closed = false
    socket.on('close', () => {
      closed = true
    })
    const connack = new Promise((resolve) => socket.once('data', resolve))
    socket.write(encode({ type: 'connect', protocolLevel: 4, clientId: 'flood-pub', clean: true, keepalive: 0 }))
    await connack
    const packets: Buffer[] = []
    for (let i = 0; i < total; i++) {
      const payload = Buffer.alloc(64)
      payload.writeUInt32BE(i, 0)
      packets.push(encode({ type: 'publish', topic: 'flood/t', payload, qos: 0, retain: false, dup: false }))
    }
    const raw = (node.keyv.store as { client: { sendCommand<T>(args: string[]): Promise<T> } }).client
    const pauseMs = 4000
    // Redis holds every write command (scripts included) of every client for pauseMs from now.
    await raw.sendCommand(['CLIENT', 'PAUSE', String(pauseMs), 'WRITE'])
    const pausedAt = Date.now()
    socket.write(Buffer.concat(packets))
    await sleep(pauseMs / 8)
    const early = received
    await sleep(pauseMs / 2)
    const late = received
    expect(Date.now() - pausedAt, 'the sampling took longer than the pause').to.be.below(pauseMs)
    // Without back-pressure the broker reads on and delivers locally (tens of thousands here);
    // with it, at most the congestion bound (2048 batched items) plus what was read before.
    expect(late - early, 'delivered while Redis held every publish').to.be.below(4000)

    await waitFor(() => received === total || events.length > 0 || closed, 100_000, 'the flood delivered')
    expect(events, 'Redis reported unavailable').to.deep.equal([])
    expect(closed, 'the publisher was disconnected').to.equal(false)
    expect(received).to.equal(total)
    expect(inOrder, 'in publish order').to.equal(true)
    expect(node.stats.publishFailed).to.equal(0)
  })

  it('comes back by itself after a command timed out while the connection stayed up', async () => {
    const events: KeyvBackendEvent['type'][] = []
    const node: KeyvBackend = teardown.add(await startNode(server.url, randomRoot(), { commandTimeout: 500 }), (n) => n.close())
    node.events$.subscribe((e) => events.push(e.type))
    const raw = (node.keyv.store as { client: { sendCommand<T>(args: string[]): Promise<T> } }).client
    // Redis holds every command of every client for 1.5 s: one of this node's times out.
    await raw.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL'])
    await waitFor(() => events.length > 0, 10_000, 'the unavailable event')
    expect(events[0]).to.equal('unavailable')
    expect(node.available).to.equal(false)
    // Nothing is sent meanwhile (operations refuse at once); the link must try again itself.
    await waitFor(() => events.length > 1, 15_000, 'the available event')
    expect(events).to.deep.equal(['unavailable', 'available'])
    expect(node.available).to.equal(true)
    expect(await node.publish(undefined, { topic: 'back/t', payload: Buffer.from('x'), qos: 1, retain: false })).to.equal(0)
  })
})
