/**
 * `ClientSession`: the protocol state that outlives one network connection — outbound QoS 1/2
 * messages (queued, on the wire, or released with PUBREL) in the order they were accepted, the
 * packet identifiers in use, inbound QoS 2 identifiers awaiting PUBREL, and the subscription
 * registry. A plain `Client` uses a fresh one per connection; a `Service` hands the same one to
 * every connection it makes, so promises outlive reconnects and unacknowledged messages are resent
 * [MQTT-4.4.0-1].
 *
 * Durability (the store contract): a `SessionJournal`, when set, is told at each point of the
 * table of docs/client.md "Durability" and its promise is awaited where a record must be durable
 * before the next packet is sent. Without one, everything is synchronous and in memory.
 */
import type { ProtocolLevel, PublishTemplate, QoS, Subscription } from '../packet/index.js'
import { AbandonedError, CanceledError, LimitError } from './errors.js'
import { StoreError } from './store/store.js'

/** What a resolved publish reports. */
export interface PublishResult {
  /** 0 for QoS 0 (and for brokers before MQTT 5); the PUBACK / PUBREC reason code otherwise (0x00 or 0x10). */
  reasonCode: number
  /** MQTT 5 reason string / user properties of the acknowledgement. */
  reasonString?: string | undefined
}

/** The state of an outbound QoS 1/2 message. */
export type OutState = 'queued' | 'sent' | 'rel'

/** One outbound QoS 1/2 message of the session. */
export interface OutRecord {
  /** Acceptance order (never reused in a session; 2^53 is enough). */
  readonly seq: number
  readonly qos: 1 | 2
  readonly retain: boolean
  template: PublishTemplate
  /** 0 until the message first enters the in-flight window. */
  packetId: number
  state: OutState
  /** `clock.now()` when accepted (message expiry while queued); -1 when unknown (restored). */
  readonly acceptedAt: number
  /** With a journal: the packet id is recorded in the store (`out` with the id, or `id`). */
  idDurable?: boolean
  /** The PUBREC reason code (QoS 2), reported when PUBCOMP completes the exchange. */
  reasonCode?: number
  /** Settles the caller's promise; undefined once settled or abandoned. */
  settle: ((error: Error | undefined, result?: PublishResult) => void) | undefined
}

/** An accepted record with its caller's promise (see `settleRecord`). */
interface PendingRecord extends OutRecord {
  resolve?: ((result: PublishResult) => void) | undefined
  reject?: ((error: Error) => void) | undefined
  signal?: AbortSignal | undefined
  onAbort?: (() => void) | undefined
}

/** `OutRecord.settle` of every accepted record: called as a method, settles once. */
function settleRecord(this: PendingRecord, error: Error | undefined, result?: PublishResult): void {
  const { resolve, reject, signal, onAbort } = this
  this.settle = undefined
  this.resolve = undefined
  this.reject = undefined
  if (signal !== undefined) {
    this.signal = undefined
    this.onAbort = undefined
    signal.removeEventListener('abort', onAbort!)
  }
  if (error === undefined) resolve!(result!)
  else reject!(error)
}

/** The record whose promise is being made (`captureResolvers` runs synchronously inside `new Promise`). */
let resolving: PendingRecord | undefined

/** The one executor of every accepted record's promise. */
function captureResolvers(resolve: (result: PublishResult) => void, reject: (error: Error) => void): void {
  const record = resolving!
  resolving = undefined
  record.resolve = resolve
  record.reject = reject
  record.settle = settleRecord
}

/** Above this many slots an emptied send queue releases its array rather than keeping it. */
const QUEUE_KEEP_SLOTS = 4096

/** A registered subscription (for resubscribe), with its MQTT 5 subscription identifier. */
export interface RegisteredSubscription extends Subscription {
  subscriptionIdentifier?: number | undefined
}

/**
 * Where a session's state is made durable (implemented over a `ClientStore`; see service.ts).
 * Each method resolves when its record is durable per the store's sync policy. Methods not
 * awaited by the session (`done`, `consumed`) may be batched lazily.
 */
export interface SessionJournal {
  /** A QoS 1/2 message was accepted; must be durable before it is sent. */
  accepted(record: OutRecord): Promise<void>
  /** A queued message got its packet id (restored or republished without one): durable before its first PUBLISH. */
  assigned(record: OutRecord): Promise<void>
  /** PUBREC received: must be durable before PUBREL is sent. */
  released(record: OutRecord): Promise<void>
  /** The outbound exchange is over (completed, refused, canceled before sending). */
  done(record: OutRecord): void
  /** Session Present 0: the broker has none of our protocol state. */
  reset(): void
  /**
   * An inbound QoS 2 PUBLISH (its bytes, a copy) not seen before: durable before it is handed to
   * the application and before PUBREC. Resolves with the message's stable id.
   */
  received(packetId: number, packet: Buffer): Promise<string>
  /** The application acked the inbound message `id` (lazy). */
  consumed(id: string): void
  /** Inbound PUBREL: the packet id is free again; durable before PUBCOMP. */
  releasedInbound(packetId: number): Promise<void>
}

/** A session's protocol state; see the module comment. */
export class ClientSession {
  readonly protocolLevel: ProtocolLevel
  /** Every outbound QoS 1/2 message not finished, by seq, in acceptance order. */
  readonly out = new Map<number, OutRecord>()
  /** Outbound messages by packet id (those that have one). */
  readonly byPacketId = new Map<number, OutRecord>()
  /** Inbound QoS 2 packet ids received and not yet released (PUBREL), with whether the application acked. */
  readonly received = new Map<number, { acked: boolean; id: string }>()
  /** The subscription registry, by topic filter (Service: resubscribe when the broker has no session). */
  readonly subscriptions = new Map<string, RegisteredSubscription>()
  /** The durable side, when there is one. */
  journal: SessionJournal | undefined
  /** True when a `Service` keeps the session across connections (a connection loss then rejects nothing). */
  keep = false
  /**
   * Accepted messages waiting for the in-flight window, in order (finished ones are skipped), in
   * slots `queueHead` … `queueTail - 1`. A taken slot is cleared at once and an empty queue only
   * resets its indexes: a QoS 1 publisher empties it at every pump, and truncating the array there
   * (`length = 0`) freed and regrew its backing store each time (`set length` in the profile).
   */
  private queue: (OutRecord | undefined)[] = []
  private queueHead = 0
  private queueTail = 0
  /** Called when a message joins the queue (the connected Client pumps). */
  onQueued: (() => void) | undefined
  /** Bound on unfinished outbound messages (a full session rejects with `LimitError`). */
  maxMessages = Infinity
  /** Sends the acknowledgements that may go out now, on the current connection (set by it). */
  flushAcks: (() => void) | undefined
  /** Told of every outbound QoS 1/2 message the broker acknowledged (the Service's `delivered$`). */
  onDelivered: ((record: OutRecord, result: PublishResult) => void) | undefined
  /** Packet ids in use by SUBSCRIBE/UNSUBSCRIBE of the current connection. */
  readonly requestIds = new Set<number>()
  private nextSeq = 1
  private lastPacketId = 0
  private inboundSeq = 0

  constructor(protocolLevel: ProtocolLevel, journal?: SessionJournal) {
    this.protocolLevel = protocolLevel
    this.journal = journal
  }

  /** Number of unfinished outbound QoS 1/2 messages. */
  get size(): number {
    return this.out.size
  }

  /** Make a record for an accepted message (state 'queued', no packet id yet). */
  add(template: PublishTemplate, qos: 1 | 2, retain: boolean, now: number): OutRecord {
    // Every field a record gets later is here from the start: one object shape for all.
    const record: PendingRecord = {
      seq: this.nextSeq++,
      qos,
      retain,
      template,
      packetId: 0,
      state: 'queued',
      acceptedAt: now,
      idDurable: false,
      reasonCode: undefined,
      settle: undefined,
      resolve: undefined,
      reject: undefined,
      signal: undefined,
      onAbort: undefined
    }
    this.out.set(record.seq, record)
    return record
  }

  /**
   * Accept a QoS 1/2 message: record it, make it durable (journal), queue it for sending, and
   * return the promise settled by its acknowledgement. Abort before it is sent: `CanceledError`
   * and the message is dropped; after: `AbandonedError` and the exchange goes on.
   */
  accept(template: PublishTemplate, qos: 1 | 2, retain: boolean, now: number, signal: AbortSignal | undefined, onAccepted?: (id: string) => void): Promise<PublishResult> {
    if (signal?.aborted === true) return Promise.reject(new CanceledError({ cause: signal.reason }))
    if (this.out.size >= this.maxMessages) return Promise.reject(new LimitError(`${this.out.size} messages unfinished: the session is full`))
    const record = this.add(template, qos, retain, now) as PendingRecord
    // No closure per message: one shared executor puts the promise's resolvers on the record and
    // `settle` is one shared function called as `record.settle(...)`; the abort listener exists
    // only with a signal.
    resolving = record
    const promise = new Promise<PublishResult>(captureResolvers)
    try {
      if (signal !== undefined) {
        record.signal = signal
        record.onAbort = () => {
          if (record.state === 'queued') {
            this.finish(record)
            record.settle?.(new CanceledError({ cause: signal.reason }))
          } else record.settle?.(new AbandonedError({ cause: signal.reason }))
        }
        signal.addEventListener('abort', record.onAbort, { once: true })
      }
      const journal = this.journal
      if (journal === undefined) {
        onAccepted?.(String(record.seq))
        this.enqueue(record)
        return promise
      }
      // Durable before sent: with a store the packet id is fixed now and recorded with the message.
      record.idDurable = true
      if (!this.assignId(record)) {
        this.out.delete(record.seq)
        record.settle?.(new LimitError('all 65,535 packet identifiers are in use'))
        return promise
      }
      journal.accepted(record).then(
        () => {
          if (this.out.get(record.seq) !== record) return
          onAccepted?.(String(record.seq))
          this.enqueue(record)
        },
        (error: unknown) => {
          this.out.delete(record.seq)
          this.byPacketId.delete(record.packetId)
          record.settle?.(error instanceof StoreError ? error : new StoreError('io', 'session store failed', { cause: error }))
        }
      )
    } catch (error) {
      // What a throwing executor did: the promise rejects (a journal that throws instead of rejecting).
      if (this.out.get(record.seq) === record) this.finish(record)
      record.settle?.(error instanceof Error ? error : new Error(String(error)))
    }
    return promise
  }

  /** Put an accepted record at the end of the send queue. */
  enqueue(record: OutRecord): void {
    this.queue[this.queueTail++] = record
    this.onQueued?.()
  }

  /** The next record to send (skipping finished ones), or undefined. */
  nextQueued(): OutRecord | undefined {
    const queue = this.queue
    while (this.queueHead < this.queueTail) {
      const record = queue[this.queueHead]!
      queue[this.queueHead++] = undefined
      if (this.out.get(record.seq) === record && record.state === 'queued') {
        this.compact()
        return record
      }
    }
    this.compact()
    return undefined
  }

  /** Put `record` back at the head of the queue (no packet id free). */
  unshift(record: OutRecord): void {
    if (this.queueHead > 0) this.queue[--this.queueHead] = record
    else {
      this.queue.unshift(record)
      this.queueTail++
    }
  }

  /** Rebuild the queue from every unfinished record in `state` 'queued', in acceptance order. */
  requeueAll(): void {
    this.queue = [...this.out.values()].filter((record) => record.state === 'queued')
    this.queueHead = 0
    this.queueTail = this.queue.length
  }

  /** Queued (not yet sent) messages. */
  get queued(): number {
    return this.queueTail - this.queueHead
  }

  private compact(): void {
    const head = this.queueHead
    if (head === this.queueTail) {
      // Taken slots are already cleared: keep the capacity, unless a burst made it large.
      if (this.queue.length > QUEUE_KEEP_SLOTS) this.queue = []
      this.queueHead = 0
      this.queueTail = 0
    } else if (head > 1024 && head * 2 > this.queueTail) {
      const queue = this.queue
      queue.copyWithin(0, head, this.queueTail)
      queue.fill(undefined, this.queueTail - head, this.queueTail)
      this.queueTail -= head
      this.queueHead = 0
    }
  }

  /** Restore a record (from a store) with its seq, id and state. */
  restore(record: OutRecord): void {
    record.idDurable = record.packetId !== 0
    this.out.set(record.seq, record)
    if (record.packetId !== 0) this.byPacketId.set(record.packetId, record)
    if (record.seq >= this.nextSeq) this.nextSeq = record.seq + 1
  }

  /** Give `record` a free packet id. Returns false when all 65,535 are in use. */
  assignId(record: OutRecord): boolean {
    const id = this.allocateId()
    if (id === 0) return false
    record.packetId = id
    this.byPacketId.set(id, record)
    return true
  }

  /** A packet id free in both the outbound table and the request table (0 when none is free). */
  allocateId(): number {
    for (let tries = 0; tries < 65_535; tries++) {
      this.lastPacketId = this.lastPacketId >= 65_535 ? 1 : this.lastPacketId + 1
      const id = this.lastPacketId
      if (!this.byPacketId.has(id) && !this.requestIds.has(id)) return id
    }
    return 0
  }

  /** The broker acknowledged `record` (PUBACK, PUBCOMP, or PUBREC before a lost session): finish it and settle its promise. */
  delivered(record: OutRecord, result: PublishResult): void {
    this.finish(record)
    record.settle?.(undefined, result)
    this.onDelivered?.(record, result)
  }

  /** The exchange of `record` is over: forget it and free its packet id. */
  finish(record: OutRecord): void {
    this.out.delete(record.seq)
    if (record.packetId !== 0 && this.byPacketId.get(record.packetId) === record) this.byPacketId.delete(record.packetId)
    this.journal?.done(record)
  }

  /** Session Present 0: the broker forgot our ids; forget the inbound set and every packet id. */
  reset(): void {
    this.received.clear()
    this.byPacketId.clear()
    for (const record of this.out.values()) record.packetId = 0
    this.journal?.reset()
  }

  /** The next message seq (shared by both directions, as the store contract wants). */
  takeSeq(): number {
    return this.nextSeq++
  }

  /** Continue numbering from a store's `nextSeq`. */
  startSeqAt(seq: number): void {
    if (seq > this.nextSeq) this.nextSeq = seq
  }

  /** A stable id for an inbound message that has no store record. */
  nextInboundId(): string {
    return `m${++this.inboundSeq}`
  }

  /** The number of `nextInboundId` (a `Message` makes the string only when asked). */
  nextInboundNumber(): number {
    return ++this.inboundSeq
  }
}

/** The in-flight QoS of a message (QoS 0 has no record). */
export function isStoredQoS(qos: QoS): qos is 1 | 2 {
  return qos !== 0
}
