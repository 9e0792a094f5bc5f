import { isUtf8 } from 'node:buffer'
import { MqttError, ProtocolError, TopicNameInvalidError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { isValidTopicName } from '../../packet/topic.js'
import { topicLimitProblem } from '../limits.js'
import type { PublishPacket, PublishProperties } from '../../packet/types.js'
import type { Message } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext, PublishStep } from './context.js'
import { seedEncoded } from '../encoded-message.js'
import type { EncodableMessage } from '../encoded-message.js'

/**
 * PUBLISH from a client. Checks the topic [MQTT-3.3.2-2], QoS and RETAIN against what the broker
 * offers, turns the packet into a `Message` and routes it through the backend (retained first).
 *
 * - QoS 0: routed, nothing sent back. No promise or closure on the synchronous path.
 * - QoS 1: PUBACK once the backend accepted the message [MQTT-4.3.2-2].
 * - QoS 2: delivered once, at receipt (method A): a PUBLISH whose id awaits PUBREL is a resend and is
 *   not routed again [MQTT-4.3.3-2]; PUBREC after the id is stored.
 *
 * When a Backend or Session call answers with a promise, the rest goes to `ctx.finishPublish`: the
 * functions named `...Later` below run inside that promise and return the last step (the
 * acknowledgement) instead of sending it, so the connection can send acknowledgements in arrival
 * order while several PUBLISH packets are in progress. Only a non-retained QoS 0/1 PUBLISH whose
 * `publish` call was made synchronously lets the next PUBLISH start early (`issued`); a QoS 2
 * exchange, a retained message and an asynchronous `authorizePublish` hold the connection back.
 */
export function handlePublish(ctx: HandlerContext, packet: PublishPacket): void {
  const options = ctx.options
  const properties = packet.properties
  let topic = packet.topic
  const alias = properties?.topicAlias
  if (alias !== undefined) {
    // [MQTT-3.3.2-8] [MQTT-3.3.2-9]: 0, or above the Topic Alias Maximum we told, is 0x94;
    // within it every alias is accepted [MQTT-3.3.2-12].
    if (alias === 0 || alias > options.topicAliasMaximum) {
      ctx.fail(new MqttError(ReasonCode.TopicAliasInvalid, `topic alias ${alias} out of range`))
      return
    }
    const resolved = ctx.state.resolveTopicAlias(alias, topic)
    if (resolved === undefined) {
      // An empty topic with an alias never bound on this connection (MQTT 5.0 3.3.4).
      ctx.fail(new ProtocolError(`topic alias ${alias} is not bound`))
      return
    }
    topic = resolved
  }
  if (!isValidTopicName(topic)) {
    ctx.fail(new TopicNameInvalidError(`invalid topic name in PUBLISH: ${JSON.stringify(topic)}`))
    return
  }
  const tooBig = topicLimitProblem(topic, options.maxTopicLength, options.maxTopicLevels)
  if (tooBig !== undefined) {
    // A limit of the broker: answered like an invalid topic name (0x90).
    ctx.stats.topicLimitHits++
    ctx.fail(new TopicNameInvalidError(`PUBLISH: ${tooBig}`))
    return
  }
  if (packet.qos > options.maximumQoS) {
    // (MQTT 5.0 3.2.2.3.4) beyond the Maximum QoS the server announced.
    ctx.fail(new MqttError(ReasonCode.QoSNotSupported, `QoS ${packet.qos} not supported`))
    return
  }
  if (packet.retain && !options.retainAvailable) {
    // (MQTT 5.0 3.2.2.3.5)
    ctx.fail(new MqttError(ReasonCode.RetainNotSupported, 'retained messages not supported'))
    return
  }
  ctx.stats.publishesReceived++
  ctx.stats.publishesReceivedByQos[packet.qos]++
  ctx.state.counters.received++
  if (options.validatePayloadFormat && properties?.payloadFormatIndicator === true && !isUtf8(packet.payload)) {
    // (MQTT 5.0 3.3.2.3.2) the payload is not the UTF-8 it claims to be: 0x99.
    refusePublish(ctx, packet, ReasonCode.PayloadFormatInvalid)
    return
  }
  if (topic.charCodeAt(0) === 0x24 && topic.startsWith('$SYS/')) {
    // The broker's own topics: clients read them, never write them (a retained value written by a
    // client would pass for the broker's). MQTT 5: 0x87; 3.1.1 cannot refuse: acknowledged, dropped.
    refusePublish(ctx, packet, ReasonCode.NotAuthorized)
    return
  }
  // `encoded` declared up front (the engine's cache, set just below for most messages): adding it
  // later would give every message a second allocation for its out-of-object properties.
  const message: EncodableMessage = {
    topic,
    payload: packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    origin: ctx.client.clientId,
    encoded: undefined
  }
  if (properties !== undefined) {
    const forwarded = forwardedProperties(properties)
    if (forwarded !== undefined) {
      message.properties = forwarded
      if (forwarded.messageExpiryInterval !== undefined) message.receivedAt = ctx.options.clock.now()
    }
  }
  if (message.properties === undefined) {
    // Forward the received bytes as they are to receivers at this level (no encoding, no copy).
    const raw = ctx.incomingBytes()
    if (raw !== undefined) seedEncoded(message, ctx.client.protocolLevel, packet.qos, packet.retain, packet.dup, raw)
  }
  const authorize = ctx.backend.authorizePublish
  if (authorize !== undefined) {
    const verdict = authorize.call(ctx.backend, ctx.client, message)
    if (isPromise(verdict)) {
      ctx.finishPublish(verdict.then((v) => authorizedLater(ctx, packet, message, v)), false)
      return
    }
    const code = refusalCode(verdict)
    if (code < ReasonCode.UnspecifiedError) accepted(ctx, packet, message)
    else refusePublish(ctx, packet, code)
    return
  }
  accepted(ctx, packet, message)
}

/** The reason code of an `authorizePublish` verdict (below 0x80: allowed). */
function refusalCode(verdict: boolean | number): number {
  return verdict === true ? 0 : verdict === false ? ReasonCode.NotAuthorized : verdict
}

/** An asynchronous `authorizePublish` answered. */
function authorizedLater(
  ctx: HandlerContext,
  packet: PublishPacket,
  message: Message,
  verdict: boolean | number
): Awaitable<PublishStep | undefined> {
  const code = refusalCode(verdict)
  if (code < ReasonCode.UnspecifiedError) return acceptedLater(ctx, packet, message)
  if (packet.qos === 2 && ctx.client.protocolLevel !== 5) {
    const packetId = packet.packetId!
    const saved = ctx.session.saveIncoming(packetId)
    const step = (): void => ctx.send({ type: 'pubrec', packetId })
    return isPromise(saved) ? saved.then(() => step) : step
  }
  return () => refusePublish(ctx, packet, code)
}

/**
 * A PUBLISH the broker does not route: QoS 1/2 get PUBACK/PUBREC with `code` at MQTT 5 (the
 * exchange ends there, MQTT 5.0 4.3.3) and a plain acknowledgement at 3.1.1, which cannot say no;
 * QoS 0 is dropped, except that an invalid payload format closes an MQTT 5 connection with 0x99.
 */
function refusePublish(ctx: HandlerContext, packet: PublishPacket, code: number): void {
  const v5 = ctx.client.protocolLevel === 5
  if (packet.qos === 0) {
    if (v5 && code === ReasonCode.PayloadFormatInvalid) ctx.fail(new MqttError(code, 'payload is not valid UTF-8'))
    return
  }
  const packetId = packet.packetId!
  if (v5) {
    // A Reason String, dropped by the output stage when the client asked for no problem information.
    const properties = { reasonString: refusalText(code) }
    ctx.send({ type: packet.qos === 1 ? 'puback' : 'pubrec', packetId, reasonCode: code, properties })
    return
  }
  if (packet.qos === 1) {
    ctx.send({ type: 'puback', packetId })
    return
  }
  // 3.1.1 QoS 2: complete the exchange normally (PUBREL → PUBCOMP), without routing.
  const saved = ctx.session.saveIncoming(packetId)
  if (isPromise(saved)) {
    ctx.finishPublish(
      saved.then(() => () => ctx.send({ type: 'pubrec', packetId })),
      false
    )
    return
  }
  ctx.send({ type: 'pubrec', packetId })
}

function refusalText(code: number): string {
  switch (code) {
    case ReasonCode.NotAuthorized:
      return 'not authorized'
    case ReasonCode.PayloadFormatInvalid:
      return 'payload is not valid UTF-8'
    default:
      return 'refused'
  }
}

/** Route an accepted PUBLISH and acknowledge it per its QoS. */
function accepted(ctx: HandlerContext, packet: PublishPacket, message: Message): void {
  if (packet.qos === 0) {
    const routed = route(ctx, message)
    if (isPromise(routed)) ctx.finishPublish(routed.then(nothingLeft), !message.retain)
    return
  }
  const packetId = packet.packetId!
  if (packet.qos === 1) {
    if (!ctx.state.acquireInbound()) {
      receiveMaximumExceeded(ctx)
      return
    }
    const routed = route(ctx, message)
    if (isPromise(routed)) {
      ctx.finishPublish(
        routed.then((count) => () => puback(ctx, packetId, count)),
        !message.retain
      )
      return
    }
    puback(ctx, packetId, routed)
    return
  }
  const duplicate = ctx.session.hasIncoming(packetId)
  if (isPromise(duplicate)) {
    ctx.finishPublish(
      duplicate.then((known) => exactlyOnceLater(ctx, packetId, message, known)),
      false
    )
    return
  }
  if (duplicate) {
    // Already routed: acknowledge again, do not deliver twice [MQTT-4.3.3-2].
    ctx.send({ type: 'pubrec', packetId })
    return
  }
  if (!ctx.state.acquireInbound()) {
    receiveMaximumExceeded(ctx)
    return
  }
  const routed = route(ctx, message)
  if (isPromise(routed)) {
    ctx.finishPublish(
      routed.then((count) => storeIncomingLater(ctx, packetId, count)),
      false
    )
    return
  }
  if (routed === RETAIN_REFUSED) {
    quotaExceeded(ctx, 'pubrec', packetId)
    return
  }
  const saved = ctx.session.saveIncoming(packetId)
  if (isPromise(saved)) {
    ctx.finishPublish(
      saved.then(() => () => pubrec(ctx, packetId, routed)),
      false
    )
    return
  }
  pubrec(ctx, packetId, routed)
}

/** `accepted`, inside an earlier promise: Backend calls now, acknowledgement as the last step. */
function acceptedLater(ctx: HandlerContext, packet: PublishPacket, message: Message): Awaitable<PublishStep | undefined> {
  if (packet.qos === 0) {
    const routed = route(ctx, message)
    return isPromise(routed) ? routed.then(nothingLeft) : undefined
  }
  const packetId = packet.packetId!
  if (packet.qos === 1) {
    if (!ctx.state.acquireInbound()) return () => receiveMaximumExceeded(ctx)
    const routed = route(ctx, message)
    if (isPromise(routed)) return routed.then((count) => () => puback(ctx, packetId, count))
    return () => puback(ctx, packetId, routed)
  }
  const duplicate = ctx.session.hasIncoming(packetId)
  if (isPromise(duplicate)) return duplicate.then((known) => exactlyOnceLater(ctx, packetId, message, known))
  return exactlyOnceLater(ctx, packetId, message, duplicate)
}

function nothingLeft(): undefined {
  return undefined
}

/**
 * What `route` answers instead of a count when the retained store refused an MQTT 5 QoS 1/2
 * message for a limit: it was not routed, and the publisher is told 0x97 Quota exceeded.
 */
const RETAIN_REFUSED = -1

/**
 * Route through the backend: the retained store first (empty payload deletes [MQTT-3.3.1-10]).
 * A retained message the store refuses for a limit (it answers false) is counted; an MQTT 5 QoS 1/2
 * one is then not routed (`RETAIN_REFUSED`: its acknowledgement says 0x97, a code of 0x80 or more
 * meaning not accepted), others (QoS 0, 3.1/3.1.1: nothing to tell) are still routed.
 */
function route(ctx: HandlerContext, message: Message): Awaitable<number | undefined> {
  if (ctx.events.observed) ctx.events.emit({ type: 'published', client: ctx.client, message })
  const backend = ctx.backend
  if (message.retain) {
    // [MQTT-3.3.1-5] store (or replace [MQTT-3.3.1-7]) the retained message of the topic.
    const stored = backend.storeRetained(ctx.client, message)
    if (isPromise(stored)) return stored.then((ok) => (retainRefused(ctx, message, ok) ? RETAIN_REFUSED : backend.publish(ctx.client, message)))
    if (retainRefused(ctx, message, stored)) return RETAIN_REFUSED
  }
  return backend.publish(ctx.client, message)
}

/** Whether the retained store's answer `ok` refuses the message (counted) so that it is not routed. */
function retainRefused(ctx: HandlerContext, message: Message, ok: void | boolean): boolean {
  if (ok !== false) return false
  ctx.stats.retainedLimitHits++
  return ctx.client.protocolLevel === 5 && message.qos > 0
}

/** The MQTT 5 PUBACK / PUBREC of a retained message the store refused: 0x97, exchange over. */
function quotaExceeded(ctx: HandlerContext, type: 'puback' | 'pubrec', packetId: number): void {
  ctx.state.releaseInbound()
  ctx.send({ type, packetId, reasonCode: ReasonCode.QuotaExceeded, properties: { reasonString: 'retained message store full' } })
}

function puback(ctx: HandlerContext, packetId: number, count: number | undefined): void {
  if (count === RETAIN_REFUSED) {
    quotaExceeded(ctx, 'puback', packetId)
    return
  }
  ctx.state.releaseInbound()
  if (ctx.client.protocolLevel === 5 && count === 0) {
    ctx.send({ type: 'puback', packetId, reasonCode: ReasonCode.NoMatchingSubscribers })
  } else {
    ctx.send({ type: 'puback', packetId })
  }
}

/** QoS 2 once `hasIncoming` answered, inside an earlier promise. */
function exactlyOnceLater(
  ctx: HandlerContext,
  packetId: number,
  message: Message,
  duplicate: boolean
): Awaitable<PublishStep | undefined> {
  if (duplicate) {
    // Already routed: acknowledge again, do not deliver twice [MQTT-4.3.3-2].
    return () => ctx.send({ type: 'pubrec', packetId })
  }
  if (!ctx.state.acquireInbound()) return () => receiveMaximumExceeded(ctx)
  const routed = route(ctx, message)
  if (isPromise(routed)) return routed.then((count) => storeIncomingLater(ctx, packetId, count))
  return storeIncomingLater(ctx, packetId, routed)
}

/** QoS 2 once routed, inside an earlier promise: store the id, then PUBREC as the last step. */
function storeIncomingLater(ctx: HandlerContext, packetId: number, count: number | undefined): Awaitable<PublishStep> {
  // Refused: no exchange to remember (the client sends no PUBREL after a PUBREC of 0x80 or more).
  if (count === RETAIN_REFUSED) return () => quotaExceeded(ctx, 'pubrec', packetId)
  const saved = ctx.session.saveIncoming(packetId)
  const step = (): void => pubrec(ctx, packetId, count)
  return isPromise(saved) ? saved.then(() => step) : step
}

function pubrec(ctx: HandlerContext, packetId: number, count: number | undefined): void {
  if (ctx.client.protocolLevel === 5 && count === 0) {
    ctx.send({ type: 'pubrec', packetId, reasonCode: ReasonCode.NoMatchingSubscribers })
  } else {
    ctx.send({ type: 'pubrec', packetId })
  }
}

function receiveMaximumExceeded(ctx: HandlerContext): void {
  // (MQTT 5.0 4.9) more unacknowledged QoS 1/2 PUBLISH than our Receive Maximum.
  ctx.fail(new MqttError(ReasonCode.ReceiveMaximumExceeded, 'receive maximum exceeded'))
}

/** The properties a message carries on: everything but the per-hop topic alias and identifiers. */
function forwardedProperties(properties: PublishProperties): PublishProperties | undefined {
  if (properties.topicAlias === undefined && properties.subscriptionIdentifiers === undefined) return properties
  const { topicAlias: _alias, subscriptionIdentifiers: _ids, ...rest } = properties
  return Object.keys(rest).length > 0 ? rest : undefined
}

