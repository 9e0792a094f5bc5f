import type { RedisArgument } from '@redis/client'
import { isMessageExpired } from '../../session/memory-session.js'
import type {
  Message,
  OutgoingRecord,
  QueuedMessage,
  Session,
  StoredSubscription,
  StoredWill
} from '../../session/session.js'
import { decodeOutgoing, decodeQueued, decodeWill, encodeOutgoing, encodeQueued, encodeWill, fromJson, toJson } from './codec.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { SessionSuffix } from './keys.js'
import type { NodeKeys, TenantKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { DONE, ENQUEUE, FENCED, REQUEUE, RESET, SAVE_OUT, TAKE, UNTAKE } from './scripts.js'
import { SHARE_TICKET } from './share-consumer.js'
import type { ShareTicket } from './share-consumer.js'

/**
 * The property (an enumerable symbol: the engine's copies of a message keep it) by which a message
 * taken from an offline queue carries its queue entry (the stored bytes), so that the outgoing
 * record the engine saves for it settles the entry in the same Redis step.
 */
export const QUEUE_TICKET: unique symbol = Symbol('mq.queueTicket')

type Ticketed = Message & { [QUEUE_TICKET]?: Buffer }

/** The queue entry a taken message came from, if any. */
function queueTicket(message: Message): Buffer | undefined {
  return (message as Ticketed)[QUEUE_TICKET]
}

/** The largest packet identifier [MQTT-2.2.1-3]. */
const MAX_PACKET_ID = 65_535

/** What a `KeyvSession` needs from its backend. */
export interface KeyvSessionContext {
  readonly link: RedisLink
  readonly nodeKeys: NodeKeys
  readonly nodeId: string
  /** Most messages per offline queue. */
  readonly maxQueuedMessages: number
  /** Most encoded bytes per offline queue. */
  readonly maxQueuedBytes: number
  /** Counters the session adds to. */
  readonly stats: { queued: number; queueDropped: number; queueExpired: number }
  /** Acknowledges a shared-subscription entry once its delivery completed (PUBACK / PUBREC). */
  readonly ackShare?: (ticket: ShareTicket) => void
  /**
   * A fenced write of `session` was refused: called (and awaited) before the write rejects with
   * `SessionTakenOverError`, so that the backend closes a connection taken over by another node as
   * taken over (0x8E), even when its node has not read the kick yet, before the engine closes it
   * for the failed write (0x83).
   */
  readonly fenced?: (session: KeyvSession) => Promise<void>
}

/**
 * A `Session` stored in Redis (see docs/redis-backend.md for the keys). Every method answers with a
 * promise except `nextPacketId`, which works from the packet ids in flight (loaded at setup and
 * kept in step with `saveOutgoing` / `deleteOutgoing`).
 *
 * Fencing: the session was handed to one connection by `setup`, which recorded (node, epoch) in the
 * session hash. Every write runs a Lua script that first checks that pair: once another connection
 * (on any node) took the session over, this object's writes reject with `SessionTakenOverError`.
 * Reads are not fenced. `enqueue` is not fenced either (anyone may add to a queue).
 *
 * Binary fields (payloads, correlation data) are stored as raw bytes and come back byte-exact.
 */
export class KeyvSession implements Session {
  readonly clientId: string
  expiryInterval: number
  /** The tenant the session belongs to. */
  readonly keys: TenantKeys
  /** The ownership epoch this object writes with. */
  readonly epoch: string
  readonly #ctx: KeyvSessionContext
  readonly #key: string
  readonly #used: Set<number>
  #lastPacketId = 0
  /**
   * Inflight state of a session that ends with its connection (expiry 0 at setup): nothing of it
   * must survive the connection, so it stays in this process (no Redis round trip per QoS 1/2
   * delivery). Undefined for sessions that outlive the connection.
   */
  readonly #local: { outgoing: Map<number, OutgoingRecord>; incoming: Set<number> } | undefined
  #fencedLocally = false
  /** Shared-subscription entries in flight to the client, by packet id (acknowledged at `deleteOutgoing`). */
  readonly #tickets = new Map<number, ShareTicket>()
  /** Shared-subscription entries the engine holds for the client (inflight window full), not yet sent. */
  readonly #held = new Set<ShareTicket>()
  /** Shared-subscription messages the engine queued in this session while it ends (clean session only). */
  #sharedLeftovers: QueuedMessage[] = []

  /**
   * @param usedPacketIds packet ids of the stored outgoing exchanges (read at setup).
   */
  constructor(
    ctx: KeyvSessionContext,
    keys: TenantKeys,
    clientId: string,
    epoch: string,
    expiryInterval: number,
    usedPacketIds: Iterable<number> = []
  ) {
    this.#ctx = ctx
    this.keys = keys
    this.clientId = clientId
    this.epoch = epoch
    this.expiryInterval = expiryInterval
    this.#key = keys.session(clientId)
    this.#used = new Set(usedPacketIds)
    this.#local = expiryInterval === 0 ? { outgoing: new Map(), incoming: new Set() } : undefined
    for (const id of this.#used) if (id > this.#lastPacketId) this.#lastPacketId = id
  }

  /** The Redis key of the session hash. */
  get key(): string {
    return this.#key
  }

  nextPacketId(): number {
    const used = this.#used
    if (used.size >= MAX_PACKET_ID) return 0
    let id = this.#lastPacketId
    do {
      id = id >= MAX_PACKET_ID ? 1 : id + 1
    } while (used.has(id))
    this.#lastPacketId = id
    return id
  }

  saveOutgoing(record: OutgoingRecord): Promise<void> | void {
    this.#used.add(record.packetId)
    // A shared-subscription message carries its stream entry: acknowledged when this exchange completes.
    const ticket = record.kind === 'publish' ? (record.message as { [SHARE_TICKET]?: ShareTicket })[SHARE_TICKET] : undefined
    if (ticket !== undefined) {
      this.#held.delete(ticket)
      this.#tickets.set(record.packetId, ticket)
    }
    if (this.#local !== undefined) {
      this.#checkLocal()
      // Map order is insertion order; a replaced record keeps its place.
      this.#local.outgoing.set(record.packetId, record)
      return
    }
    const taken = record.kind === 'publish' ? queueTicket(record.message) : undefined
    const args = [String(record.packetId), encodeOutgoing(record)]
    if (taken !== undefined) args.push(taken)
    return this.#script(SAVE_OUT, args).then(() => undefined)
  }

  getOutgoing(packetId: number): Promise<OutgoingRecord | undefined> | OutgoingRecord | undefined {
    if (this.#local !== undefined) return this.#local.outgoing.get(packetId)
    return this.#ctx.link
      .send<Buffer | null>(['HGET', this.#key + SessionSuffix.outgoing, String(packetId)])
      .then((bytes) => (bytes === null ? undefined : decodeOutgoing(bytes)))
  }

  deleteOutgoing(packetId: number): Promise<void> | void {
    this.#used.delete(packetId)
    const ticket = this.#tickets.get(packetId)
    if (ticket !== undefined) {
      this.#tickets.delete(packetId)
      this.#ctx.ackShare?.(ticket)
    }
    if (this.#local !== undefined) {
      this.#checkLocal()
      this.#local.outgoing.delete(packetId)
      return
    }
    const id = String(packetId)
    return this.#fenced(['HDEL', this.#key + SessionSuffix.outgoing, id], ['ZREM', this.#key + SessionSuffix.outgoingOrder, id]).then(() => undefined)
  }

  async listOutgoing(): Promise<OutgoingRecord[]> {
    if (this.#local !== undefined) return [...this.#local.outgoing.values()]
    const ids = await this.#ctx.link.sendText<string[]>(['ZRANGE', this.#key + SessionSuffix.outgoingOrder, '0', '-1'])
    if (ids.length === 0) return []
    const values = await this.#ctx.link.send<(Buffer | null)[]>(['HMGET', this.#key + SessionSuffix.outgoing, ...ids])
    const out: OutgoingRecord[] = []
    for (const bytes of values) if (bytes !== null) out.push(decodeOutgoing(bytes))
    return out
  }

  saveIncoming(packetId: number): Promise<void> | void {
    if (this.#local !== undefined) {
      this.#checkLocal()
      this.#local.incoming.add(packetId)
      return
    }
    return this.#fenced(['SADD', this.#key + SessionSuffix.incoming, String(packetId)]).then(() => undefined)
  }

  hasIncoming(packetId: number): Promise<boolean> | boolean {
    if (this.#local !== undefined) return this.#local.incoming.has(packetId)
    return this.#ctx.link.send<number>(['SISMEMBER', this.#key + SessionSuffix.incoming, String(packetId)]).then((n) => n === 1)
  }

  deleteIncoming(packetId: number): Promise<void> | void {
    if (this.#local !== undefined) {
      this.#checkLocal()
      this.#local.incoming.delete(packetId)
      return
    }
    return this.#fenced(['SREM', this.#key + SessionSuffix.incoming, String(packetId)]).then(() => undefined)
  }

  /**
   * This object lost the session to another connection: its later writes reject (for a session
   * whose inflight state is kept in memory, the fencing Redis does for the others).
   */
  fence(): void {
    this.#fencedLocally = true
  }

  #checkLocal(): void {
    if (this.#fencedLocally) throw new SessionTakenOverError('the session belongs to another connection')
  }

  /**
   * Stores the subscription in the session only. `KeyvBackend.subscribe` also indexes it for
   * routing; call the backend, not this, to subscribe a client.
   */
  async saveSubscription(subscription: StoredSubscription): Promise<boolean> {
    const added = await this.#fenced(['HSET', this.#key + SessionSuffix.subscriptions, subscription.topicFilter, toJson(subscription)])
    return added === 0
  }

  /** Removes the subscription from the session only (see `saveSubscription`). */
  async deleteSubscription(topicFilter: string): Promise<boolean> {
    return (await this.#fenced(['HDEL', this.#key + SessionSuffix.subscriptions, topicFilter])) === 1
  }

  async listSubscriptions(): Promise<StoredSubscription[]> {
    const flat = await this.#ctx.link.sendText<string[]>(['HGETALL', this.#key + SessionSuffix.subscriptions])
    const out: StoredSubscription[] = []
    for (let i = 1; i < flat.length; i += 2) out.push(fromJson<StoredSubscription>(flat[i] as string))
    return out
  }

  async saveWill(will: StoredWill): Promise<void> {
    await this.#fenced(['SET', this.#key + SessionSuffix.will, encodeWill(will)])
  }

  async getWill(): Promise<StoredWill | undefined> {
    const bytes = await this.#ctx.link.send<Buffer | null>(['GET', this.#key + SessionSuffix.will])
    return bytes === null ? undefined : decodeWill(bytes)
  }

  async clearWill(): Promise<void> {
    await this.#fenced(['DEL', this.#key + SessionSuffix.will])
  }

  async enqueue(item: QueuedMessage): Promise<boolean> {
    // Taken from this queue and not sent (the engine gives back what it could not send): back to the queue.
    const taken = queueTicket(item.message)
    if (taken !== undefined) {
      await this.#ctx.link.script(UNTAKE, [this.#key], [taken])
      return true
    }
    // A session that ends keeps its shared-subscription messages for the backend, which hands them
    // to another member of the group when it terminates the session (MQTT 5.0 4.8.2).
    if (this.expiryInterval === 0 && item.subscription.topicFilter.startsWith('$share/')) {
      this.#sharedLeftovers.push(item)
      return true
    }
    const result = await enqueueFor(this.#ctx, this.keys, this.clientId, item)
    return result.queued
  }

  async drainQueue(): Promise<QueuedMessage[]> {
    return await this.take(0, false)
  }

  /**
   * Takes up to `count` queued messages (0: all), oldest first, dropping expired ones (counted).
   * Fenced. With `keep` (default) the entries stay in the session's taken list until settled: by
   * the outgoing record the engine saves for one (`saveOutgoing`), by `done`, `requeue` or the
   * engine giving it back (`enqueue`); a later takeover (a crash of this node) puts the unsettled
   * ones back at the head of the queue, so a crash between taking and saving loses nothing.
   */
  async take(count: number, keep = true): Promise<QueuedMessage[]> {
    const items = await this.#script<Buffer[]>(TAKE, [String(count), keep ? '1' : '0'])
    const now = Date.now()
    const out: QueuedMessage[] = []
    const expired: Buffer[] = []
    for (const bytes of items) {
      const item = decodeQueued(bytes)
      if (isMessageExpired(item.message, now)) {
        this.#ctx.stats.queueExpired++
        expired.push(bytes)
        continue
      }
      if (keep) (item.message as Ticketed)[QUEUE_TICKET] = bytes
      out.push(item)
    }
    if (keep && expired.length > 0) await this.#script(DONE, expired)
    return out
  }

  /** Settles taken messages that need no outgoing record (delivered at QoS 0, or dropped). Fenced. */
  async done(items: QueuedMessage[]): Promise<void> {
    const tickets = items.map((item) => queueTicket(item.message)).filter((t): t is Buffer => t !== undefined)
    if (tickets.length > 0) await this.#script(DONE, tickets)
  }

  /** Puts taken messages back at the head of the queue, in order (their client went away). Fenced. */
  async requeue(items: QueuedMessage[]): Promise<void> {
    if (items.length === 0) return
    await this.#script(
      REQUEUE,
      items.map((item) => queueTicket(item.message) ?? encodeQueued(item))
    )
  }

  async reset(): Promise<void> {
    this.#used.clear()
    this.#lastPacketId = 0
    this.#local?.outgoing.clear()
    this.#local?.incoming.clear()
    const k = this.keys
    await this.#script(RESET, [k.prefix, this.clientId, this.#ctx.nodeKeys.routeLog, k.tenant])
  }

  /**
   * The backend handed a QoS 1/2 shared-subscription message to this session's client: unless the
   * engine already saved it as an outgoing record (then `deleteOutgoing` acknowledges it), the
   * engine holds it for later and the entry stays pending until then.
   */
  holdShareTicket(ticket: ShareTicket): void {
    for (const t of this.#tickets.values()) if (t === ticket) return
    this.#held.add(ticket)
  }

  /** Takes the shared-subscription messages `enqueue` kept for a session that ends. */
  takeSharedLeftovers(): QueuedMessage[] {
    const out = this.#sharedLeftovers
    this.#sharedLeftovers = []
    return out
  }

  /** Takes the shared-subscription entries delivered through this object and not yet acknowledged. */
  takeShareTickets(): ShareTicket[] {
    const out = [...this.#tickets.values(), ...this.#held]
    this.#tickets.clear()
    this.#held.clear()
    return out
  }

  /** Runs a fenced script with (node, epoch) prepended to `args`. */
  async #script<T = unknown>(source: string, args: RedisArgument[]): Promise<T> {
    try {
      return await this.#ctx.link.script<T>(source, [this.#key], [this.#ctx.nodeId, this.epoch, ...args])
    } catch (error) {
      if (error instanceof SessionTakenOverError && this.#ctx.fenced !== undefined) await this.#ctx.fenced(this).catch(() => undefined)
      throw error
    }
  }

  /** Runs commands after the fencing check; resolves with the last reply. */
  async #fenced(...commands: RedisArgument[][]): Promise<unknown> {
    const args: RedisArgument[] = []
    for (const command of commands) args.push(String(command.length), ...command)
    return await this.#script(FENCED, args)
  }
}

/** The outcome of `enqueueFor`. */
export interface EnqueueResult {
  queued: boolean
  /** The node that owns the session while it is online ('' when away). */
  owner: string
}

/**
 * Adds `item` to the offline queue of session `clientId` (any session, owned or not), with the
 * bounds and eviction policy of `KeyvSessionContext.maxQueuedMessages` / `maxQueuedBytes`, and wakes its owner node.
 * Expired messages are not queued. Counts into `ctx.stats`.
 */
export async function enqueueFor(
  ctx: KeyvSessionContext,
  keys: TenantKeys,
  clientId: string,
  item: QueuedMessage
): Promise<EnqueueResult> {
  const now = Date.now()
  if (isMessageExpired(item.message, now)) {
    ctx.stats.queueExpired++
    return { queued: false, owner: '' }
  }
  const [result, owner, evicted] = await ctx.link.script<[number, Buffer | string, number]>(
    ENQUEUE,
    [keys.session(clientId)],
    [
      encodeQueued(item),
      String(ctx.maxQueuedMessages),
      ctx.nodeId,
      ctx.nodeKeys.inboxPrefix,
      keys.tenant,
      clientId,
      String(now),
      String(ctx.maxQueuedBytes)
    ]
  )
  ctx.stats.queueDropped += (evicted ?? 0) + (result === 0 ? 1 : 0)
  if (result === 1 || result === 2) ctx.stats.queued++
  return { queued: result > 0, owner: owner.toString() }
}
