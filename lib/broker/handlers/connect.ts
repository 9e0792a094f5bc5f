import { resolveTenant, TenantError } from '../../tenancy/resolvers.js'
import { randomUUID } from 'node:crypto'
import type { SetupResult } from '../../backend/backend.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { isValidTopicName } from '../../packet/topic.js'
import type { AuthPacket, ConnectPacket } from '../../packet/types.js'
import type { StoredWill } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { ConnectContext, ConnectFlow, ConnectStep } from './context.js'
import { connack, responseInformation } from './connack.js'
import { authenticate, authenticated, credentialsOf } from './authenticate.js'
import { refuse } from './refuse.js'
import { controlCharacterRefusal } from '../control-characters.js'
import { admitIdentified, countFlapping } from './connect-limits.js'

// Kept where they were declared before the split of CONNECT into modules.
export { connackProperties } from './connack.js'
export { credentialsOf } from './authenticate.js'
export { refuse, returnCodeFor } from './refuse.js'
export type { ConnectFlow, ConnectStep } from './context.js'

/**
 * Multi-tenancy: when the broker has a `tenantResolver`, find the connection's tenant (from the
 * listener, the user name's domain, a client id prefix...) before anything else, so that
 * authentication, the session and every backend call happen inside that tenant. The resolver may
 * rewrite the client id and user name (e.g. strip `@tenant`); a refusal is a CONNACK with its code.
 */
const resolveTenantStep: ConnectStep = {
  name: 'resolveTenant',
  run(flow) {
    const { ctx } = flow
    // A verified client certificate names the user (TLS `usernameFrom`), whatever the CONNECT says.
    const certificateUsername = ctx.connection.certificateUsername
    if (certificateUsername !== undefined) flow.packet = { ...flow.packet, username: certificateUsername }
    const packet = flow.packet
    // The connection is CONNECTING from here on (and refusals speak the client's protocol level).
    ctx.connection.identify(packet.clientId, packet.protocolLevel, packet.username)
    const resolver = ctx.options.tenantResolver
    if (resolver === undefined) return true
    const request = { clientId: packet.clientId, username: packet.username, listener: ctx.connection.listener, protocolLevel: packet.protocolLevel }
    return resolveTenant(resolver, request).then((resolution) => {
      if (resolution instanceof TenantError) return refuse(flow, resolution.reasonCode, resolution.message)
      ctx.connection.tenant = resolution.tenant
      const rewritten: ConnectPacket = { ...packet, clientId: resolution.clientId }
      if (resolution.username === undefined) delete rewritten.username
      else rewritten.username = resolution.username
      flow.packet = rewritten
      return true
    })
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
    ctx.connection.identify(clientId, level, packet.username)
    // Control characters in the client id or user name: refused by default (option refuseControlCharacters).
    const control = ctx.options.refuseControlCharacters ? controlCharacterRefusal(clientId, packet.username) : undefined
    if (control !== undefined) return refuse(flow, control, 'control character in the client identifier or user name')
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
      ctx.connection.identify(clientId, level, packet.username)
    }
    const will = packet.will
    if (will !== undefined) {
      if (!isValidTopicName(will.topic)) return refuse(flow, ReasonCode.TopicNameInvalid)
      // $SYS/ is the broker's: a client may not publish there, by PUBLISH or by will.
      if (will.topic.startsWith('$SYS/')) return refuse(flow, ReasonCode.NotAuthorized, 'a will topic under $SYS/ is not allowed')
      const options = ctx.options
      if (level === 5 && will.qos > options.maximumQoS) return refuse(flow, ReasonCode.QoSNotSupported) // (MQTT 5.0 3.2.2.3.4)
      if (level === 5 && will.retain && !options.retainAvailable) return refuse(flow, ReasonCode.RetainNotSupported) // (MQTT 5.0 3.2.2.3.5)
    }
    if (level === 5) {
      ctx.state.negotiate(packet.properties, ctx.options.receiveMaximum)
      const method = packet.properties?.authenticationMethod
      if (method !== undefined) ctx.auth = { method, connect: undefined, flow: undefined, reauthenticating: false }
    }
    return true
  }
}

/**
 * The next AUTH of a CONNECT's enhanced authentication: it must continue (0x18) [MQTT-4.12.0-3]
 * with the CONNECT's method [MQTT-4.12.0-5]; the backend decides again, and the CONNECT resumes
 * after its `authenticate` step once it allows.
 */
export function continueAuthentication(flow: ConnectFlow, packet: AuthPacket): Awaitable<void> {
  const { ctx } = flow
  const method = packet.properties?.authenticationMethod
  if ((packet.reasonCode ?? 0) !== ReasonCode.ContinueAuthentication || method !== ctx.auth?.method) {
    refuse(flow, ReasonCode.ProtocolError)
    return
  }
  const result = ctx.backend.authenticate(ctx.client, credentialsOf(flow.packet, ctx.client.clientId, ctx.connection.connectionInfo, packet))
  const after = CONNECT_STEPS.indexOf(authenticate) + 1
  if (isPromise(result)) {
    return result.then((r) => (authenticated(flow, r) && ctx.client.connected ? runSteps(flow, after) : undefined))
  }
  if (authenticated(flow, result) && ctx.client.connected) return runSteps(flow, after)
}

/**
 * Keepalive: the client's value, or the broker's. MQTT 5 clients are told a different value with
 * Server Keep Alive (MQTT 5.0 3.2.2.3.14); 3.1/3.1.1 clients asking for more than `maxKeepalive` (or 0,
 * i.e. none) cannot be told and are refused, except 0 under the default maximum of 65,535 s.
 */
const keepalive: ConnectStep = {
  name: 'keepalive',
  run(flow) {
    const { ctx, packet } = flow
    const { maxKeepalive, serverKeepAlive } = ctx.options
    const requested = packet.keepalive
    const tooLong = maxKeepalive !== undefined && (requested === 0 || requested > maxKeepalive)
    if (ctx.client.protocolLevel === 5) {
      const chosen = serverKeepAlive ?? (tooLong ? maxKeepalive! : requested)
      if (chosen !== requested) flow.serverKeepAlive = chosen
      ctx.state.keepaliveMs = chosen * 1000
      return true
    }
    // 0 (none) under the default maximum (65,535 s): held to it silently, as the server may.
    if (requested === 0 && maxKeepalive === 65535) {
      ctx.state.keepaliveMs = maxKeepalive * 1000
      return true
    }
    if (tooLong) return refuse(flow, ReasonCode.ClientIdentifierNotValid, 'keepalive too long')
    ctx.state.keepaliveMs = requested * 1000
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
    let expiry =
      ctx.client.protocolLevel === 5
        ? (packet.properties?.sessionExpiryInterval ?? 0)
        : packet.clean
          ? 0
          : ctx.options.persistentSessionExpiry // 3.1.1 persistent sessions that never come back end
    const maximum = ctx.options.maxSessionExpiryInterval
    if (expiry > maximum) {
      expiry = maximum
      // MQTT 5: told in CONNACK (MQTT 5.0 3.2.2.3.2); 3.1.1 clients cannot be told.
      if (ctx.client.protocolLevel === 5) flow.sessionExpiryInterval = maximum
    }
    const result = ctx.backend.setup(ctx.client, packet.clean, expiry)
    if (isPromise(result)) return result.then((r) => sessionReady(flow, r))
    return sessionReady(flow, result)
  }
}

function sessionReady(flow: ConnectFlow, result: SetupResult): boolean {
  // A delayed will of the previous connection is settled once this one is accepted (settleWill).
  flow.ctx.connection.attachSession(result.session)
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
      ctx.connection.setWill(undefined)
      if (!flow.sessionPresent) return true
      const cleared = ctx.session.clearWill()
      return isPromise(cleared) ? cleared.then(() => true) : true
    }
    const retain = will.retain && ctx.options.retainAvailable
    const qos = will.qos > ctx.options.maximumQoS ? ctx.options.maximumQoS : will.qos
    // The payload may be a view of the input chunk: keep a copy, it may live long.
    const stored: StoredWill = { topic: will.topic, payload: Buffer.from(will.payload), qos, retain }
    if (will.properties !== undefined) stored.properties = will.properties
    ctx.connection.setWill(stored)
    const saved = ctx.session.saveWill(stored)
    return isPromise(saved) ? saved.then(() => true) : true
  }
}

/**
 * The connection is accepted (CONNACK sent): a delayed will of this client's previous connection is
 * cancelled, the session going on [MQTT-3.1.3-9], or, after a Clean Start that ended that session,
 * published now. Not at the session setup: a CONNECT refused after it (a failing step, a CONNACK
 * over the client's Maximum Packet Size) never became a connection to the session (MQTT 5.0
 * 3.1.3.2.2, 3.1.2.5), so the will stays due. (A backend that keeps delayed wills itself learns of
 * the acceptance from `queueOffline`.)
 */
const settleWill: ConnectStep = {
  name: 'settleWill',
  run(flow) {
    flow.ctx.connection.settleDelayedWill(flow.packet.clean)
    return true
  }
}

/** The connection is live: resend the resumed session's exchanges, release held deliveries. */
const register: ConnectStep = {
  name: 'register',
  run(flow) {
    flow.ctx.connection.markConnected(flow.sessionPresent, flow.inflight)
    return true
  }
}

/** Let the backend deliver what was queued while the client was away, and route to it live. */
const drainOffline: ConnectStep = {
  name: 'drainOffline',
  run(flow) {
    const { ctx } = flow
    const drained = ctx.backend.queueOffline(ctx.client)
    return isPromise(drained) ? drained.then(() => true) : true
  }
}

/** The steps of CONNECT, in order. */
export const CONNECT_STEPS: readonly ConnectStep[] = [
  resolveTenantStep,
  checkProtocol,
  admitIdentified,
  authenticate,
  countFlapping,
  keepalive,
  setupSession,
  restoreInflight,
  storeWill,
  responseInformation,
  connack,
  settleWill,
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
    acknowledged: false,
    sessionExpiryInterval: undefined,
    responseInformation: undefined,
    authProperties: undefined
  }
  return runSteps(flow, 0)
}

function runSteps(flow: ConnectFlow, from: number): Awaitable<void> {
  const log = flow.ctx.log
  const tracing = log.enabled('trace')
  for (let i = from; i < CONNECT_STEPS.length; i++) {
    const step = CONNECT_STEPS[i]!
    if (tracing) log.trace('connect step', { step: step.name, clientId: flow.ctx.client.clientId })
    let result: Awaitable<boolean>
    try {
      result = step.run(flow)
    } catch (error) {
      stepFailed(flow, step, error)
      return
    }
    if (isPromise(result)) {
      return result.then(
        (ok) => (ok && flow.ctx.client.connected ? runSteps(flow, i + 1) : undefined),
        (error: unknown) => stepFailed(flow, step, error)
      )
    }
    if (!result || !flow.ctx.client.connected) return
  }
}

function stepFailed(flow: ConnectFlow, step: ConnectStep, error: unknown): void {
  const { ctx } = flow
  ctx.log.error('connect step failed', { step: step.name, clientId: ctx.client.clientId, error })
  if (!ctx.client.connected) return
  if (flow.acknowledged) ctx.client.close(ReasonCode.ImplementationSpecificError)
  else refuse(flow, ReasonCode.ServerUnavailable)
}
