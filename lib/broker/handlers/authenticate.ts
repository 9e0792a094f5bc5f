import type { AuthenticationResult, Credentials } from '../../backend/backend.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { AuthPacket, ConnectPacket } from '../../packet/types.js'
import type { ConnectionInfo } from '../../transport/connection.js'
import { isPromise } from '../../util/awaitable.js'
import { supportsAuthenticationMethod } from './auth-method.js'
import type { ConnectFlow, ConnectStep } from './context.js'
import { refuse } from './refuse.js'

/** The credentials of a CONNECT, or of the AUTH packet `auth` continuing its exchange. */
export function credentialsOf(
  packet: ConnectPacket,
  clientId: string,
  connection: ConnectionInfo,
  auth?: AuthPacket
): Credentials {
  const credentials: Credentials = { clientId, username: packet.username, password: packet.password, connect: packet, connection }
  const properties = auth === undefined ? packet.properties : auth.properties
  const method = packet.properties?.authenticationMethod
  if (method !== undefined) credentials.authenticationMethod = method
  if (properties?.authenticationData !== undefined) credentials.authenticationData = properties.authenticationData
  return credentials
}

/** A copy of `packet` holding no view of the input chunk (binary fields copied). */
function detachedConnect(packet: ConnectPacket): ConnectPacket {
  const copy: ConnectPacket = { ...packet }
  if (packet.password !== undefined) copy.password = Buffer.from(packet.password)
  if (packet.will !== undefined) copy.will = { ...packet.will, payload: Buffer.from(packet.will.payload) }
  const data = packet.properties?.authenticationData
  if (data !== undefined) copy.properties = { ...packet.properties, authenticationData: Buffer.from(data) }
  return copy
}

/** Ask the backend whether the client may connect (MQTT 5: possibly an AUTH exchange first). */
export const authenticate: ConnectStep = {
  name: 'authenticate',
  run(flow) {
    const { ctx, packet } = flow
    const auth = ctx.auth
    if (auth !== undefined) {
      if (!supportsAuthenticationMethod(ctx.backend, ctx.client, auth.method)) {
        // An unsupported method: CONNACK 0x8C (rather than 0x87) and close [MQTT-4.12.0-1].
        return refuse(flow, ReasonCode.BadAuthenticationMethod, 'authentication method not supported')
      }
      // Kept for re-authentication: a copy, so that the input chunk it was decoded from can go.
      auth.connect = detachedConnect(packet)
    }
    const result = ctx.backend.authenticate(ctx.client, credentialsOf(packet, ctx.client.clientId, ctx.connection.connectionInfo))
    if (isPromise(result)) return result.then((r) => authenticated(flow, r))
    return authenticated(flow, result)
  }
}

/** The backend's answer to a CONNECT (or to an AUTH continuing its exchange): go on, refuse, or AUTH 0x18. */
export function authenticated(flow: ConnectFlow, result: AuthenticationResult): boolean {
  const { ctx } = flow
  const v5 = ctx.client.protocolLevel === 5
  switch (result.result) {
    case 'allow': {
      const auth = ctx.auth
      if (auth !== undefined && v5) {
        // CONNACK carries the method and the backend's final data (MQTT 5.0 4.12).
        flow.authProperties = { authenticationMethod: auth.method, ...result.properties }
      }
      return true
    }
    case 'deny':
      return refuse(flow, result.reasonCode, result.reasonString)
    case 'redirect':
      if (v5) {
        ctx.connection.refuse(
          {
            type: 'connack',
            sessionPresent: false,
            reasonCode: result.reasonCode,
            properties: { serverReference: result.serverReference }
          },
          5
        )
        return false
      }
      return refuse(flow, ReasonCode.ServerUnavailable)
    case 'continue': {
      const auth = ctx.auth
      if (auth === undefined || !v5) {
        // No AUTH to a client that gave no method [MQTT-4.12.0-6].
        return refuse(flow, ReasonCode.BadAuthenticationMethod, 'enhanced authentication needs an Authentication Method')
      }
      // AUTH 0x18 [MQTT-4.12.0-2] with the same method [MQTT-4.12.0-5]; the CONNECT waits for the client's AUTH.
      auth.flow = flow
      ctx.send({
        type: 'auth',
        reasonCode: ReasonCode.ContinueAuthentication,
        properties: { ...result.properties, authenticationMethod: auth.method }
      })
      return false
    }
  }
}
