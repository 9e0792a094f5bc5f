import { ProtocolError } from '../../packet/errors.js'
import type { AuthPacket } from '../../packet/types.js'
import type { HandlerContext } from './context.js'

/**
 * AUTH (MQTT 5). Enhanced authentication and re-authentication are a later feature: the seam is
 * here. Until then an AUTH packet is a protocol error, as it is for a server that did not start an
 * authentication exchange (MQTT 5.0 4.12).
 */
export function handleAuth(ctx: HandlerContext, _packet: AuthPacket): void {
  ctx.fail(new ProtocolError('AUTH without an enhanced authentication exchange'))
}
