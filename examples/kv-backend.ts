/**
 * A minimal Backend over a plain key-value store: the example docs/backends.md walks through.
 *
 * Everything a session is (its record, its subscriptions) and every retained message lives in a
 * `KeyValueStore` of four methods, so the same shape works over any store that can get, set,
 * delete and list keys by prefix. Only the live connections stay in this process. It passes the
 * backend conformance suite (spec/examples/kv-backend.spec.ts) without shared subscriptions.
 *
 * What it shows:
 * - the `Session` is the backend's object: here a thin view over a record in the store, fenced by
 *   an epoch so that a connection that lost its session cannot change it (`SessionTakenOverError`);
 * - subscriptions are kept the backend's own way (one key per subscription, not in the session
 *   record), and `Session.listSubscriptions()` reads them from there, which is what the engine
 *   needs for Retain Handling 1 and `maxSubscriptionsPerClient`;
 * - messages for a session that is away, or connected but not yet drained (`queueOffline`), go
 *   to its offline queue; everything else is delivered live through `ClientHandle.deliver`.
 *
 * It is deliberately simple: every publish scans every subscription, and it keeps no tenants apart
 * (it declares no `capabilities.tenants`; wrap it in a `TenantBackend` for several tenants).
 *
 * In a project of your own, import from 'mqtt-broker-framework' instead of '../lib/...'.
 */
import type {
  AuthenticationResult,
  Backend,
  ClientHandle,
  Credentials,
  SetupResult,
  SubscribeResult
} from '../lib/backend/backend.js'
import { SessionTakenOverError } from '../lib/backend/errors.js'
import { mergeSubscriptions } from '../lib/backend/merge.js'
import { ReasonCode } from '../lib/packet/reason-codes.js'
import { topicMatches } from '../lib/packet/topic.js'
import { isMessageExpired } from '../lib/session/memory-session.js'
import type { Message, OutgoingRecord, QueuedMessage, Session, StoredSubscription, StoredWill } from '../lib/session/session.js'

/** The store: a Map will do; so would an adapter over Redis, etcd or a database table. */
export interface KeyValueStore {
  get(key: string): unknown
  set(key: string, value: unknown): void
  delete(key: string): void
  /** Every key that starts with `prefix`. */
  keys(prefix: string): string[]
}

/** A `KeyValueStore` in a Map. */
export class MapStore implements KeyValueStore {
  readonly map = new Map<string, unknown>()
  get(key: string): unknown {
    return this.map.get(key)
  }
  set(key: string, value: unknown): void {
    this.map.set(key, value)
  }
  delete(key: string): void {
    this.map.delete(key)
  }
  keys(prefix: string): string[] {
    return [...this.map.keys()].filter((key) => key.startsWith(prefix))
  }
}

/** What the store keeps per session (key `s:<clientId>`). */
interface SessionRecord {
  /** Incremented by every `setup`: a session view with an older epoch is fenced off. */
  epoch: number
  expiryInterval: number
  /** When the client left (ms), for session expiry; undefined while connected. */
  awaySince: number | undefined
  lastPacketId: number
  outgoing: OutgoingRecord[]
  incoming: number[]
  will: StoredWill | undefined
  queue: QueuedMessage[]
}

export interface KvBackendOptions {
  store?: KeyValueStore
  /** Most messages an offline queue holds (default 1000): evicts the oldest QoS 0, else refuses. */
  maxQueuedMessages?: number
  /** Decides who may connect (default: everyone). */
  authenticate?: (client: ClientHandle, credentials: Credentials) => AuthenticationResult
}

const NEVER = 0xffff_ffff
const sessionKey = (clientId: string): string => `s:${clientId}`
/** `sub:["<clientId>",` + the filter: a prefix per client that no other client id shares. */
const subPrefix = (clientId: string): string => `sub:${JSON.stringify([clientId]).slice(0, -1)},`
const subKey = (clientId: string, filter: string): string => `${subPrefix(clientId)}${JSON.stringify(filter)}]`

/** The public fields of a message, with its own payload bytes (the engine's may be a view). */
function copyMessage(m: Message): Message {
  const copy: Message = { topic: m.topic, payload: Buffer.from(m.payload), qos: m.qos, retain: m.retain }
  if (m.properties !== undefined) copy.properties = m.properties
  if (m.receivedAt !== undefined) copy.receivedAt = m.receivedAt
  if (m.origin !== undefined) copy.origin = m.origin
  return copy
}

export class KvBackend implements Backend {
  readonly store: KeyValueStore
  readonly #maxQueued: number
  readonly #authenticate: KvBackendOptions['authenticate']
  /** The live connection of each client id (process-local: a cluster keeps this per process). */
  readonly #live = new Map<string, ClientHandle>()
  /** Live connections whose offline queue was delivered: they get messages live. */
  readonly #ready = new Set<ClientHandle>()

  constructor(options: KvBackendOptions = {}) {
    this.store = options.store ?? new MapStore()
    this.#maxQueued = options.maxQueuedMessages ?? 1000
    this.#authenticate = options.authenticate
  }

  authenticate(client: ClientHandle, credentials: Credentials): AuthenticationResult {
    return this.#authenticate === undefined ? { result: 'allow' } : this.#authenticate(client, credentials)
  }

  setup(client: ClientHandle, clean: boolean, expiryInterval: number): SetupResult {
    const id = client.clientId
    let record = this.record(id)
    const previous = this.#live.get(id)
    if (previous !== undefined && previous !== client) {
      // Takeover [MQTT-3.1.4-3]: detach first, so the old connection's terminate finds nothing.
      this.#live.delete(id)
      this.#ready.delete(previous)
      previous.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
    }
    const expired =
      record?.awaySince !== undefined && record.expiryInterval !== NEVER && record.awaySince + record.expiryInterval * 1000 <= Date.now()
    // Clean start, an expired session, or one that ended with the connection just taken over.
    if (record !== undefined && (clean || expired || record.expiryInterval === 0)) {
      this.#dropSession(id)
      record = undefined
    }
    const present = record !== undefined
    const epoch = (record?.epoch ?? 0) + 1
    record = record ?? { epoch, expiryInterval, awaySince: undefined, lastPacketId: 0, outgoing: [], incoming: [], will: undefined, queue: [] }
    record.epoch = epoch
    record.expiryInterval = expiryInterval
    record.awaySince = undefined
    this.store.set(sessionKey(id), record)
    this.#live.set(id, client)
    return { session: new KvSession(this, id, epoch), present }
  }

  queueOffline(client: ClientHandle): void {
    if (this.#live.get(client.clientId) !== client) return
    const record = this.record(client.clientId)
    const queue = record?.queue ?? []
    if (record !== undefined) record.queue = []
    this.#ready.add(client)
    const now = Date.now()
    for (const item of queue) if (!isMessageExpired(item.message, now)) client.deliver(item.message, item.subscription)
  }

  subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): SubscribeResult[] {
    this.#owner(client)
    return subscriptions.map((s) => {
      if (s.topicFilter.startsWith('$share/')) return ReasonCode.SharedSubscriptionsNotSupported
      // The obligation of Backend.subscribe: listSubscriptions() lists it from now on.
      this.store.set(subKey(client.clientId, s.topicFilter), s)
      return s.qos
    })
  }

  unsubscribe(client: ClientHandle, topicFilters: string[]): number[] {
    this.#owner(client)
    return topicFilters.map((filter) => {
      const key = subKey(client.clientId, filter)
      if (this.store.get(key) === undefined) return ReasonCode.NoSubscriptionExisted
      this.store.delete(key)
      return ReasonCode.Success
    })
  }

  storeRetained(_client: ClientHandle | undefined, message: Message): void {
    // An empty payload deletes [MQTT-3.3.1-10]; the store keeps its own copy, never the engine's object.
    if (message.payload.length === 0) this.store.delete(`r:${message.topic}`)
    else this.store.set(`r:${message.topic}`, { ...copyMessage(message), retain: true })
  }

  queueRetained(client: ClientHandle, subscription: StoredSubscription): void {
    if (subscription.topicFilter.startsWith('$share/')) return // no retained messages for shared subscriptions
    const now = Date.now()
    for (const key of this.store.keys('r:')) {
      const message = this.store.get(key) as Message
      if (topicMatches(subscription.topicFilter, message.topic) && !isMessageExpired(message, now)) client.deliver(message, subscription, true)
    }
  }

  publish(_client: ClientHandle | undefined, message: Message): number {
    // Every matching subscription, merged per client: one delivery per client per message.
    const matched = new Map<string, StoredSubscription>()
    let count = 0
    for (const key of this.store.keys('sub:')) {
      const [clientId] = JSON.parse(key.slice(4)) as [string, string]
      const s = this.store.get(key) as StoredSubscription
      if (!topicMatches(s.topicFilter, message.topic)) continue
      if (s.noLocal === true && message.origin === clientId) continue // No Local [MQTT-3.8.3-3]: not counted
      count++
      const before = matched.get(clientId)
      matched.set(clientId, before === undefined ? s : mergeSubscriptions(before, s))
    }
    for (const [clientId, subscription] of matched) {
      const live = this.#live.get(clientId)
      if (live !== undefined && this.#ready.has(live)) live.deliver(message, subscription)
      else this.#queueFor(clientId, live !== undefined, message, subscription)
    }
    return count
  }

  terminate(client: ClientHandle): void {
    // Not the owner any more (taken over): nothing to end.
    if (this.#live.get(client.clientId) !== client) return
    this.#live.delete(client.clientId)
    this.#ready.delete(client)
    const record = this.record(client.clientId)
    if (record === undefined) return
    if (record.expiryInterval === 0) this.#dropSession(client.clientId)
    else record.awaySince = Date.now()
  }

  close(): void {
    this.#live.clear()
    this.#ready.clear()
  }

  /** The record of a session, if one is stored. */
  record(clientId: string): SessionRecord | undefined {
    return this.store.get(sessionKey(clientId)) as SessionRecord | undefined
  }

  /** The subscriptions of a session, from their own keys. */
  subscriptionsOf(clientId: string): StoredSubscription[] {
    return this.store.keys(subPrefix(clientId)).map((key) => this.store.get(key) as StoredSubscription)
  }

  /**
   * Queue into a session's offline queue (the engine's leftovers, and messages for a session that
   * is away or not yet drained). QoS 0 deliveries are not kept for an away session.
   */
  enqueue(record: SessionRecord, item: QueuedMessage, connected: boolean): boolean {
    if (isMessageExpired(item.message, Date.now())) return false
    const deliveredQoS = Math.min(item.message.qos, item.subscription.qos)
    if (!connected && deliveredQoS === 0) return false
    const queue = record.queue
    if (queue.length >= this.#maxQueued) {
      const victim = queue.findIndex((q) => Math.min(q.message.qos, q.subscription.qos) === 0)
      if (victim < 0) return false // full of QoS 1/2: refuse the new one
      queue.splice(victim, 1)
    }
    queue.push({ message: copyMessage(item.message), subscription: item.subscription })
    return true
  }

  #queueFor(clientId: string, connected: boolean, message: Message, subscription: StoredSubscription): void {
    const record = this.record(clientId)
    // Only persistent sessions keep messages while away.
    if (record === undefined || (!connected && record.expiryInterval === 0)) return
    this.enqueue(record, { message, subscription }, connected)
  }

  #owner(client: ClientHandle): void {
    if (this.#live.get(client.clientId) !== client) throw new SessionTakenOverError(`the session of ${client.clientId} belongs to another connection`)
  }

  #dropSession(clientId: string): void {
    this.store.delete(sessionKey(clientId))
    for (const key of this.store.keys(subPrefix(clientId))) this.store.delete(key)
  }
}

/** The `Session` the engine works on: a view over the session's record, fenced by its epoch. */
class KvSession implements Session {
  readonly #backend: KvBackend
  readonly clientId: string
  readonly #epoch: number

  constructor(backend: KvBackend, clientId: string, epoch: number) {
    this.#backend = backend
    this.clientId = clientId
    this.#epoch = epoch
  }

  /** The record, if this view still owns it; else `SessionTakenOverError` (fencing). */
  #record(): SessionRecord {
    const record = this.#backend.record(this.clientId)
    if (record === undefined || record.epoch !== this.#epoch) throw new SessionTakenOverError(`the session of ${this.clientId} belongs to another connection`)
    return record
  }

  get expiryInterval(): number {
    return this.#backend.record(this.clientId)?.expiryInterval ?? 0
  }

  set expiryInterval(value: number) {
    this.#record().expiryInterval = value
  }

  nextPacketId(): number {
    const record = this.#record()
    const used = new Set(record.outgoing.map((r) => r.packetId))
    if (used.size >= 65_535) return 0
    let id = record.lastPacketId
    do id = id >= 65_535 ? 1 : id + 1
    while (used.has(id))
    record.lastPacketId = id
    return id
  }

  saveOutgoing(record: OutgoingRecord): void {
    const outgoing = this.#record().outgoing
    const kept: OutgoingRecord = record.kind === 'publish' ? { ...record, message: copyMessage(record.message) } : record
    const at = outgoing.findIndex((r) => r.packetId === record.packetId)
    // Replacing (PUBLISH -> PUBREL) keeps the exchange's place: resent oldest first [MQTT-4.4.0-1].
    if (at >= 0) outgoing[at] = kept
    else outgoing.push(kept)
  }

  getOutgoing(packetId: number): OutgoingRecord | undefined {
    return this.#record().outgoing.find((r) => r.packetId === packetId)
  }

  deleteOutgoing(packetId: number): void {
    const record = this.#record()
    record.outgoing = record.outgoing.filter((r) => r.packetId !== packetId)
  }

  listOutgoing(): OutgoingRecord[] {
    return [...this.#record().outgoing]
  }

  saveIncoming(packetId: number): void {
    const record = this.#record()
    if (!record.incoming.includes(packetId)) record.incoming.push(packetId)
  }

  hasIncoming(packetId: number): boolean {
    return this.#record().incoming.includes(packetId)
  }

  deleteIncoming(packetId: number): void {
    const record = this.#record()
    record.incoming = record.incoming.filter((id) => id !== packetId)
  }

  listSubscriptions(): StoredSubscription[] {
    return this.#backend.subscriptionsOf(this.clientId)
  }

  saveWill(will: StoredWill): void {
    this.#record().will = will
  }

  clearWill(): void {
    this.#record().will = undefined
  }

  enqueue(item: QueuedMessage): boolean {
    // The engine queues what a closing connection never sent: kept whatever its QoS.
    return this.#backend.enqueue(this.#record(), item, true)
  }
}
