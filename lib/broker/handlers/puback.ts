import { ProtocolError } from '../../packet/errors.js'
import type { PubackPacket } from '../../packet/types.js'
import type { OutgoingRecord } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * PUBACK: a QoS 1 delivery completed [MQTT-4.3.2-1]. Its packet id becomes free and its window slot
 * goes to the next queued delivery. An unknown id is ignored (logged). A PUBACK for a QoS 2
 * delivery is a protocol violation: the connection closes (3.1.1 [MQTT-4.8.0-1]; MQTT 5 DISCONNECT
 * 0x82, a packet "inconsistent with the state" [MQTT-4.13.1-1]).
 */
export function handlePuback(ctx: HandlerContext, packet: PubackPacket): Awaitable<void> {
  const record = ctx.session.getOutgoing(packet.packetId)
  if (isPromise(record)) return record.then((found) => acknowledged(ctx, packet.packetId, found))
  return acknowledged(ctx, packet.packetId, record)
}

function acknowledged(ctx: HandlerContext, packetId: number, record: OutgoingRecord | undefined): Awaitable<void> {
  if (record === undefined) {
    ctx.log.debug('PUBACK for no delivery in flight', { clientId: ctx.client.clientId, packetId })
    return
  }
  if (record.kind !== 'publish' || record.message.qos !== 1) {
    ctx.fail(new ProtocolError(`PUBACK for the QoS 2 delivery ${packetId}`))
    return
  }
  const deleted = ctx.session.deleteOutgoing(packetId)
  if (isPromise(deleted)) return deleted.then(() => ctx.outboundCompleted())
  ctx.outboundCompleted()
}
