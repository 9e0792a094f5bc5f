import { expect } from 'chai'
import { filter, firstValueFrom } from 'rxjs'
import { encode } from '../../lib/packet/index.js'
import { makeBroker } from '../helpers/broker.js'
import { publish } from '../helpers/packets.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'
import { Peer } from '../helpers/flow.js'
import { WebSocket, createWebSocketStream } from 'ws'
import type { Duplex } from 'node:stream'
import { useTeardown } from '../helpers/teardown.js'

/**
 * A subscriber that never reads is disconnected as a slow consumer (its bounded queue overflowed).
 * The MQTT 5 DISCONNECT 0x97 queues behind the output it does not read, so it is best effort; what
 * must hold is that the broker lets go of the socket within a bounded time (about a second after
 * the close), not whenever the peer reads, nor never.
 */
describe('broker – the socket of a slow consumer that never reads is let go', function () {
  this.timeout(60000)
  const teardown = useTeardown()

  type Kind = 'tcp' | 'ws'

  async function open(kind: Kind, port: number): Promise<{ peer: Peer; stream: Duplex }> {
    if (kind === 'tcp') {
      const peer = await openTcpPeer(teardown, port)
      return { peer, stream: peer.stream }
    }
    const stream = await new Promise<Duplex>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, 'mqtt')
      socket.once('open', () => resolve(createWebSocketStream(socket)))
      socket.once('error', reject)
    })
    teardown.add(stream, (s) => s.destroy())
    stream.on('error', () => undefined)
    return { peer: new Peer({ stream }), stream }
  }

  async function frozenSubscriber(kind: Kind, port: number): Promise<{ frozen: Peer; stream: Duplex }> {
    const { peer: frozen, stream } = await open(kind, port)
    expect(await frozen.connect({ clientId: 'frozen', protocolLevel: 5 })).to.deep.include({ type: 'connack', reasonCode: 0 })
    frozen.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'flood', qos: 1 }] })
    expect((await frozen.next()).type).to.equal('suback')
    stream.pause() // from now on it reads nothing (over ws, the socket pauses once the stream's buffer is full)
    return { frozen, stream }
  }

  for (const kind of ['tcp', 'ws'] as const) it(`${kind}: queue overflow: DISCONNECT queued behind unread output, the socket destroyed soon after`, async () => {
    // A real clock: the destroy timer of a closing connection is the one under test.
    const broker = makeBroker(teardown, { maxBufferedBytes: 64 * 1024, maxOutgoingQueue: 20, maxPublisherPause: 0, sendTimeout: 120_000 })
    const { port } = await broker.listen(kind === 'tcp' ? { transport: 'tcp', host: '127.0.0.1', port: 0 } : { transport: 'ws', host: '127.0.0.1', port: 0, path: '/mqtt' })
    const { frozen, stream } = await frozenSubscriber(kind, port)
    const disconnected = firstValueFrom(broker.events$.pipe(filter((e) => e.type === 'client.disconnected' && e.client.clientId === 'frozen')))
    const { peer: publisher } = await open(kind, port)
    expect(await publisher.connect({ clientId: 'publisher' })).to.deep.include({ type: 'connack', reasonCode: 0 })
    const payload = 'y'.repeat(16 * 1024)
    let gone = false
    void disconnected.then(() => (gone = true))
    for (let i = 0; !gone; i++) {
      if (i > 5000) throw new Error('the frozen subscriber was never disconnected')
      publisher.send(publish('flood', payload, 1, (i % 60000) + 1))
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    const event = await disconnected
    expect(event).to.include({ reason: 'slow-consumer' })
    expect(broker.stats.slowConsumers).to.equal(1)
    const closedAt = Date.now()
    // A socket the broker still holds (even half-closed) takes these bytes; one it destroyed answers
    // them with a reset, which closes ours.
    const ping = encode({ type: 'pingreq' }, 5)
    while (!frozen.isConnectionClosed && Date.now() - closedAt < 10_000) {
      stream.write(ping)
      await Promise.race([frozen.closed, new Promise((resolve) => setTimeout(resolve, 50))])
    }
    expect(frozen.isConnectionClosed, 'the broker still holds the socket').to.equal(true)
    expect(Date.now() - closedAt, 'ms until the socket was let go').to.be.below(8000)
    // The publisher was never held up for it.
    publisher.send({ type: 'pingreq' })
    let packet = await publisher.next(5000)
    while (packet.type !== 'pingresp') packet = await publisher.next(5000)
  })
})
