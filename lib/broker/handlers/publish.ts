import { MqttError, TopicNameInvalidError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { isValidTopicName } from '../../packet/topic.js'
import type { PublishPacket, PublishProperties } from '../../packet/types.js'
import type { Message } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import type { HandlerContext } from './context.js'

/**
 * PUBLISH from a client. Checks the topic [MQTT-3.3.2-2], QoS and RETAIN against what the broker
 * offers, turns the packet into a `Message` and routes it through the backend (retained first).
 *
 * - QoS 0: routed, nothing sent back. No promise or closure on the synchronous path.
 * - QoS 1: PUBACK once the backend accepted the message [MQTT-4.3.2-2].
 * - QoS 2: delivered once, at receipt (method A): a PUBLISH whose id awaits PUBREL is a resend and is
 *   not routed again [MQTT-4.3.3-2]; PUBREC after the id is stored.
 */
export function handlePublish(ctx: HandlerContext, packet: PublishPacket): Awaitable<void> {
  const options = ctx.options
  const properties = packet.properties
  if (properties?.topicAlias !== undefined) {
    // Topic aliases are a later feature; until then Topic Alias Maximum is 0 (MQTT 5.0 3.3.2.3.4).
    ctx.fail(new MqttError(ReasonCode.TopicAliasInvalid, 'topic alias not supported'))
    return
  }
  if (!isValidTopicName(packet.topic)) {
    ctx.fail(new TopicNameInvalidError(`invalid topic name in PUBLISH: ${JSON.stringify(packet.topic)}`))
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
  const message: Message = {
    topic: packet.topic,
    payload: packet.payload,
    qos: packet.qos,
    retain: packet.retain,
    origin: ctx.clientId
  }
  if (properties !== undefined) {
    const forwarded = forwardedProperties(properties)
    if (forwarded !== undefined) {
      message.properties = forwarded
      if (forwarded.messageExpiryInterval !== undefined) message.receivedAt = Date.now()
    }
  }
  if (packet.qos === 0) {
    const routed = route(ctx, message)
    if (isPromise(routed)) return routed.then(ignore)
    return
  }
  const packetId = packet.packetId!
  if (packet.qos === 1) {
    if (!ctx.acquireInbound()) return receiveMaximumExceeded(ctx)
    const routed = route(ctx, message)
    if (isPromise(routed)) return routed.then((count) => puback(ctx, packetId, count))
    puback(ctx, packetId, routed)
    return
  }
  const duplicate = ctx.session.hasIncoming(packetId)
  if (isPromise(duplicate)) return duplicate.then((known) => exactlyOnce(ctx, packetId, message, known))
  return exactlyOnce(ctx, packetId, message, duplicate)
}

function ignore(): void {}

/** Route through the backend: the retained store first (empty payload deletes [MQTT-3.3.1-10]). */
function route(ctx: HandlerContext, message: Message): Awaitable<number | undefined> {
  if (ctx.events.observed) ctx.events.emit({ type: 'published', client: ctx.view, message })
  const backend = ctx.backend
  if (message.retain) {
    // [MQTT-3.3.1-5] store (or replace [MQTT-3.3.1-7]) the retained message of the topic.
    const stored = backend.storeRetained(ctx.handle, message)
    if (isPromise(stored)) return stored.then(() => backend.publish(ctx.handle, message))
  }
  return backend.publish(ctx.handle, message)
}

function puback(ctx: HandlerContext, packetId: number, count: number | undefined): void {
  ctx.releaseInbound()
  if (ctx.protocolLevel === 5 && count === 0) {
    ctx.send({ type: 'puback', packetId, reasonCode: ReasonCode.NoMatchingSubscribers })
  } else {
    ctx.send({ type: 'puback', packetId })
  }
}

function exactlyOnce(ctx: HandlerContext, packetId: number, message: Message, duplicate: boolean): Awaitable<void> {
  if (duplicate) {
    // Already routed: acknowledge again, do not deliver twice [MQTT-4.3.3-2].
    ctx.send({ type: 'pubrec', packetId })
    return
  }
  if (!ctx.acquireInbound()) return receiveMaximumExceeded(ctx)
  const routed = route(ctx, message)
  if (isPromise(routed)) return routed.then((count) => storeIncoming(ctx, packetId, count))
  return storeIncoming(ctx, packetId, routed)
}

function storeIncoming(ctx: HandlerContext, packetId: number, count: number | undefined): Awaitable<void> {
  const saved = ctx.session.saveIncoming(packetId)
  if (isPromise(saved)) return saved.then(() => pubrec(ctx, packetId, count))
  pubrec(ctx, packetId, count)
}

function pubrec(ctx: HandlerContext, packetId: number, count: number | undefined): void {
  if (ctx.protocolLevel === 5 && count === 0) {
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

