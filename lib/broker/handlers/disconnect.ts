import { ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { DisconnectPacket } from '../../packet/types.js'
import type { HandlerContext } from './context.js'

/**
 * DISCONNECT: the client leaves cleanly. The will is discarded [MQTT-3.1.2-10] unless an MQTT 5
 * client asks for it with reason code 0x04. An MQTT 5 client may change its Session Expiry Interval
 * here, but not from 0 to non-zero (MQTT 5.0 3.14.2.2.2).
 */
export function handleDisconnect(ctx: HandlerContext, packet: DisconnectPacket): void {
  const expiry = packet.properties?.sessionExpiryInterval
  if (expiry !== undefined) {
    const session = ctx.session
    if (session.expiryInterval === 0 && expiry !== 0) {
      ctx.fail(new ProtocolError('Session Expiry Interval changed from 0 on DISCONNECT'))
      return
    }
    session.expiryInterval = expiry
  }
  ctx.disconnected(packet.reasonCode === ReasonCode.DisconnectWithWillMessage)
}
