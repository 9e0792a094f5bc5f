import { MAX_PACKET_SIZE } from '../../packet/decoder.js'
import { ConnectReturnCode, ReasonCode } from '../../packet/reason-codes.js'
import { encode } from '../../packet/index.js'
import type { ConnackPacket, ConnackProperties } from '../../packet/types.js'
import { fitPacket } from '../fit-packet.js'
import { isPromise } from '../../util/awaitable.js'
import type { ConnectFlow, ConnectStep } from './context.js'

/** MQTT 5 Request Response Information: ask the backend for Response Information (optional hook). */
export const responseInformation: ConnectStep = {
  name: 'responseInformation',
  run(flow) {
    const { ctx, packet } = flow
    const backend = ctx.backend
    // [MQTT-3.1.2-28] without the request (or with 0) no Response Information is sent.
    if (ctx.client.protocolLevel !== 5 || packet.properties?.requestResponseInformation !== true) return true
    if (backend.responseInformation === undefined) return true
    const answer = backend.responseInformation(ctx.client)
    if (isPromise(answer)) {
      return answer.then((info) => {
        flow.responseInformation = info
        return true
      })
    }
    flow.responseInformation = answer
    return true
  }
}

/**
 * Accept: CONNACK with the broker's MQTT 5 properties. A CONNACK that does not fit in the client's
 * Maximum Packet Size, even without Reason String and User Properties, cannot be sent
 * [MQTT-3.1.2-24]: the connection is closed without CONNACK (and without publishing the will,
 * since the CONNECT was never accepted).
 */
export const connack: ConnectStep = {
  name: 'connack',
  run(flow) {
    const { ctx } = flow
    if (ctx.client.protocolLevel === 5) {
      const properties = connackProperties(flow)
      const packet: ConnackPacket =
        properties === undefined
          ? { type: 'connack', sessionPresent: flow.sessionPresent, reasonCode: ReasonCode.Success }
          : { type: 'connack', sessionPresent: flow.sessionPresent, reasonCode: ReasonCode.Success, properties }
      const maximum = flow.packet.properties?.maximumPacketSize
      if (maximum !== undefined && fitPacket(packet, true, maximum, encode(packet, 5).length) === undefined) {
        ctx.log.info('CONNACK larger than the client Maximum Packet Size: closing without CONNACK', {
          clientId: ctx.client.clientId,
          maximumPacketSize: maximum
        })
        ctx.connection.setWill(undefined)
        ctx.client.close()
        return false
      }
      ctx.send(packet)
    } else {
      ctx.send({ type: 'connack', sessionPresent: flow.sessionPresent, reasonCode: ConnectReturnCode.Accepted })
    }
    flow.acknowledged = true
    return true
  }
}

/** The MQTT 5 CONNACK properties: only values that differ from the protocol defaults. */
export function connackProperties(flow: ConnectFlow): ConnackProperties | undefined {
  const o = flow.ctx.options
  const p: ConnackProperties = {}
  let any = false
  if (flow.sessionExpiryInterval !== undefined) {
    p.sessionExpiryInterval = flow.sessionExpiryInterval
    any = true
  }
  if (flow.assignedClientId !== undefined) {
    p.assignedClientIdentifier = flow.assignedClientId
    any = true
  }
  if (flow.serverKeepAlive !== undefined) {
    p.serverKeepAlive = flow.serverKeepAlive
    any = true
  }
  if (o.receiveMaximum !== 65535) {
    p.receiveMaximum = o.receiveMaximum
    any = true
  }
  if (o.maximumQoS !== 2) {
    p.maximumQoS = o.maximumQoS
    any = true
  }
  if (!o.retainAvailable) {
    p.retainAvailable = false
    any = true
  }
  if (o.maximumPacketSize < MAX_PACKET_SIZE) {
    p.maximumPacketSize = o.maximumPacketSize
    any = true
  }
  if (o.topicAliasMaximum > 0) {
    p.topicAliasMaximum = o.topicAliasMaximum
    any = true
  }
  if (!o.wildcardSubscriptionAvailable) {
    p.wildcardSubscriptionAvailable = false
    any = true
  }
  if (!o.subscriptionIdentifiersAvailable) {
    p.subscriptionIdentifiersAvailable = false
    any = true
  }
  if (!o.sharedSubscriptionAvailable) {
    p.sharedSubscriptionAvailable = false
    any = true
  }
  if (flow.responseInformation !== undefined) {
    p.responseInformation = flow.responseInformation
    any = true
  }
  const auth = flow.authProperties
  if (auth !== undefined) {
    p.authenticationMethod = auth.authenticationMethod
    if (auth.authenticationData !== undefined) p.authenticationData = auth.authenticationData
    any = true
  }
  return any ? p : undefined
}
