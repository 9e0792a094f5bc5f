import { ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { Packet } from '../../packet/types.js'
import type { Awaitable } from '../../util/awaitable.js'
import { handleAuth } from './auth.js'
import { handleConnect, refuse } from './connect.js'
import type { ConnectContext } from './context.js'
import { handleDisconnect } from './disconnect.js'
import { handlePingreq } from './pingreq.js'
import { handlePuback } from './puback.js'
import { handlePubcomp } from './pubcomp.js'
import { handlePublish } from './publish.js'
import { handlePubrec } from './pubrec.js'
import { handlePubrel } from './pubrel.js'
import { handleSubscribe } from './subscribe.js'
import { handleUnsubscribe } from './unsubscribe.js'

/** What the dispatcher gets (the connection's phase is `ctx.connection`'s). */
export type DispatchContext = ConnectContext

/**
 * Route one decoded packet to its handler after checking the connection state: the first packet
 * must be CONNECT [MQTT-3.1.0-1], a second CONNECT is a protocol violation [MQTT-3.1.0-2]; both
 * close the connection. Packets only a server sends never get here (the decoder refuses them).
 * Returns what the handler returns: a promise holds back the connection's next packet. PUBLISH
 * never returns one: its asynchronous rest goes to `finishPublish`, which lets the connection
 * pipeline PUBLISH packets while acknowledging them in order.
 */
export function dispatch(ctx: DispatchContext, packet: Packet): Awaitable<void> {
  if (ctx.connection.awaitingConnect) {
    if (packet.type === 'connect') return handleConnect(ctx, packet)
    // [MQTT-3.1.0-1] the first packet from the client must be CONNECT.
    ctx.fail(new ProtocolError(`expected CONNECT, got ${packet.type.toUpperCase()}`))
    return
  }
  const auth = ctx.auth
  const authFlow = auth?.flow
  if (auth !== undefined && authFlow !== undefined) {
    // Enhanced authentication: only AUTH (or DISCONNECT) until CONNACK (MQTT 5.0 4.12).
    if (packet.type === 'auth') return handleAuth(ctx, packet)
    auth.flow = undefined
    if (packet.type === 'disconnect') ctx.client.close()
    else refuse(authFlow, ReasonCode.ProtocolError, `${packet.type.toUpperCase()} during the authentication exchange`)
    return
  }
  // While CONNECT is still being handled the connection processes nothing else (its next packets
  // wait), so a connection that is not live here was refused or closed: ignore the packet.
  if (!ctx.connection.live) return
  switch (packet.type) {
    case 'publish':
      return handlePublish(ctx, packet)
    case 'puback':
      return handlePuback(ctx, packet)
    case 'pubrec':
      return handlePubrec(ctx, packet)
    case 'pubrel':
      return handlePubrel(ctx, packet)
    case 'pubcomp':
      return handlePubcomp(ctx, packet)
    case 'subscribe':
      return handleSubscribe(ctx, packet)
    case 'unsubscribe':
      return handleUnsubscribe(ctx, packet)
    case 'pingreq':
      return handlePingreq(ctx)
    case 'disconnect':
      return handleDisconnect(ctx, packet)
    case 'auth':
      return handleAuth(ctx, packet)
    case 'connect':
      // [MQTT-3.1.0-2] a second CONNECT is a protocol violation.
      ctx.fail(new ProtocolError('second CONNECT on one connection'))
      return
    default:
      ctx.fail(new ProtocolError(`unexpected ${packet.type.toUpperCase()} from a client`))
      return
  }
}
