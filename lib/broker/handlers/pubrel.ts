import { ReasonCode } from '../../packet/reason-codes.js'
import type { PubrelPacket } from '../../packet/types.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * PUBREL: the client releases an incoming QoS 2 message. The id is forgotten and PUBCOMP sent
 * [MQTT-4.3.3-2]; MQTT 5: with 0x92 when the id was unknown.
 */
export function handlePubrel(ctx: HandlerContext, packet: PubrelPacket): Awaitable<void> {
  const known = ctx.session.hasIncoming(packet.packetId)
  if (isPromise(known)) return known.then((found) => release(ctx, packet.packetId, found))
  return release(ctx, packet.packetId, known)
}

function release(ctx: HandlerContext, packetId: number, known: boolean): Awaitable<void> {
  if (!known) {
    if (ctx.client.protocolLevel === 5) ctx.send({ type: 'pubcomp', packetId, reasonCode: ReasonCode.PacketIdentifierNotFound })
    else ctx.send({ type: 'pubcomp', packetId })
    return
  }
  const deleted = ctx.session.deleteIncoming(packetId)
  if (isPromise(deleted)) return deleted.then(() => pubcomp(ctx, packetId))
  pubcomp(ctx, packetId)
}

function pubcomp(ctx: HandlerContext, packetId: number): void {
  ctx.state.releaseInbound()
  ctx.send({ type: 'pubcomp', packetId })
}
