import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import { IDLE_RELEASE_MS } from '../../lib/broker/inbound-scheduler.js'
import { encode } from '../../lib/packet/index.js'
import type { Packet } from '../../lib/packet/types.js'
import { makeBroker } from '../helpers/broker.js'
import { useTeardown } from '../helpers/teardown.js'
import { VirtualClock, until } from '../helpers/virtual-clock.js'
import { openTcpPeer } from '../helpers/tcp-peer.js'

/** Whether the connection of `clientId` holds a decoder (white box: the state an idle connection gives back). */
function hasDecoder(broker: Broker, clientId: string): boolean {
  const client = broker.connectedClients.find((c) => c.clientId === clientId)
  if (client === undefined) throw new Error(`${clientId} is not connected`)
  return (client as unknown as { decoder: unknown }).decoder !== undefined
}

function bytesRead(broker: Broker): number {
  return broker.trafficBytes().get(undefined)?.received ?? 0
}

describe('broker – an idle connection gives back its decoding state', function () {
  this.timeout(20000)
  const teardown = useTeardown()

  async function setUp(): Promise<{ broker: Broker; clock: VirtualClock; port: number }> {
    const clock = new VirtualClock()
    // A CONNECT bound far below the packet bound: a decoder made again must take the packet bound.
    const broker = makeBroker(teardown, { timerInterval: 100, clock, maxConnectPacketSize: 512, maximumPacketSize: 64 * 1024 })
    const { port } = await broker.listen({ transport: 'tcp', host: '127.0.0.1', port: 0 })
    return { broker, clock, port }
  }

  it('drops the decoder after the idle time and decodes the next packets as before (MQTT 5, the negotiated bound)', async () => {
    const { broker, clock, port } = await setUp()
    const peer = await openTcpPeer(teardown, port)
    expect(await peer.connect({ clientId: 'v5', protocolLevel: 5, keepalive: 60 })).to.deep.include({ reasonCode: 0 })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 1 }] })
    expect((await peer.next()).type).to.equal('suback')
    expect(hasDecoder(broker, 'v5')).to.equal(true)
    await clock.advance(IDLE_RELEASE_MS + 200)
    expect(hasDecoder(broker, 'v5')).to.equal(false)
    // MQTT 5 properties (decoded at level 5 only) in a packet larger than the CONNECT bound.
    const payload = Buffer.alloc(4000, 7)
    const packet: Packet = { type: 'publish', topic: 't', payload, qos: 1, retain: false, dup: false, packetId: 2, properties: { userProperties: [['k', 'v']], contentType: 'x/y' } }
    peer.send(packet)
    const got: Packet[] = [await peer.next(), await peer.next()]
    const delivered = got.find((p) => p.type === 'publish')
    expect(got.map((p) => p.type).sort()).to.deep.equal(['puback', 'publish'])
    expect(delivered).to.deep.include({ topic: 't', qos: 1 })
    expect(delivered?.type === 'publish' && delivered.payload.equals(payload)).to.equal(true)
    expect(delivered?.type === 'publish' && delivered.properties).to.deep.include({ userProperties: [['k', 'v']], contentType: 'x/y' })
    expect(hasDecoder(broker, 'v5')).to.equal(true)
    expect(peer.isConnectionClosed).to.equal(false)
  })

  it('keeps the decoder of a connection in the middle of a packet, however long it is quiet', async () => {
    const { broker, clock, port } = await setUp()
    const peer = await openTcpPeer(teardown, port)
    expect(await peer.connect({ clientId: 'half', keepalive: 60 })).to.deep.include({ reasonCode: 0 })
    peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 'h', qos: 0 }] })
    expect((await peer.next()).type).to.equal('suback')
    const bytes = encode({ type: 'publish', topic: 'h', payload: Buffer.from('split in two'), qos: 0, retain: false, dup: false }, 4)
    const read = bytesRead(broker)
    peer.send(bytes.subarray(0, 6))
    await until(() => bytesRead(broker) >= read + 6, 'first half read')
    await clock.advance(IDLE_RELEASE_MS * 3)
    expect(hasDecoder(broker, 'half')).to.equal(true)
    peer.send(bytes.subarray(6))
    const got = await peer.next()
    expect(got.type === 'publish' && got.payload.toString()).to.equal('split in two')
  })

  it('keeps the decoder of a connection that is not quiet', async () => {
    const { broker, clock, port } = await setUp()
    const peer = await openTcpPeer(teardown, port)
    expect(await peer.connect({ clientId: 'busy', keepalive: 60 })).to.deep.include({ reasonCode: 0 })
    for (let i = 0; i < 5; i++) {
      peer.send({ type: 'pingreq' })
      expect((await peer.next()).type).to.equal('pingresp')
      await clock.advance(IDLE_RELEASE_MS / 2)
      expect(hasDecoder(broker, 'busy')).to.equal(true)
    }
  })
})
