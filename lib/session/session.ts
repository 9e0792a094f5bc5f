import type { QoS, PublishProperties, WillProperties } from '../packet/types.js'
import type { Awaitable } from '../util/awaitable.js'

/**
 * An application message as the broker routes it: the content of a PUBLISH without its packet
 * identifier, DUP flag or topic alias.
 *
 * Messages are shared between every receiver of a publish: never mutate one after handing it to
 * `Backend.publish`. `payload` may be a view of an input chunk; a backend that keeps a message
 * beyond the call (retained store, offline queue, another process) keeps it as it is or copies it,
 * but never changes its bytes.
 *
 * Public fields and private ones: the fields below are the whole contract. The engine caches the
 * encoded bytes of a message on the message object itself (a property of its own, not declared
 * here), and a backend may attach properties of its own (under a `Symbol` key) to messages it
 * made itself, e.g. a ticket to acknowledge when the delivery completes. A backend that stores or
 * forwards a message copies the fields declared here only, never the whole object. The engine
 * hands a message a backend delivered back to the session (`OutgoingRecord.message`) as the same
 * object or a spread copy (`{ ...message, qos }`), so a backend's own symbol-keyed properties
 * come back with it.
 */
export interface Message {
  /** The topic name (never empty, never an alias). */
  topic: string
  payload: Buffer
  /** The QoS the message was published with. */
  qos: QoS
  /** The RETAIN flag as published. */
  retain: boolean
  /**
   * MQTT 5 properties to forward: payload format, message expiry, content type, response topic,
   * correlation data, user properties. Never a topic alias or subscription identifiers (those are
   * per receiver).
   */
  properties?: PublishProperties
  /** When the broker received the message (ms since the epoch), for message expiry. */
  receivedAt?: number
  /**
   * This message may already have been sent to this receiver (a backend recovering what a crashed
   * process had handed to a connection): its first QoS 1/2 sending carries DUP=1 [MQTT-3.3.1-1].
   * Set by a backend on a per-receiver copy only.
   */
  redelivery?: boolean
  /** Client identifier of the publisher, for No Local. Absent for messages made by the broker. */
  origin?: string
  /**
   * The tenant of a message the broker makes itself (a will, a `$SYS` message), for the calls
   * without a client: `Backend.publish(undefined, message)` and `storeRetained(undefined, message)`
   * route by it (undefined: the default tenant). Messages of a client are routed by `client.tenant`.
   */
  tenant?: string
}

/** A subscription as a session stores it, after the broker granted it. */
export interface StoredSubscription {
  /** The topic filter as the client sent it (including any `$share/{group}/` prefix). */
  topicFilter: string
  /** The granted maximum QoS. */
  qos: QoS
  /** MQTT 5: do not deliver the client's own messages [MQTT-3.8.3-3]. */
  noLocal?: boolean
  /** MQTT 5: keep the RETAIN flag as published [MQTT-3.3.1-12]. */
  retainAsPublished?: boolean
  /** MQTT 5: 0 send retained messages at subscribe, 1 only for a new subscription, 2 never. */
  retainHandling?: 0 | 1 | 2
  /**
   * MQTT 5 subscription identifiers. A stored subscription has at most one; when a backend merges
   * several overlapping subscriptions of one client for one delivery, it carries each of them
   * [MQTT-3.3.4-3] [MQTT-3.3.4-5].
   */
  subscriptionIdentifiers?: number[]
}

/** The will message of a session, as stored. */
export interface StoredWill {
  topic: string
  payload: Buffer
  qos: QoS
  retain: boolean
  properties?: WillProperties
}

/**
 * An outgoing QoS 1 or 2 exchange the session keeps until it completes: a PUBLISH waiting for
 * PUBACK/PUBREC, or (QoS 2, after PUBREC) a PUBREL waiting for PUBCOMP.
 */
export type OutgoingRecord =
  | {
      kind: 'publish'
      packetId: number
      /** The message as it will be (re)sent; qos is the delivered QoS. */
      message: Message
      /** The subscription it was delivered for (QoS downgrade, identifiers, retain as published). */
      subscription?: StoredSubscription
    }
  | { kind: 'pubrel'; packetId: number }

/** A message waiting in a session's offline queue, with the subscription that matched it. */
export interface QueuedMessage {
  message: Message
  subscription: StoredSubscription
}

/**
 * The state the broker keeps for one client identifier, across connections when the session is
 * persistent. The backend makes it (`Backend.setup`) and keeps it; the engine works on it while
 * the connection lives. This interface is exactly what the engine calls: anything else a backend
 * keeps about a session (how it stores subscriptions, drains the offline queue, forgets a session,
 * reads a will back) is the backend's own business and not part of the contract.
 *
 * Who writes and who reads each part:
 *
 * | part | written by | read by |
 * |---|---|---|
 * | `clientId` | backend (`setup`) | engine |
 * | `expiryInterval` | backend (`setup`, from the requested interval); engine (MQTT 5 DISCONNECT may change it) | engine (teardown, will delay); backend (expiry) |
 * | packet ids (`nextPacketId`) | engine | engine |
 * | outgoing exchanges (`saveOutgoing`, `deleteOutgoing`) | engine | engine (`getOutgoing`, `listOutgoing` on resume); backend only to keep them |
 * | incoming QoS 2 ids (`saveIncoming`, `deleteIncoming`) | engine | engine (`hasIncoming`) |
 * | subscriptions | backend (in `Backend.subscribe` / `unsubscribe`, kept across a resume) | engine (`listSubscriptions`: Retain Handling 1, `maxSubscriptionsPerClient`); backend (routing) |
 * | will (`saveWill`, `clearWill`) | engine | backend only (e.g. to publish the will of a process that died) |
 * | offline queue (`enqueue`) | backend (routing to an away session); engine (undelivered QoS 1/2 messages at teardown) | backend (`Backend.queueOffline`) |
 *
 * Contract:
 * - Every method may answer synchronously or with a promise (`Awaitable`). Callers await only real
 *   promises. An in-memory session must answer synchronously.
 * - Methods of one session are called by one connection at a time (the backend's `setup` hands a
 *   session to exactly one live connection). A session need not guard against concurrent callers,
 *   but a distributed session must refuse writes from a connection that lost ownership (fencing):
 *   it rejects with `SessionTakenOverError` (lib/backend/errors.ts).
 * - A write that resolves is durable as far as the implementation promises durability: the engine
 *   acknowledges a QoS 1/2 message only after `saveIncoming` / `Backend.publish` resolved.
 * - Errors are reported by rejecting (or throwing, for a synchronous session); the engine closes
 *   the connection with "implementation specific error" and keeps the process alive.
 */
export interface Session {
  /** The client identifier this session belongs to. Written by the backend. */
  readonly clientId: string

  /**
   * MQTT 5 Session Expiry Interval in seconds (0: the session ends with the connection;
   * 0xFFFFFFFF: never). For 3.1/3.1.1 clients: 0 with clean session, 0xFFFFFFFF without. Set by
   * the backend in `setup` (the requested interval); the engine may change it when an MQTT 5
   * DISCONNECT carries a new interval, before `Backend.terminate` reads it.
   */
  expiryInterval: number

  /**
   * The next free packet identifier for an outgoing exchange: 1..65,535, cycling, never one that is
   * in the outgoing store [MQTT-2.2.1-3]. Returns 0 when all 65,535 are in use.
   */
  nextPacketId(): number

  /** Keep an outgoing exchange until it completes (replaces any with the same id). */
  saveOutgoing(record: OutgoingRecord): Awaitable<void>
  /** The outgoing exchange with this packet identifier. */
  getOutgoing(packetId: number): Awaitable<OutgoingRecord | undefined>
  /** Forget an outgoing exchange (PUBACK or PUBCOMP received). */
  deleteOutgoing(packetId: number): Awaitable<void>
  /** Every outgoing exchange, oldest first, for redelivery when the session resumes [MQTT-4.4.0-1]. */
  listOutgoing(): Awaitable<OutgoingRecord[]>

  /** Remember that an incoming QoS 2 PUBLISH with this id was received and not yet released. */
  saveIncoming(packetId: number): Awaitable<void>
  /** Whether an incoming QoS 2 PUBLISH with this id awaits its PUBREL. */
  hasIncoming(packetId: number): Awaitable<boolean>
  /** Forget an incoming QoS 2 id (PUBREL received). */
  deleteIncoming(packetId: number): Awaitable<void>

  /**
   * Every subscription of the session, as the backend granted it (granted QoS, options, identifier):
   * those added by `Backend.subscribe`, less those removed by `Backend.unsubscribe`, and on a
   * resumed session those it had before. The backend keeps them (in this object or elsewhere);
   * the engine only reads them, before a SUBSCRIBE with Retain Handling 1 (a retained message is
   * sent only for a filter that is not listed here) or when `maxSubscriptionsPerClient` is set.
   */
  listSubscriptions(): Awaitable<StoredSubscription[]>

  /**
   * Store the will of the current connection (replaces any). Written by the engine at CONNECT; the
   * engine publishes the will itself when the connection ends, so only a backend that must publish
   * wills of connections whose process died (a distributed backend) needs to read it back.
   */
  saveWill(will: StoredWill): Awaitable<void>
  /** Forget the will (after DISCONNECT, or once published). */
  clearWill(): Awaitable<void>

  /**
   * Add a message to the offline queue. Returns false when it was not queued (queue full and the
   * policy dropped it, or the message expired); the session counts what it drops. The backend
   * queues messages routed to an away session; the engine queues the QoS 1/2 messages a closing
   * connection never sent. The backend delivers the queue in `Backend.queueOffline`.
   */
  enqueue(item: QueuedMessage): Awaitable<boolean>
}
