import { encode } from '../packet/index.js'
import type { EncodedPublish } from '../packet/publish-template.js'
import type { ProtocolLevel, PublishPacket, PublishProperties, QoS } from '../packet/types.js'
import type { DeliveryResult } from '../backend/backend.js'
import type { Message, OutgoingRecord, Session, StoredSubscription } from '../session/session.js'
import { isPromise } from '../util/awaitable.js'
import type { DropReason } from './events.js'
import { variantFor } from './encoded-message.js'
import type { OutboundAliases } from './topic-aliases.js'
import { systemClock } from './clock.js'
import type { Clock } from './clock.js'

/** What `Outbound` needs of its connection. */
export interface OutboundHost {
  readonly clientId: string
  readonly protocolLevel: ProtocolLevel
  readonly session: Session
  /** Largest packet the client accepts (MQTT 5 Maximum Packet Size), in bytes. */
  readonly maxOutgoingPacketSize: number
  /** MQTT 5 topic aliases towards the client (undefined: the client allows none). */
  readonly aliases: OutboundAliases | undefined
  /** Bytes written to the socket and not yet sent, plus the batch being gathered. */
  bufferedBytes(): number
  pushPublish(variant: EncodedPublish, packetId: number): void
  pushBytes(bytes: Buffer): void
  /** A PUBLISH was queued for writing (observers, counters). */
  sent(message: Message, qos: QoS, retain: boolean, dup: boolean, packetId: number, ids: number[] | undefined): void
  dropped(message: Message, reason: DropReason): void
  /** The outgoing queue overflowed with QoS 1/2 messages: disconnect the client. */
  slowConsumer(): void
  /** A session write failed. */
  sessionError(error: unknown): void
}

/** One delivery waiting beyond the inflight window. */
interface Pending {
  message: Message
  subscription: StoredSubscription
  qos: QoS
  retain: boolean
  /** A resumed session's unacknowledged PUBLISH waiting for window room: resent with DUP and this id. */
  resendId?: number
}

/** Limits of an `Outbound`. */
export interface OutboundLimits {
  /** QoS 1/2 PUBLISH in flight at most (min of the broker's window and the client's Receive Maximum). */
  window: number
  /** Deliveries waiting beyond the window at most. */
  maxQueue: number
  /** Bytes (payload and topic) of the deliveries waiting at most (default: no bound but `maxQueue`). */
  maxQueueBytes?: number
  /**
   * Unsent bytes (the output high-water mark) beyond which QoS 0 deliveries are dropped and QoS 1/2
   * deliveries wait in the queue until the output drains (`pump`).
   */
  maxBufferedBytes: number
}

/**
 * Outbound flow control of one connection: QoS downgrade, packet identifiers, the inflight window,
 * an ordered bounded queue beyond it, message expiry, the client's maximum packet size, and the
 * encoding of each message once per protocol level (bytes shared by every receiver).
 *
 * Slow receivers: beyond the output high-water mark (`maxBufferedBytes` unsent) QoS 0 deliveries
 * are dropped ('buffer-full') and QoS 1/2 ones wait in the queue, sent by `pump` when the host's
 * output drained. Queue policy when full (in messages or bytes): evict the oldest QoS 0 delivery;
 * with none, the client is a slow consumer and is disconnected. All are counted by the host.
 */
export class Outbound {
  /** QoS 1/2 exchanges started and not completed. */
  inflight = 0
  /** False until CONNACK went out: deliveries wait in the queue until then. */
  live = false
  private queue: Pending[] | undefined = undefined
  private head = 0
  /** Bytes (payload and topic) of the deliveries in the queue. */
  private queueBytes = 0

  constructor(
    private readonly host: OutboundHost,
    private readonly limits: OutboundLimits,
    private readonly clock: Clock = systemClock
  ) {}

  /** Deliveries waiting beyond the window. */
  get queued(): number {
    return this.queue === undefined ? 0 : this.queue.length - this.head
  }

  /** See `ClientHandle.deliver`. */
  deliver(message: Message, subscription: StoredSubscription, isRetained: boolean): DeliveryResult {
    const host = this.host
    // No Local [MQTT-3.8.3-3]: never send a client its own message on such a subscription.
    if (subscription.noLocal === true && message.origin === host.clientId) return this.drop(message, 'no-local')
    if (expired(message, this.clock)) return this.drop(message, 'expired') // [MQTT-3.3.2-5]
    const qos: QoS = message.qos < subscription.qos ? message.qos : subscription.qos
    // RETAIN is set only on retained messages sent for a new subscription [MQTT-3.3.1-8]
    // [MQTT-3.3.1-9], or kept as published on Retain As Published subscriptions (MQTT 5.0 3.3.1.3).
    const retain = isRetained || (subscription.retainAsPublished === true && message.retain)
    if (!this.live || this.queued > 0 || (qos > 0 && this.inflight >= this.limits.window)) {
      return this.enqueue({ message, subscription, qos, retain })
    }
    const backed = host.bufferedBytes() > this.limits.maxBufferedBytes
    if (qos === 0) {
      if (backed) return this.drop(message, 'buffer-full')
      return this.write(message, subscription, 0, retain, false, 0) ? 'sent' : this.drop(message, 'too-large')
    }
    // Beyond the high-water mark QoS 1/2 deliveries wait (bounded) until the output drains.
    if (backed) return this.enqueue({ message, subscription, qos, retain })
    return this.start(message, subscription, qos, retain)
  }

  /** A QoS 1/2 exchange completed: free its window slot and send what waits. */
  completed(): void {
    if (this.inflight > 0) this.inflight--
    this.pump()
  }

  /**
   * Go live after CONNACK: resend a resumed session's exchanges (PUBLISH with DUP [MQTT-4.4.0-1],
   * PUBREL as is (DUP set for MQTT 3.1), in their original order [MQTT-4.6.0-1]), then what was held during CONNECT.
   */
  resume(records: OutgoingRecord[]): void {
    this.live = true
    let waiting: Pending[] | undefined
    for (const record of records) {
      if (record.kind === 'pubrel') {
        this.inflight++
        const level = this.host.protocolLevel
        const pubrel = encode({ type: 'pubrel', packetId: record.packetId }, level)
        // MQTT 3.1 sets DUP on a re-delivered PUBREL (3.1 sections 2.1 and 4.2); 3.1.1 and 5.0 fix the flags at 0010.
        if (level === 3) pubrel[0]! |= 0x08
        this.host.pushBytes(pubrel)
        continue
      }
      const message = record.message
      const subscription = record.subscription ?? { topicFilter: message.topic, qos: message.qos }
      const retain = subscription.retainAsPublished === true && message.retain
      if (this.inflight >= this.limits.window) {
        // Resends count against the client's Receive Maximum too [MQTT-3.3.4-9]: the rest wait, in order.
        ;(waiting ??= []).push({ message, subscription, qos: message.qos, retain, resendId: record.packetId })
        continue
      }
      this.resend(message, subscription, retain, record.packetId)
    }
    if (waiting !== undefined) {
      // Ahead of anything delivered during CONNECT: they are older.
      const queue = this.queue
      this.queue = queue === undefined ? waiting : [...waiting, ...queue.slice(this.head)]
      for (const item of waiting) this.queueBytes += weight(item.message)
      this.head = 0
    }
    this.pump()
  }

  /** Resend an unacknowledged PUBLISH with DUP [MQTT-4.4.0-1], or forget it when it cannot be sent. */
  private resend(message: Message, subscription: StoredSubscription, retain: boolean, packetId: number): void {
    this.inflight++
    if (!this.write(message, subscription, message.qos, retain, true, packetId)) {
      // Cannot be sent any more (too large for the client): forget it.
      this.inflight--
      this.settle(this.host.session.deleteOutgoing(packetId))
      this.drop(message, 'too-large')
    }
  }

  /** Send queued deliveries while the window and the output high-water mark allow. */
  pump(): void {
    const queue = this.queue
    if (queue === undefined || !this.live) return
    const limits = this.limits
    const host = this.host
    while (this.head < queue.length) {
      const item = queue[this.head]!
      const backed = host.bufferedBytes() > limits.maxBufferedBytes
      if (item.qos > 0 && (this.inflight >= limits.window || backed)) break
      queue[this.head] = undefined as unknown as Pending
      this.head++
      this.queueBytes -= weight(item.message)
      if (backed && item.qos === 0) {
        this.drop(item.message, 'buffer-full')
        continue
      }
      if (item.resendId !== undefined) {
        this.resend(item.message, item.subscription, item.retain, item.resendId)
        continue
      }
      // Not sent yet: a message that expired while waiting is not sent at all [MQTT-3.3.2-5].
      if (expired(item.message, this.clock)) {
        this.drop(item.message, 'expired')
        continue
      }
      if (item.qos === 0) {
        if (!this.write(item.message, item.subscription, 0, item.retain, false, 0)) this.drop(item.message, 'too-large')
      } else {
        this.start(item.message, item.subscription, item.qos, item.retain)
      }
    }
    if (this.head === queue.length) {
      this.queue = undefined
      this.head = 0
      this.queueBytes = 0
    } else if (this.head > 1024 && this.head * 2 > queue.length) {
      queue.splice(0, this.head)
      this.head = 0
    }
  }

  /** The connection ended: hand back the QoS 1/2 deliveries that never went out (for the offline queue). */
  takeQueued(): { message: Message; subscription: StoredSubscription }[] {
    const queue = this.queue
    this.queue = undefined
    this.queueBytes = 0
    if (queue === undefined) return []
    const out: { message: Message; subscription: StoredSubscription }[] = []
    for (let i = this.head; i < queue.length; i++) {
      const item = queue[i]!
      // Resends stay in the session's outgoing store; only never-sent QoS 1/2 deliveries go back.
      if (item.qos > 0 && item.resendId === undefined) out.push({ message: item.message, subscription: item.subscription })
    }
    this.head = 0
    return out
  }

  private enqueue(item: Pending): DeliveryResult {
    const queue = (this.queue ??= [])
    const size = weight(item.message)
    const limits = this.limits
    while (queue.length - this.head >= limits.maxQueue || (this.queueBytes + size > (limits.maxQueueBytes ?? Infinity) && this.queued > 0)) {
      // Full: evict the oldest QoS 0 delivery, or give up on this client.
      let i = this.head
      while (i < queue.length && queue[i]!.qos !== 0) i++
      if (i < queue.length) {
        const [evicted] = queue.splice(i, 1)
        this.queueBytes -= weight(evicted!.message)
        this.drop(evicted!.message, 'evicted')
      } else if (item.qos === 0) {
        return this.drop(item.message, 'queue-full')
      } else {
        this.host.slowConsumer()
        return this.drop(item.message, 'queue-full')
      }
    }
    queue.push(item)
    this.queueBytes += size
    return 'queued'
  }

  /** Start a QoS 1/2 exchange: a packet id, the session record, the bytes. */
  private start(message: Message, subscription: StoredSubscription, qos: QoS, retain: boolean): DeliveryResult {
    const session = this.host.session
    const packetId = session.nextPacketId()
    if (packetId === 0) return this.drop(message, 'no-packet-id') // all 65,535 in use [MQTT-2.2.1-3]
    // DUP only for a message that may have been sent before (a backend's recovery) [MQTT-3.3.1-1].
    if (!this.write(message, subscription, qos, retain, message.redelivery === true, packetId)) return this.drop(message, 'too-large')
    // The session keeps the message as it is delivered (downgraded QoS), for redelivery.
    const stored: Message = message.qos === qos ? message : { ...message, qos }
    this.settle(session.saveOutgoing({ kind: 'publish', packetId, message: stored, subscription }))
    this.inflight++
    return 'sent'
  }

  /**
   * Queue the bytes of one PUBLISH. The common case shares the message's cached template; MQTT 5
   * deliveries with subscription identifiers or a partly elapsed expiry are encoded for this
   * receiver alone. False when the packet exceeds the client's Maximum Packet Size (MQTT 5.0 3.1.2.11.4).
   */
  private write(
    message: Message,
    subscription: StoredSubscription,
    qos: QoS,
    retain: boolean,
    dup: boolean,
    packetId: number
  ): boolean {
    const host = this.host
    const level = host.protocolLevel
    let ids: number[] | undefined
    if (level === 5) {
      ids = subscription.subscriptionIdentifiers
      if (ids !== undefined && ids.length === 0) ids = undefined
      const interval = message.properties?.messageExpiryInterval
      const elapsed =
        interval === undefined || message.receivedAt === undefined ? 0 : Math.floor((this.clock.now() - message.receivedAt) / 1000)
      const aliases = host.aliases
      // The shared template serves every receiver unless this one needs its own bytes: identifiers,
      // an expiry interval that changed while the message waited, or a topic alias.
      if (ids !== undefined || elapsed > 0 || aliases !== undefined) {
        const properties: PublishProperties = { ...message.properties }
        if (ids !== undefined) properties.subscriptionIdentifiers = ids // [MQTT-3.3.4-3]
        // Forward the remaining lifetime, not the original one [MQTT-3.3.2-6].
        if (interval !== undefined && elapsed > 0) properties.messageExpiryInterval = Math.max(interval - elapsed, 0)
        let topic = message.topic
        let alias = 0
        if (aliases !== undefined) {
          // [MQTT-3.3.2-11] within the client's Topic Alias Maximum; a bound alias replaces the topic.
          alias = aliases.lookup(topic)
          if (alias !== 0) topic = ''
          else alias = aliases.candidate()
          properties.topicAlias = alias
        }
        const packet: PublishPacket = { type: 'publish', topic, payload: message.payload, qos, retain, dup, properties }
        if (qos > 0) packet.packetId = packetId
        const bytes = encode(packet, 5)
        if (bytes.length > host.maxOutgoingPacketSize) return false
        if (aliases !== undefined) aliases.commit(message.topic, alias)
        host.pushBytes(bytes)
        host.sent(message, qos, retain, dup, packetId, ids)
        return true
      }
    }
    const variant = variantFor(message, level, qos, retain, dup)
    if (variant.bytes.length > host.maxOutgoingPacketSize) return false
    host.pushPublish(variant, packetId)
    host.sent(message, qos, retain, dup, packetId, undefined)
    return true
  }

  private drop(message: Message, reason: DropReason): 'dropped' {
    this.host.dropped(message, reason)
    return 'dropped'
  }

  private settle(result: void | Promise<void>): void {
    if (isPromise(result)) result.catch((error: unknown) => this.host.sessionError(error))
  }
}

/** What a queued delivery is counted as against `maxQueueBytes`: its payload and topic. */
function weight(message: Message): number {
  return message.payload.length + message.topic.length
}

/** Whether `message` outlived its Message Expiry Interval [MQTT-3.3.2-5] (the clock read only when it has one). */
function expired(message: Message, clock: Clock): boolean {
  const interval = message.properties?.messageExpiryInterval
  return interval !== undefined && message.receivedAt !== undefined && message.receivedAt + interval * 1000 < clock.now()
}
