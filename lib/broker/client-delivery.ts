import type { DeliveryResult } from '../backend/backend.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { PublishPacket, QoS } from '../packet/types.js'
import type { Message, OutgoingRecord, QueuedMessage, Session, StoredSubscription } from '../session/session.js'
import { CLOSED, CONNECTED } from './connection-io.js'
import type { BrokerClient, DropReason } from './events.js'
import { InboundScheduler } from './inbound-scheduler.js'
import { Outbound } from './outbound.js'
import type { OutboundHost } from './outbound.js'
import type { OutboundAliases } from './topic-aliases.js'

/**
 * The delivery side of one connection: `deliver` (what `ClientHandle.deliver` does), the `Outbound`
 * flow control behind it (made at the first delivery: an idle connection has none), and what the
 * `Outbound` reports back (sent, dropped, slow consumer, session errors: counters and events).
 */
export abstract class ClientDelivery extends InboundScheduler implements OutboundHost {
  /** The session, once CONNECT's session step attached it. */
  currentSession: Session | undefined = undefined
  /** Outbound flow control, made at the first delivery (or at CONNACK for a session with exchanges to resend). */
  private outbound: Outbound | undefined = undefined

  /** This connection as events carry it. */
  protected abstract get view(): BrokerClient

  /** See `ClientHandle.deliver`. */
  deliver(message: Message, subscription: StoredSubscription, isRetained = false): DeliveryResult {
    if (this.currentSession === undefined || this.phase === CLOSED) {
      this.dropped(message, 'disconnected')
      return 'dropped'
    }
    if (this.core.admission.overloaded && (message.qos === 0 || subscription.qos === 0)) {
      // Overloaded: QoS 0 deliveries go first.
      this.core.stats.overloadShed++
      this.dropped(message, 'shed')
      return 'dropped'
    }
    try {
      return (this.outbound ?? this.makeOutbound()).deliver(message, subscription, isRetained)
    } catch (error) {
      // A bug or a failing session of this receiver closes this receiver, not the publisher.
      this.internalError(error)
      return 'dropped'
    }
  }

  /** See `HandlerContext.outboundCompleted`. */
  outboundCompleted(): void {
    this.outbound?.completed()
  }

  /** CONNACK went out: deliveries held during CONNECT go, `inflight` (a resumed session's exchanges) first. */
  protected goLive(inflight: OutgoingRecord[]): void {
    if (this.outbound !== undefined) this.outbound.resume(inflight)
    else if (inflight.length > 0) this.makeOutbound(inflight)
  }

  /** The connection ended: the QoS 1/2 deliveries that never went out (for the offline queue). */
  protected takeQueued(): QueuedMessage[] {
    return this.outbound?.takeQueued() ?? []
  }

  /** The output drained: queued deliveries go out. */
  protected drained(): void {
    this.outbound?.pump()
  }

  /** The `Outbound` of this connection (a session is attached), made at first use. */
  private makeOutbound(inflight: OutgoingRecord[] = []): Outbound {
    const shared = this.core.outboundLimits
    // The client's Receive Maximum may make its window smaller than the broker's.
    const window = Math.min(shared.window, this.negotiated.clientReceiveMaximum)
    const outbound = new Outbound(this, window === shared.window ? shared : { ...shared, window }, this.core.options.clock)
    this.outbound = outbound
    // Made after CONNACK: live at once (before, deliveries wait in its queue until `goLive`).
    if (this.phase === CONNECTED) outbound.resume(inflight)
    return outbound
  }

  // ---- OutboundHost ---------------------------------------------------------------------------

  get session(): Session {
    const session = this.currentSession
    if (session === undefined) throw new Error('no session before CONNECT')
    return session
  }

  get maxOutgoingPacketSize(): number {
    return this.negotiated.maxOutgoingPacketSize
  }

  get aliases(): OutboundAliases | undefined {
    return this.negotiated.aliases
  }

  sent(message: Message, qos: QoS, retain: boolean, dup: boolean, packetId: number, ids: number[] | undefined): void {
    const stats = this.core.stats
    stats.publishesSent++
    stats.publishesSentByQos[qos]++
    this.negotiated.counters.sent++
    if (this.outgoing?.observed === true) {
      const packet: PublishPacket = { type: 'publish', topic: message.topic, payload: message.payload, qos, retain, dup }
      if (qos > 0) packet.packetId = packetId
      if (this.protocolLevel === 5 && (message.properties !== undefined || ids !== undefined)) {
        packet.properties = ids === undefined ? { ...message.properties } : { ...message.properties, subscriptionIdentifiers: ids }
      }
      this.outgoing.next(packet)
    }
    if (this.core.events.observed) this.core.events.emit({ type: 'delivered', client: this.view, message, qos })
  }

  dropped(message: Message, reason: DropReason): void {
    const stats = this.core.stats
    stats.deliveriesDropped++
    stats.droppedByReason[reason]++
    if (reason === 'evicted') stats.queueEvictions++
    else if (reason === 'buffer-full') stats.outputDrops++
    if (this.core.events.observed) this.core.events.emit({ type: 'dropped', client: this.view, message, reason })
  }

  slowConsumer(): void {
    this.core.stats.slowConsumers++
    this.log.warn('disconnecting slow consumer', { clientId: this.clientId })
    this.shutdown('slow-consumer', ReasonCode.QuotaExceeded)
  }

  sessionError(error: unknown): void {
    this.log.error('session write failed', { clientId: this.clientId, error })
    this.shutdown('server', ReasonCode.ImplementationSpecificError, error instanceof Error ? error : new Error(String(error)))
  }
}
