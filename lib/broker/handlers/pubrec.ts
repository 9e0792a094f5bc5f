import { ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { PubrecPacket } from '../../packet/types.js'
import type { OutgoingRecord } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * PUBREC: the first half of a QoS 2 delivery completed. The session now keeps a PUBREL instead of
 * the PUBLISH and PUBREL is sent [MQTT-4.3.3-1]. An MQTT 5 PUBREC with an error reason code ends
 * the exchange instead (MQTT 5.0 section 4.3.3). An unknown id gets PUBREL anyway (MQTT 5: with 0x92).
 * A PUBREC for a QoS 1 delivery is a protocol violation: that PUBLISH stays unacknowledged until
 * PUBACK (3.1.1 [MQTT-4.3.2-1], 5.0 [MQTT-4.3.2-3]), so the connection closes (3.1.1
 * [MQTT-4.8.0-1]; MQTT 5 DISCONNECT 0x82 [MQTT-4.13.1-1]).
 */
export function handlePubrec(ctx: HandlerContext, packet: PubrecPacket): Awaitable<void> {
  const record = ctx.session.getOutgoing(packet.packetId)
  if (isPromise(record)) return record.then((found) => received(ctx, packet, found))
  return received(ctx, packet, record)
}

function received(ctx: HandlerContext, packet: PubrecPacket, record: OutgoingRecord | undefined): Awaitable<void> {
  const packetId = packet.packetId
  const session = ctx.session
  if (record === undefined) {
    if (ctx.client.protocolLevel === 5) ctx.send({ type: 'pubrel', packetId, reasonCode: ReasonCode.PacketIdentifierNotFound })
    else ctx.send({ type: 'pubrel', packetId })
    return
  }
  if (record.kind === 'pubrel') {
    // A repeated PUBREC: repeat the PUBREL.
    ctx.send({ type: 'pubrel', packetId })
    return
  }
  if (record.message.qos !== 2) {
    ctx.fail(new ProtocolError(`PUBREC for the QoS 1 delivery ${packetId}`))
    return
  }
  if ((packet.reasonCode ?? 0) >= ReasonCode.UnspecifiedError) {
    const deleted = session.deleteOutgoing(packetId)
    if (isPromise(deleted)) return deleted.then(() => ctx.outboundCompleted())
    ctx.outboundCompleted()
    return
  }
  const saved = session.saveOutgoing({ kind: 'pubrel', packetId })
  if (isPromise(saved)) return saved.then(() => ctx.send({ type: 'pubrel', packetId }))
  ctx.send({ type: 'pubrel', packetId })
}
