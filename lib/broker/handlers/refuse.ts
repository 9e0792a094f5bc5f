import { ConnectReturnCode, ReasonCode } from '../../packet/reason-codes.js'
import type { ConnectFlow } from './context.js'

/**
 * Refuse the CONNECT with an MQTT 5 reason code: CONNACK with that code (5.0) or the matching
 * 3.1.1 return code, then close [MQTT-3.2.2-5] [MQTT-3.2.2-6].
 */
export function refuse(flow: ConnectFlow, reasonCode: number, reasonString?: string): false {
  const { ctx } = flow
  ctx.log.info('CONNECT refused', { clientId: flow.packet.clientId, reasonCode, reasonString })
  const level = ctx.client.protocolLevel
  if (level === 5) {
    ctx.connection.refuse(
      reasonString === undefined
        ? { type: 'connack', sessionPresent: false, reasonCode }
        : { type: 'connack', sessionPresent: false, reasonCode, properties: { reasonString } },
      5
    )
  } else {
    ctx.connection.refuse({ type: 'connack', sessionPresent: false, reasonCode: returnCodeFor(reasonCode) }, level)
  }
  return false
}

/** The 3.1/3.1.1 CONNACK return code closest to an MQTT 5 reason code. */
export function returnCodeFor(reasonCode: number): number {
  switch (reasonCode) {
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnectReturnCode.UnacceptableProtocolVersion
    case ReasonCode.ClientIdentifierNotValid:
      return ConnectReturnCode.IdentifierRejected
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod:
      return ConnectReturnCode.BadUserNameOrPassword
    case ReasonCode.UnspecifiedError:
    case ReasonCode.ImplementationSpecificError:
    case ReasonCode.ServerUnavailable:
    case ReasonCode.ServerBusy:
    case ReasonCode.UseAnotherServer:
    case ReasonCode.ServerMoved:
    case ReasonCode.ConnectionRateExceeded:
    case ReasonCode.QuotaExceeded:
      return ConnectReturnCode.ServerUnavailable
    default:
      return ConnectReturnCode.NotAuthorized
  }
}
