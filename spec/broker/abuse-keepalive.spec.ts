import { expect } from 'chai'
import { encode } from '../../lib/packet/index.js'
import { ConnectReturnCode } from '../../lib/packet/reason-codes.js'
import type { Broker } from '../../lib/broker/broker.js'
import { makeBroker } from '../helpers/broker.js'
import { publish } from '../helpers/packets.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock, until } from '../helpers/virtual-clock.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

const open = openTcpPeer

/** Bytes the broker read from its TCP clients so far (default tenant). */
function bytesRead(broker: Broker): number {
  return broker.trafficBytes().get(undefined)?.received ?? 0
}

describe('broker – keepalive counts packets, not bytes', function () {
  this.timeout(30000)
  const teardown = useTeardown()

  it('drops a client trickling one packet byte by byte at 1.5 × keepalive', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 100, clock })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const peer = await open(teardown, port)
    expect(await peer.connect({ clientId: 'trickler', keepalive: 2 })).to.deep.include({ reasonCode: 0 })
    const bytes = encode(publish('t', 'x'.repeat(1000)), 4)
    // One byte every 100 ms of virtual time, each read by the broker before the clock moves on.
    let i = 0
    while (broker.connectedClients.length > 0 && i < bytes.length - 1) {
      const read = bytesRead(broker)
      peer.send(bytes.subarray(i, i + 1))
      i++
      await until(() => bytesRead(broker) > read, `byte ${i} read`)
      await clock.advance(100)
    }
    expect(broker.connectedClients, `open after ${i} bytes`).to.have.length(0)
    // 1.5 × keepalive after CONNECT: closed at the first tick past 3 s, not before.
    expect(i).to.equal(31)
    await peer.waitClosed()
  })

  it('keeps a client sending a large packet slowly but steadily', async () => {
    const clock = new VirtualClock()
    const broker = makeBroker(teardown, { timerInterval: 100, clock })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const peer = await open(teardown, port)
    expect(await peer.connect({ clientId: 'steady', keepalive: 1 })).to.deep.include({ reasonCode: 0 })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'big', qos: 0 }] })
    expect((await peer.next()).type).to.equal('suback')
    const bytes = encode(publish('big', 'y'.repeat(200 * 1024)), 4)
    // 20 KiB every 400 ms of virtual time: 4 s for the packet, longer than 1.5 × keepalive.
    const base = bytesRead(broker)
    for (let i = 0; i < bytes.length; i += 20 * 1024) {
      peer.send(bytes.subarray(i, i + 20 * 1024))
      const sent = Math.min(bytes.length, i + 20 * 1024)
      await until(() => bytesRead(broker) >= base + sent, `${sent} bytes read`)
      await clock.advance(400)
    }
    const got = await peer.next(5000)
    expect(got.type === 'publish' && got.payload.length).to.equal(200 * 1024)
    expect(peer.isConnectionClosed).to.equal(false)
    expect(broker.connectedClients).to.have.length(1)
  })

  it('has a server maximum keepalive by default: MQTT 5 keepalive 0 is told 65,535, 3.1.1 keepalive 0 is accepted', async () => {
    const broker = makeBroker(teardown, { maxKeepalive: undefined })
    expect(broker.options.maxKeepalive).to.equal(65535)
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const v5 = await open(teardown, port)
    expect(await v5.connect({ clientId: 'k5', protocolLevel: 5, keepalive: 0 })).to.deep.equal({
      type: 'connack',
      sessionPresent: false,
      reasonCode: 0,
      properties: { serverKeepAlive: 65535 }
    })
    const v4 = await open(teardown, port)
    expect(await v4.connect({ clientId: 'k4', keepalive: 0 })).to.deep.include({ reasonCode: 0 })
    const small = makeBroker(teardown, { maxKeepalive: 60 })
    const { port: smallPort } = await small.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    const v4small = await open(teardown, smallPort)
    expect(await v4small.connect({ clientId: 'k4s', keepalive: 0 })).to.deep.include({ reasonCode: ConnectReturnCode.IdentifierRejected })
  })
})
