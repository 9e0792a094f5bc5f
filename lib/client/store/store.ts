/**
 * The client store contract: what a client session keeps so that, after a reconnect or a crash
 * and restart, no accepted QoS 1/2 publish is lost and an inbound QoS 2 message reaches the
 * application exactly once. Implementations: `MemoryStore` (survives reconnects, not a process
 * exit), `FileStore` (an append-only journal that survives a killed process, or a power loss with
 * `sync: 'fsync'`) and third-party stores, which show they keep this contract by running
 * `storeConformance` (lib/client/store/conformance.ts). See docs/client-store.md.
 *
 * The store is a **journal**, not a key-value map keyed by the 16-bit packet id: every message has
 * a stable message id, `seq`, assigned by the session from `StoreSnapshot.nextSeq` and never reused.
 * The packet id is only a field of the message while it is in flight.
 *
 * ## What must be durable before which packet is sent
 *
 * "Durable" means the promise returned by `commit` resolved (or `commit` returned synchronously).
 * The session (lib/client) follows this table; a store only has to keep its promise:
 *
 * | event                                   | records               | durable before                          |
 * |-----------------------------------------|-----------------------|-----------------------------------------|
 * | QoS 1/2 publish accepted                | `out` (+ `packetId`)  | `accepted` resolves AND the PUBLISH is written |
 * | a queued message gets its packet id     | `id`                  | its first PUBLISH is written            |
 * | PUBACK; PUBREC ≥ 0x80; PUBCOMP          | `done`                | nothing (lazy)                          |
 * | PUBREC < 0x80                           | `rel`                 | PUBREL is written                       |
 * | inbound QoS 2 PUBLISH, id not received  | `in`                  | PUBREC is written, and the hand-over    |
 * | inbound QoS 2 PUBLISH, id already held  | none                  | (PUBREC again, no hand-over)            |
 * | application acks an inbound message     | `consumed`            | nothing (lazy)                          |
 * | inbound PUBREL                          | `released`            | PUBCOMP is written                      |
 * | inbound QoS 1 with `storeQoS1`          | `in` + `released`     | PUBACK is written, and the hand-over    |
 * | CONNACK assigned a client id (v5)       | `meta`                | the next CONNECT                        |
 * | SUBSCRIBE / UNSUBSCRIBE accepted        | `sub` / `unsub`       | nothing (lazy)                          |
 * | CONNACK with Session Present 0          | `reset`               | any PUBLISH/PUBREL of that connection   |
 */
import type { ProtocolLevel, Subscription } from '../../packet/types.js'
import type { Awaitable } from '../../util/awaitable.js'

/** What the session binds a store to; `open` refuses a store bound to another client id. */
export interface StoreMeta {
  /** The client id given in CONNECT ('' when the server is to assign one). */
  clientId: string
  /** The protocol level the stored packets are encoded at. */
  protocolLevel: ProtocolLevel
  /** The client id the server assigned in CONNACK (MQTT 5), used for every later CONNECT. */
  assignedClientId?: string
}

/** A subscription remembered for resubscribing after a restart (last one per filter wins). */
export interface StoredSubscription extends Subscription {
  /** MQTT 5 subscription identifier sent with it, if any. */
  subscriptionIdentifier?: number
}

/**
 * One journal record. Records of one `commit` call, and of successive calls, take effect in call
 * order. A new message's `seq` is a positive safe integer, strictly greater than any seq committed
 * before in either direction (the session takes them from `StoreSnapshot.nextSeq` upward).
 */
export type StoreRecord =
  /** (Re)binds the store: written by `open` on an empty store, by the session for `assignedClientId`. */
  | { op: 'meta'; meta: StoreMeta }
  /**
   * An outbound QoS 1/2 PUBLISH accepted. `packet` is the whole encoded PUBLISH as the session
   * will send it (DUP 0, no topic alias, any packet id bytes: the session patches the id on
   * send). `packetId` when it goes straight into the in-flight window (0 or absent: queued).
   * An `out` with the seq of an outbound message still held replaces that message (its packet id
   * and state): a message re-accepted, e.g. republished with a new packet id after `reset`.
   */
  | { op: 'out'; seq: number; packet: Buffer; packetId?: number }
  /** A queued outbound message gets its packet id, before its first PUBLISH. */
  | { op: 'id'; seq: number; packetId: number }
  /** PUBREC (< 0x80) received for an outbound QoS 2 message: from now on resend PUBREL, never PUBLISH. */
  | { op: 'rel'; seq: number }
  /** An outbound message is over (PUBACK, PUBCOMP, failure reason, canceled before sending): forget it. */
  | { op: 'done'; seq: number }
  /**
   * An inbound PUBLISH kept before its acknowledgement: QoS 2 always, QoS 1 with `storeQoS1`.
   * `packet` is the raw PUBLISH as received (e.g. `Decoder.rawPacket()`), topic alias resolved
   * by the session if one was used.
   */
  | { op: 'in'; seq: number; packetId: number; packet: Buffer }
  /** The application acknowledged the inbound message `seq`: never hand it over again. */
  | { op: 'consumed'; seq: number }
  /** The inbound message `seq` no longer holds its packet id (PUBREL handled, or QoS 1). */
  | { op: 'released'; seq: number }
  /** Subscriptions added or replaced (keyed by `topicFilter`). */
  | { op: 'sub'; subscriptions: StoredSubscription[] }
  /** Subscriptions removed. */
  | { op: 'unsub'; topicFilters: string[] }
  /**
   * The server has no session (Session Present 0): every outbound message loses its packet id
   * (it will be sent again as a new message) and those in PUBREL state are over (the server
   * acknowledged receipt); every inbound message is released (its id no longer counts as
   * received); unconsumed inbound messages are still handed over; subscriptions stay.
   */
  | { op: 'reset' }

/** An outbound QoS 1/2 message not yet `done`. */
export interface OutboundEntry {
  /** Stable message id. */
  seq: number
  /** The encoded PUBLISH as committed in `out`. */
  packet: Buffer
  /** Its packet id (0: none yet, it is queued). */
  packetId: number
  /** True after `rel`: resend PUBREL with `packetId`, never the PUBLISH. */
  released: boolean
}

/** An inbound message kept until it is both `consumed` and `released`. */
export interface InboundEntry {
  /** Stable message id: the same on every hand-over, in this and any later process. */
  seq: number
  packetId: number
  /** The PUBLISH as committed in `in`. */
  packet: Buffer
  /** True after `consumed`: do not hand it over again. */
  consumed: boolean
  /** True after `released` (or `reset`): `packetId` no longer counts as received. */
  released: boolean
}

/** Something found wrong but survived while opening a store (reported, never thrown). */
export interface StoreWarning {
  /**
   * `torn-tail`: the last record was cut short or fails its checksum (a crash during a write):
   * truncated. `corrupt-record`: a damaged record before the end: skipped. `stale-lock`: the lock
   * of a process that no longer exists was taken over. `unknown-record`: a record of a newer
   * format version: skipped.
   */
  code: 'torn-tail' | 'corrupt-record' | 'stale-lock' | 'unknown-record'
  message: string
  /** The file concerned, when the store is file-based. */
  file?: string
  /** Byte offset in `file`. */
  offset?: number
}

/** The session state a store holds, as `open` returns it. */
export interface StoreSnapshot {
  /** The binding after `open` (the stored one, with `protocolLevel` updated if the store was empty). */
  meta: StoreMeta
  /** The next free seq: greater than every seq ever committed, also after compaction. */
  nextSeq: number
  /** Outbound messages not `done`, in seq order (= the order to resend them [MQTT-4.6.0-1]). */
  outbound: OutboundEntry[]
  /** Inbound messages not both consumed and released, in seq order. */
  inbound: InboundEntry[]
  /** Remembered subscriptions, in the order their filters were first added. */
  subscriptions: StoredSubscription[]
  /** What recovery repaired or skipped (also reported through the store's warning hook, if any). */
  warnings: StoreWarning[]
}

/**
 * A client session's persistent state.
 *
 * Lifecycle: `open` → any number of `commit` → `close`; a closed store may be opened again. At most
 * one `open` store per location at a time, also across processes (a second `open` rejects with
 * `StoreError` with reason `locked`). Not safe for use by two sessions at once.
 */
export interface ClientStore {
  /**
   * Load the state. Binds an empty store to `meta` (durably, before resolving). Rejects with
   * `StoreError` whose `reason` is `mismatch` if the store is bound to another `clientId`, or holds messages
   * encoded at another `protocolLevel`; `locked` if it is open elsewhere; `io` on a read failure.
   * Repairs what a crash leaves behind (a torn last record) and reports it in `warnings`.
   */
  open(meta: StoreMeta): Promise<StoreSnapshot>
  /**
   * Append records. Returns when they are durable per the store's policy: `undefined` when they
   * already are (MemoryStore), else a promise. May be called many times without awaiting: records
   * take effect in call order and the promises resolve in call order, and an implementation
   * should group the records of one event-loop turn into one write. The store may keep references
   * to `packet` buffers: the caller must not modify them afterwards. On failure the promise
   * rejects with `StoreError` (`io`), the records may or may not be durable, and every later
   * `commit` rejects (`failed`) until the store is closed and opened again. Before `open` or after
   * `close`: rejects with `StoreError` (`closed`).
   */
  commit(records: readonly StoreRecord[]): Awaitable<void>
  /** Wait for pending commits, then release the store (and its lock). Idempotent. */
  close(): Promise<void>
}

/** Why a store operation failed. */
export type StoreErrorCode = 'closed' | 'locked' | 'mismatch' | 'io' | 'failed' | 'invalid'

/**
 * A store failure. For a publish this means the message was **not accepted** (`outcome`
 * 'not-sent'): nothing of the failed commit's batch is sent.
 */
export class StoreError extends Error {
  override readonly name = 'StoreError'
  /** Stable error code shared with the client's error taxonomy. */
  readonly code = 'ERR_MQTT_STORE'
  /** What went wrong. */
  readonly reason: StoreErrorCode
  readonly outcome = 'not-sent' as const

  constructor(reason: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}
