import type {
  Message,
  OutgoingRecord,
  QueuedMessage,
  Session,
  StoredSubscription,
  StoredWill
} from './session.js'

/** The largest packet identifier [MQTT-2.2.1-3]. */
const MAX_PACKET_ID = 65_535

/**
 * Counters a `MemorySession` adds to. Several sessions may share one object (a backend passes its
 * own `stats`), so the totals are per backend.
 */
export interface SessionQueueStats {
  /** Messages added to an offline queue. */
  queued: number
  /** Messages refused or evicted because a queue was full. */
  queueDropped: number
  /** Messages not queued, or dropped at drain, because their Message Expiry Interval ran out. */
  queueExpired: number
}

/** Options of a `MemorySession`. */
export interface MemorySessionOptions {
  /**
   * Most messages the offline queue holds (default 1000). When full, the oldest queued message
   * whose delivered QoS is 0 is evicted to make room; when there is none, the new message is
   * refused (`enqueue` returns false). Both are counted in `queueDropped`.
   */
  maxQueuedMessages?: number
  /**
   * Most bytes (payloads and topics) the offline queue holds (default 16 MiB), with the same policy
   * as `maxQueuedMessages`.
   */
  maxQueuedBytes?: number
  /** Where to count; default: a private object, readable as `session.stats`. */
  stats?: SessionQueueStats
  /** The clock, in ms since the epoch (default `Date.now`); tests pass a fake one. */
  now?: () => number
}

/** Default bound of an offline queue. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 1000

/** Default bound of an offline queue in bytes (payloads and topics): 16 MiB. */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024

/** What a queued message counts for against `maxQueuedBytes`. */
function queuedWeight(item: QueuedMessage): number {
  return item.message.payload.length + item.message.topic.length
}

/**
 * Whether `message` has outlived its MQTT 5 Message Expiry Interval at time `now`: it was received
 * at `receivedAt` and `receivedAt + interval * 1000 < now` [MQTT-3.3.2-5]. A message without an
 * interval or without `receivedAt` never expires.
 */
export function isMessageExpired(message: Message, now: number): boolean {
  const interval = message.properties?.messageExpiryInterval
  if (interval === undefined || message.receivedAt === undefined) return false
  return message.receivedAt + interval * 1000 < now
}

/** The QoS a queued message is delivered at: the lower of the message's and the subscription's. */
function deliveredQoS(item: QueuedMessage): number {
  return item.message.qos < item.subscription.qos ? item.message.qos : item.subscription.qos
}

/**
 * A `Session` kept in process memory. Every method answers synchronously (never a promise).
 *
 * It is built to be cheap when idle: the maps and the queue are created on first use, so a session
 * that never subscribed, queued or had anything in flight holds only a few fields.
 *
 * - Packet identifiers cycle through 1..65,535 and skip ids of the outgoing store [MQTT-2.2.1-3].
 * - `listOutgoing` lists exchanges oldest first; replacing a record (PUBLISH -> PUBREL of the same
 *   id) keeps its place, so resent flows keep their original order [MQTT-4.6.0-1].
 * - The offline queue is bounded (`maxQueuedMessages`) with the policy described there, and drops
 *   expired messages both when they arrive and when the queue is drained.
 *
 * Beyond the `Session` contract (what the engine calls) it has what a backend keeping its sessions
 * in memory needs: `saveSubscription`, `deleteSubscription`, `getSubscription` (the backend writes
 * the subscriptions the engine lists), `drainQueue` (for `Backend.queueOffline`), `getWill` and
 * `reset`.
 */
export class MemorySession implements Session {
  readonly clientId: string
  expiryInterval: number
  /** The counters this session adds to (shared with its backend when the backend passed them). */
  readonly stats: SessionQueueStats

  private lastPacketId = 0
  private outgoing: Map<number, OutgoingRecord> | undefined = undefined
  private incoming: Set<number> | undefined = undefined
  private subscriptions: Map<string, StoredSubscription> | undefined = undefined
  private will: StoredWill | undefined = undefined
  private queue: QueuedMessage[] | undefined = undefined
  private queueBytes = 0
  private readonly options: MemorySessionOptions | undefined

  /**
   * @param clientId the client identifier the session belongs to.
   * @param expiryInterval the Session Expiry Interval in seconds (see `Session.expiryInterval`).
   * @param options bound of the offline queue, counters, clock. Kept by reference: a backend passes
   *   one options object to all its sessions.
   */
  constructor(clientId: string, expiryInterval = 0, options?: MemorySessionOptions) {
    this.clientId = clientId
    this.expiryInterval = expiryInterval
    this.options = options
    this.stats = options?.stats ?? { queued: 0, queueDropped: 0, queueExpired: 0 }
  }

  /** Number of messages waiting in the offline queue. */
  get queueLength(): number {
    return this.queue === undefined ? 0 : this.queue.length
  }

  /** Number of outgoing exchanges in flight. */
  get outgoingCount(): number {
    return this.outgoing === undefined ? 0 : this.outgoing.size
  }

  nextPacketId(): number {
    const used = this.outgoing
    if (used !== undefined && used.size >= MAX_PACKET_ID) return 0
    let id = this.lastPacketId
    // Terminates: fewer than 65,535 ids are in use, so a free one exists.
    do {
      id = id >= MAX_PACKET_ID ? 1 : id + 1
    } while (used !== undefined && used.has(id))
    this.lastPacketId = id
    return id
  }

  saveOutgoing(record: OutgoingRecord): void {
    if (this.outgoing === undefined) this.outgoing = new Map()
    this.outgoing.set(record.packetId, record)
  }

  getOutgoing(packetId: number): OutgoingRecord | undefined {
    return this.outgoing?.get(packetId)
  }

  deleteOutgoing(packetId: number): void {
    this.outgoing?.delete(packetId)
  }

  listOutgoing(): OutgoingRecord[] {
    // A Map iterates in insertion order, and `set` on an existing key keeps its place.
    return this.outgoing === undefined ? [] : Array.from(this.outgoing.values())
  }

  saveIncoming(packetId: number): void {
    if (this.incoming === undefined) this.incoming = new Set()
    this.incoming.add(packetId)
  }

  hasIncoming(packetId: number): boolean {
    return this.incoming !== undefined && this.incoming.has(packetId)
  }

  deleteIncoming(packetId: number): void {
    this.incoming?.delete(packetId)
  }

  saveSubscription(subscription: StoredSubscription): boolean {
    if (this.subscriptions === undefined) this.subscriptions = new Map()
    const replaced = this.subscriptions.has(subscription.topicFilter)
    this.subscriptions.set(subscription.topicFilter, subscription)
    return replaced
  }

  /** The stored subscription with this filter (exact text, including any `$share/` prefix). */
  getSubscription(topicFilter: string): StoredSubscription | undefined {
    return this.subscriptions?.get(topicFilter)
  }

  deleteSubscription(topicFilter: string): boolean {
    return this.subscriptions !== undefined && this.subscriptions.delete(topicFilter)
  }

  listSubscriptions(): StoredSubscription[] {
    return this.subscriptions === undefined ? [] : Array.from(this.subscriptions.values())
  }

  saveWill(will: StoredWill): void {
    this.will = will
  }

  getWill(): StoredWill | undefined {
    return this.will
  }

  clearWill(): void {
    this.will = undefined
  }

  enqueue(item: QueuedMessage): boolean {
    const now = this.options?.now?.() ?? Date.now()
    if (isMessageExpired(item.message, now)) {
      this.stats.queueExpired++
      return false
    }
    const max = this.options?.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES
    const maxBytes = this.options?.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES
    if (this.queue === undefined) this.queue = []
    const queue = this.queue
    const size = queuedWeight(item)
    while (queue.length >= max || (queue.length > 0 && this.queueBytes + size > maxBytes)) {
      // Full: make room by evicting the oldest QoS 0 message, else refuse the new one.
      const victim = queue.findIndex((queued) => deliveredQoS(queued) === 0)
      if (victim < 0) {
        this.stats.queueDropped++
        return false
      }
      this.queueBytes -= queuedWeight(queue.splice(victim, 1)[0]!)
      this.stats.queueDropped++
    }
    queue.push(item)
    this.queueBytes += size
    this.stats.queued++
    return true
  }

  drainQueue(): QueuedMessage[] {
    const queue = this.queue
    if (queue === undefined || queue.length === 0) return []
    this.queue = undefined
    this.queueBytes = 0
    const now = this.options?.now?.() ?? Date.now()
    let expired = 0
    for (const item of queue) if (isMessageExpired(item.message, now)) expired++
    if (expired === 0) return queue
    this.stats.queueExpired += expired
    return queue.filter((item) => !isMessageExpired(item.message, now))
  }

  reset(): void {
    this.lastPacketId = 0
    this.outgoing = undefined
    this.incoming = undefined
    this.subscriptions = undefined
    this.will = undefined
    this.queue = undefined
    this.queueBytes = 0
  }
}
