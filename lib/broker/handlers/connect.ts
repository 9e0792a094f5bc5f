import { randomUUID } from 'node:crypto'
import type { AuthenticationResult, SetupResult } from '../../backend/backend.js'
import { MAX_PACKET_SIZE } from '../../packet/decoder.js'
import { ConnectReturnCode, ReasonCode } from '../../packet/reason-codes.js'
import { isValidTopicName } from '../../packet/topic.js'
import type { ConnackProperties, ConnectPacket } from '../../packet/types.js'
import type { OutgoingRecord, StoredWill } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { ConnectContext } from './context.js'

/** The state one CONNECT carries through its steps. */
export interface ConnectFlow {
  readonly ctx: ConnectContext
  readonly packet: ConnectPacket
  /** Client identifier the broker assigned (MQTT 5 empty client id), to tell in CONNACK. */
  assignedClientId: string | undefined
  /** MQTT 5 Server Keep Alive to tell in CONNACK, when it differs from the client's. */
  serverKeepAlive: number | undefined
  sessionPresent: boolean
  /** A resumed session's unacknowledged outgoing exchanges, resent after CONNACK. */
  inflight: OutgoingRecord[]
  /** Set once CONNACK went out: later failures close instead of refusing. */
  acknowledged: boolean
}

/** One named step of CONNECT. Returns false (or a promise of false) when it refused the client. */
export interface ConnectStep {
  readonly name: string
  run(flow: ConnectFlow): Awaitable<boolean>
}

/**
 * Refuse the CONNECT with an MQTT 5 reason code: CONNACK with that code (5.0) or the matching
 * 3.1.1 return code, then close [MQTT-3.2.2-5] [MQTT-3.2.2-6].
 */
export function refuse(flow: ConnectFlow, reasonCode: number, reasonString?: string): false {
  const { ctx } = flow
  ctx.log.info('CONNECT refused', { clientId: flow.packet.clientId, reasonCode, reasonString })
  if (ctx.protocolLevel === 5) {
    ctx.refuse(
      reasonString === undefined
        ? { type: 'connack', sessionPresent: false, reasonCode }
        : { type: 'connack', sessionPresent: false, reasonCode, properties: { reasonString } },
      5
    )
  } else {
    ctx.refuse({ type: 'connack', sessionPresent: false, reasonCode: returnCodeFor(reasonCode) }, ctx.protocolLevel)
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
      return ConnectReturnCode.ServerUnavailable
    default:
      return ConnectReturnCode.NotAuthorized
  }
}

/**
 * Identity and protocol checks: client identifier rules per level, will topic and will QoS/RETAIN
 * against what the broker offers, the client's MQTT 5 limits.
 */
const checkProtocol: ConnectStep = {
  name: 'checkProtocol',
  run(flow) {
    const { ctx, packet } = flow
    const level = packet.protocolLevel
    let clientId = packet.clientId
    ctx.identify(clientId, level, packet.username)
    if (clientId.length === 0) {
      if (level === 5) {
        // MQTT 5: assign one and tell it in CONNACK (Assigned Client Identifier) [MQTT-3.1.3-7].
        clientId = flow.assignedClientId = `auto-${randomUUID()}`
      } else if (level === 4 && packet.clean) {
        // 3.1.1: allowed only with Clean Session 1 [MQTT-3.1.3-7]; the id stays internal.
        clientId = `auto-${randomUUID()}`
      } else {
        // 3.1.1 without clean session [MQTT-3.1.3-8], or 3.1 (1 to 23 characters): identifier rejected.
        return refuse(flow, ReasonCode.ClientIdentifierNotValid)
      }
      ctx.identify(clientId, level, packet.username)
    }
    const will = packet.will
    if (will !== undefined) {
      if (!isValidTopicName(will.topic)) return refuse(flow, ReasonCode.TopicNameInvalid)
      const options = ctx.options
      if (level === 5 && will.qos > options.maximumQoS) return refuse(flow, ReasonCode.QoSNotSupported) // (MQTT 5.0 3.2.2.3.4)
      if (level === 5 && will.retain && !options.retainAvailable) return refuse(flow, ReasonCode.RetainNotSupported) // (MQTT 5.0 3.2.2.3.5)
    }
    const properties = packet.properties
    if (properties !== undefined) ctx.setClientLimits(properties.receiveMaximum, properties.maximumPacketSize)
    return true
  }
}

/** Ask the backend whether the client may connect. */
const authenticate: ConnectStep = {
  name: 'authenticate',
  run(flow) {
    const { ctx, packet } = flow
    const credentials = {
      clientId: ctx.clientId,
      username: packet.username,
      password: packet.password,
      connect: packet,
      ...(packet.properties?.authenticationMethod === undefined
        ? {}
        : { authenticationMethod: packet.properties.authenticationMethod }),
      ...(packet.properties?.authenticationData === undefined
        ? {}
        : { authenticationData: packet.properties.authenticationData })
    }
    const result = ctx.backend.authenticate(ctx.handle, credentials)
    if (isPromise(result)) return result.then((r) => authenticated(flow, r))
    return authenticated(flow, result)
  }
}

function authenticated(flow: ConnectFlow, result: AuthenticationResult): boolean {
  switch (result.result) {
    case 'allow':
      return true
    case 'deny':
      return refuse(flow, result.reasonCode, result.reasonString)
    case 'redirect':
      if (flow.ctx.protocolLevel === 5) {
        flow.ctx.refuse(
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
    case 'continue':
      // Enhanced authentication (AUTH exchange) is a later feature.
      return refuse(flow, ReasonCode.BadAuthenticationMethod, 'enhanced authentication not supported')
  }
}

/**
 * Keepalive: the client's value, or the broker's. MQTT 5 clients are told a different value with
 * Server Keep Alive (MQTT 5.0 3.2.2.3.14); 3.1/3.1.1 clients asking for more than `maxKeepalive` (or 0,
 * i.e. none) cannot be told and are refused.
 */
const keepalive: ConnectStep = {
  name: 'keepalive',
  run(flow) {
    const { ctx, packet } = flow
    const { maxKeepalive, serverKeepAlive } = ctx.options
    const requested = packet.keepalive
    const tooLong = maxKeepalive !== undefined && (requested === 0 || requested > maxKeepalive)
    if (ctx.protocolLevel === 5) {
      const chosen = serverKeepAlive ?? (tooLong ? maxKeepalive! : requested)
      if (chosen !== requested) flow.serverKeepAlive = chosen
      ctx.setKeepalive(chosen)
      return true
    }
    if (tooLong) return refuse(flow, ReasonCode.ClientIdentifierNotValid, 'keepalive too long')
    ctx.setKeepalive(requested)
    return true
  }
}

/**
 * Create or resume the session (the backend takes over any other connection with this client id
 * [MQTT-3.1.4-3]). Session Present is 0 whenever Clean Session / Clean Start is set [MQTT-3.2.2-1].
 */
const setupSession: ConnectStep = {
  name: 'setupSession',
  run(flow) {
    const { ctx, packet } = flow
    const expiry =
      ctx.protocolLevel === 5 ? (packet.properties?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : 0xffffffff
    const result = ctx.backend.setup(ctx.handle, packet.clean, expiry)
    if (isPromise(result)) return result.then((r) => sessionReady(flow, r))
    return sessionReady(flow, result)
  }
}

function sessionReady(flow: ConnectFlow, result: SetupResult): boolean {
  flow.ctx.attachSession(result.session)
  flow.sessionPresent = result.present && !flow.packet.clean
  return true
}

/** A resumed session's unacknowledged exchanges, to resend after CONNACK [MQTT-4.4.0-1]. */
const restoreInflight: ConnectStep = {
  name: 'restoreInflight',
  run(flow) {
    if (!flow.sessionPresent) return true
    const listed = flow.ctx.session.listOutgoing()
    if (isPromise(listed)) {
      return listed.then((records) => {
        flow.inflight = records
        return true
      })
    }
    flow.inflight = listed
    return true
  }
}

/** Keep the will for this connection (in the connection and in the session). */
const storeWill: ConnectStep = {
  name: 'storeWill',
  run(flow) {
    const { ctx, packet } = flow
    const will = packet.will
    if (will === undefined) {
      ctx.setWill(undefined)
      if (!flow.sessionPresent) return true
      const cleared = ctx.session.clearWill()
      return isPromise(cleared) ? cleared.then(() => true) : true
    }
    const retain = will.retain && ctx.options.retainAvailable
    const qos = will.qos > ctx.options.maximumQoS ? ctx.options.maximumQoS : will.qos
    // The payload may be a view of the input chunk: keep a copy, it may live long.
    const stored: StoredWill = { topic: will.topic, payload: Buffer.from(will.payload), qos, retain }
    if (will.properties !== undefined) stored.properties = will.properties
    ctx.setWill(stored)
    const saved = ctx.session.saveWill(stored)
    return isPromise(saved) ? saved.then(() => true) : true
  }
}

/** Accept: CONNACK with the broker's MQTT 5 properties. */
const connack: ConnectStep = {
  name: 'connack',
  run(flow) {
    const { ctx } = flow
    if (ctx.protocolLevel === 5) {
      const properties = connackProperties(flow)
      ctx.send(
        properties === undefined
          ? { type: 'connack', sessionPresent: flow.sessionPresent, reasonCode: ReasonCode.Success }
          : { type: 'connack', sessionPresent: flow.sessionPresent, reasonCode: ReasonCode.Success, properties }
      )
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
  return any ? p : undefined
}

/** The connection is live: resend the resumed session's exchanges, release held deliveries. */
const register: ConnectStep = {
  name: 'register',
  run(flow) {
    flow.ctx.markConnected(flow.sessionPresent, flow.inflight)
    return true
  }
}

/** Let the backend deliver what was queued while the client was away, and route to it live. */
const drainOffline: ConnectStep = {
  name: 'drainOffline',
  run(flow) {
    const { ctx } = flow
    const drained = ctx.backend.queueOffline(ctx.handle, ctx.session)
    return isPromise(drained) ? drained.then(() => true) : true
  }
}

/** The steps of CONNECT, in order. */
export const CONNECT_STEPS: readonly ConnectStep[] = [
  checkProtocol,
  authenticate,
  keepalive,
  setupSession,
  restoreInflight,
  storeWill,
  connack,
  register,
  drainOffline
]

/**
 * CONNECT: run `CONNECT_STEPS` in order, each logged by name, awaiting only real promises. A step
 * that refuses stops the flow (it sent the refusing CONNACK). A step that throws or rejects refuses
 * with "server unavailable" before CONNACK, or closes the connection after it.
 */
export function handleConnect(ctx: ConnectContext, packet: ConnectPacket): Awaitable<void> {
  const flow: ConnectFlow = {
    ctx,
    packet,
    assignedClientId: undefined,
    serverKeepAlive: undefined,
    sessionPresent: false,
    inflight: [],
    acknowledged: false
  }
  return runSteps(flow, 0)
}

function runSteps(flow: ConnectFlow, from: number): Awaitable<void> {
  const log = flow.ctx.log
  const tracing = log.enabled('trace')
  for (let i = from; i < CONNECT_STEPS.length; i++) {
    const step = CONNECT_STEPS[i]!
    if (tracing) log.trace('connect step', { step: step.name, clientId: flow.ctx.clientId })
    let result: Awaitable<boolean>
    try {
      result = step.run(flow)
    } catch (error) {
      stepFailed(flow, step, error)
      return
    }
    if (isPromise(result)) {
      return result.then(
        (ok) => (ok && flow.ctx.handle.connected ? runSteps(flow, i + 1) : undefined),
        (error: unknown) => stepFailed(flow, step, error)
      )
    }
    if (!result || !flow.ctx.handle.connected) return
  }
}

function stepFailed(flow: ConnectFlow, step: ConnectStep, error: unknown): void {
  const { ctx } = flow
  ctx.log.error('connect step failed', { step: step.name, clientId: ctx.clientId, error })
  if (!ctx.handle.connected) return
  if (flow.acknowledged) ctx.handle.close(ReasonCode.ImplementationSpecificError)
  else refuse(flow, ReasonCode.ServerUnavailable)
}
