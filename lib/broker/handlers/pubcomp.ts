import type { PubcompPacket } from '../../packet/types.js'
import type { OutgoingRecord } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/** PUBCOMP: a QoS 2 delivery completed; its id and window slot become free [MQTT-4.3.3-1]. */
export function handlePubcomp(ctx: HandlerContext, packet: PubcompPacket): Awaitable<void> {
  const record = ctx.session.getOutgoing(packet.packetId)
  if (isPromise(record)) return record.then((found) => completed(ctx, packet.packetId, found))
  return completed(ctx, packet.packetId, record)
}

function completed(ctx: HandlerContext, packetId: number, record: OutgoingRecord | undefined): Awaitable<void> {
  if (record === undefined || record.kind !== 'pubrel') {
    ctx.log.debug('PUBCOMP for no PUBREL in flight', { clientId: ctx.clientId, packetId })
    return
  }
  const deleted = ctx.session.deleteOutgoing(packetId)
  if (isPromise(deleted)) return deleted.then(() => ctx.outboundCompleted())
  ctx.outboundCompleted()
}
