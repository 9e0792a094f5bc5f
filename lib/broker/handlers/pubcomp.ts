import { ProtocolError } from '../../packet/errors.js'
import type { PubcompPacket } from '../../packet/types.js'
import type { OutgoingRecord } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * PUBCOMP: a QoS 2 delivery completed; its id and window slot become free [MQTT-4.3.3-1]. An
 * unknown id is ignored (logged). A PUBCOMP for a QoS 1 delivery, or for a QoS 2 one before its
 * PUBREC, is a protocol violation: the connection closes (3.1.1 [MQTT-4.8.0-1]; MQTT 5 DISCONNECT
 * 0x82 [MQTT-4.13.1-1]).
 */
export function handlePubcomp(ctx: HandlerContext, packet: PubcompPacket): Awaitable<void> {
  const record = ctx.session.getOutgoing(packet.packetId)
  if (isPromise(record)) return record.then((found) => completed(ctx, packet.packetId, found))
  return completed(ctx, packet.packetId, record)
}

function completed(ctx: HandlerContext, packetId: number, record: OutgoingRecord | undefined): Awaitable<void> {
  if (record === undefined) {
    ctx.log.debug('PUBCOMP for no delivery in flight', { clientId: ctx.client.clientId, packetId })
    return
  }
  if (record.kind !== 'pubrel') {
    const what = record.message.qos === 1 ? 'the QoS 1 delivery' : 'the QoS 2 delivery before its PUBREC,'
    ctx.fail(new ProtocolError(`PUBCOMP for ${what} ${packetId}`))
    return
  }
  const deleted = ctx.session.deleteOutgoing(packetId)
  if (isPromise(deleted)) return deleted.then(() => ctx.outboundCompleted())
  ctx.outboundCompleted()
}
