/** Packet builders and connected peers shared by the broker specs. */
import { expect } from 'chai'
import type { PublishPacket, QoS, Subscription } from '../../lib/packet/types.js'
import type { ConnectPacket } from '../../lib/packet/types.js'
import { Peer } from './flow.js'
import type { ConnectionSink } from './flow.js'

/** A PUBLISH packet (packet id only when given). */
export function publish(
  topic: string,
  payload: string,
  qos: QoS = 0,
  packetId?: number,
  extra: Partial<PublishPacket> = {}
): PublishPacket {
  const packet: PublishPacket = { type: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false, ...extra }
  if (packetId !== undefined) packet.packetId = packetId
  return packet
}

/** A peer that completed CONNECT successfully. */
export async function connected(sink: ConnectionSink, fields: Partial<ConnectPacket> = {}): Promise<Peer> {
  const peer = new Peer(sink)
  const ack = await peer.connect({ clientId: 'c', ...fields })
  expect(ack).to.include({ type: 'connack', reasonCode: 0 })
  return peer
}

/** SUBSCRIBE and check the SUBACK grants `expected` (default: the requested QoS). */
export async function subscribe(peer: Peer, subscriptions: Subscription[], expected?: number[], packetId = 1): Promise<void> {
  peer.send({ type: 'subscribe', packetId, subscriptions })
  expect(await peer.next()).to.deep.equal({
    type: 'suback',
    packetId,
    reasonCodes: expected ?? subscriptions.map((s) => s.qos)
  })
}
