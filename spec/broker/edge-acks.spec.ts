/**
 * Acknowledgements of the wrong type for an outgoing delivery close the connection:
 * - a PUBREC for a QoS 1 PUBLISH: that PUBLISH stays unacknowledged until PUBACK (3.1.1
 *   [MQTT-4.3.2-1]; 5.0 [MQTT-4.3.2-3]);
 * - a PUBCOMP for a QoS 1 PUBLISH, a PUBACK for a QoS 2 one, a PUBCOMP before the PUBREC.
 * 3.1 and 3.1.1 close the connection on a protocol violation ([MQTT-4.8.0-1] of 3.1.1); MQTT 5
 * sends DISCONNECT 0x82 Protocol Error first, the packet being "inconsistent with the state"
 * (5.0 section 4.13.1, [MQTT-4.13.1-1]). Acknowledgements for unknown packet ids stay tolerated.
 */
import { expect } from 'chai'
import type { Broker } from '../../lib/broker/broker.js'
import { ReasonCode } from '../../lib/packet/reason-codes.js'
import type { ProtocolLevel, PublishPacket, QoS } from '../../lib/packet/types.js'
import { AsyncBackend } from '../helpers/async-backend.js'
import { makeBroker } from '../helpers/broker.js'
import type { TestBrokerOptions } from '../helpers/broker.js'
import type { Peer } from '../helpers/flow.js'
import { connected, publish } from '../helpers/packets.js'
import { tcpPeer } from '../helpers/socket.js'
import { useTeardown } from '../helpers/teardown.js'
import type { Teardown } from '../helpers/teardown.js'

/** An acknowledgement's exact bytes: type byte, remaining length 2, packet id. */
function ack(type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number): Buffer {
  const first = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 }[type]
  return Buffer.from([first, 0x02, packetId >> 8, packetId & 0xff])
}

/** A subscriber on a real socket at `level` that received one PUBLISH of QoS `qos`. */
async function delivered(teardown: Teardown, broker: Broker, level: ProtocolLevel, qos: QoS): Promise<{ peer: Peer; packetId: number }> {
  const peer = await tcpPeer(teardown, broker, level)
  expect(await peer.connect({ protocolLevel: level, clientId: 'sub' })).to.deep.include({ type: 'connack', reasonCode: 0 })
  peer.send({ type: 'subscribe', packetId: 1, subscriptions: [{ topicFilter: 't', qos: 2 }] })
  expect(await peer.next()).to.deep.include({ type: 'suback' })
  const publisher = await connected(broker, { clientId: 'pub' })
  publisher.send(publish('t', 'm', qos, qos > 0 ? 7 : undefined))
  const packet = (await peer.next()) as PublishPacket
  expect(packet).to.deep.include({ type: 'publish', qos })
  return { peer, packetId: packet.packetId! }
}

/** The broker closes: MQTT 5 with DISCONNECT 0x82 first, 3.1/3.1.1 with nothing. */
async function closedForProtocolError(peer: Peer, level: ProtocolLevel): Promise<void> {
  await peer.waitClosed(3000)
  const rest = peer.takeReceived()
  expect(rest).to.deep.equal(level === 5 ? [{ type: 'disconnect', reasonCode: ReasonCode.ProtocolError }] : [])
}

/** The connection is still open and answering. */
async function stillOpen(peer: Peer): Promise<void> {
  peer.send({ type: 'pingreq' })
  expect(await peer.next()).to.deep.equal({ type: 'pingresp' })
}

describe('edges – acknowledgements of the wrong type', () => {
  const teardown = useTeardown()

  for (const [backendName, options] of [
    ['MemoryBackend', (): TestBrokerOptions => ({})],
    ['an asynchronous backend', (): TestBrokerOptions => ({ backend: new AsyncBackend() })]
  ] as const) {
    for (const level of [3, 4, 5] as const) {
      describe(`protocol level ${level}, ${backendName}`, () => {
        it('PUBREC for a QoS 1 delivery closes the connection, no PUBREL [MQTT-4.3.2-1] [MQTT-4.3.2-3]', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 1)
          peer.send(ack('pubrec', packetId))
          await closedForProtocolError(peer, level)
        })

        it('PUBCOMP for a QoS 1 delivery closes the connection', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 1)
          peer.send(ack('pubcomp', packetId))
          await closedForProtocolError(peer, level)
        })

        it('PUBACK for a QoS 2 delivery closes the connection', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 2)
          peer.send(ack('puback', packetId))
          await closedForProtocolError(peer, level)
        })

        it('PUBCOMP for a QoS 2 delivery before its PUBREC closes the connection', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 2)
          peer.send(ack('pubcomp', packetId))
          await closedForProtocolError(peer, level)
        })

        it('PUBACK for a QoS 2 delivery after PUBREC/PUBREL closes the connection', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 2)
          peer.send(ack('pubrec', packetId))
          expect(await peer.next()).to.deep.include({ type: 'pubrel', packetId })
          peer.send(ack('puback', packetId))
          await closedForProtocolError(peer, level)
        })

        it('the right acknowledgements complete both exchanges; unknown packet ids are tolerated', async () => {
          const broker = makeBroker(teardown, options())
          const { peer, packetId } = await delivered(teardown, broker, level, 1)
          peer.send(ack('puback', packetId))
          peer.send(ack('puback', 999))
          peer.send(ack('pubcomp', 998))
          await stillOpen(peer)
          peer.send(ack('pubrec', 997))
          expect(await peer.next()).to.deep.include({ type: 'pubrel', packetId: 997 })
          await stillOpen(peer)
        })
      })
    }
  }
})
