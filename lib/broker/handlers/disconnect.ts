import { ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { DisconnectPacket } from '../../packet/types.js'
import type { HandlerContext } from './context.js'

/**
 * DISCONNECT: the client leaves cleanly. The will is discarded [MQTT-3.1.2-10] unless an MQTT 5
 * client asks for it with reason code 0x04. An MQTT 5 client may change its Session Expiry Interval
 * here (capped by `maxSessionExpiryInterval`), but not to non-zero when its CONNECT asked for 0:
 * that is a protocol error, DISCONNECT 0x82 (MQTT 5.0 3.14.2.2.2).
 */
export function handleDisconnect(ctx: HandlerContext, packet: DisconnectPacket): void {
  const expiry = packet.properties?.sessionExpiryInterval
  if (expiry !== undefined) {
    if (ctx.state.connectSessionExpiry === 0 && expiry !== 0) {
      ctx.fail(new ProtocolError('Session Expiry Interval changed from 0 on DISCONNECT'))
      return
    }
    ctx.session.expiryInterval = Math.min(expiry, ctx.options.maxSessionExpiryInterval)
  }
  ctx.disconnected(packet.reasonCode === ReasonCode.DisconnectWithWillMessage)
}
