import type { AuthenticationResult } from '../../backend/backend.js'
import { MqttError, ProtocolError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { AuthPacket } from '../../packet/types.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import { credentialsOf } from './authenticate.js'
import { continueAuthentication } from './connect.js'
import type { AuthExchange, ConnectContext } from './context.js'

/**
 * AUTH (MQTT 5.0 4.12). During CONNECT it continues the enhanced authentication exchange the
 * backend started (`continue`); on a live connection it starts (0x19) or continues (0x18) a
 * re-authentication with the CONNECT's method [MQTT-4.12.1-1]. The backend's `authenticate`
 * decides each step: `continue` sends AUTH 0x18, `allow` AUTH 0x00 (re-authentication) or the
 * CONNACK, `deny` closes (CONNACK [MQTT-4.12.0-4] or DISCONNECT [MQTT-4.12.1-2]). AUTH from a
 * client that did not authenticate with a method is a protocol error [MQTT-4.12.0-7].
 */
export function handleAuth(ctx: ConnectContext, packet: AuthPacket): Awaitable<void> {
  const auth = ctx.auth
  const flow = auth?.flow
  if (auth !== undefined && flow !== undefined) {
    auth.flow = undefined
    return continueAuthentication(flow, packet)
  }
  const connect = auth?.connect
  if (auth === undefined || connect === undefined) {
    ctx.fail(new ProtocolError('AUTH without enhanced authentication'))
    return
  }
  const method = auth.method
  if (packet.properties?.authenticationMethod !== method) {
    ctx.fail(new ProtocolError('AUTH with another authentication method than CONNECT'))
    return
  }
  const code = packet.reasonCode ?? ReasonCode.Success
  const expected = auth.reauthenticating ? ReasonCode.ContinueAuthentication : ReasonCode.ReAuthenticate
  if (code !== expected) {
    ctx.fail(new ProtocolError(`unexpected AUTH reason code 0x${code.toString(16)}`))
    return
  }
  auth.reauthenticating = true
  const credentials = credentialsOf(connect, ctx.client.clientId, ctx.connection.connectionInfo, packet)
  credentials.reauthentication = true
  const result = ctx.backend.authenticate(ctx.client, credentials)
  if (isPromise(result)) return result.then((r) => reauthenticated(ctx, auth, r))
  reauthenticated(ctx, auth, result)
}

function reauthenticated(ctx: ConnectContext, auth: AuthExchange, result: AuthenticationResult): void {
  const method = auth.method
  switch (result.result) {
    case 'continue':
      ctx.send({
        type: 'auth',
        reasonCode: ReasonCode.ContinueAuthentication,
        properties: { ...result.properties, authenticationMethod: method }
      })
      return
    case 'allow':
      auth.reauthenticating = false
      ctx.send({ type: 'auth', reasonCode: ReasonCode.Success, properties: { ...result.properties, authenticationMethod: method } })
      return
    case 'deny':
      ctx.fail(new MqttError(result.reasonCode, result.reasonString ?? 're-authentication failed'), 'server')
      return
    case 'redirect':
      ctx.client.close(result.reasonCode, undefined, result.serverReference)
      return
  }
}
