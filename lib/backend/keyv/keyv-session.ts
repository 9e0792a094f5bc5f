import type { RedisArgument } from '@redis/client'
import { isMessageExpired } from '../../session/memory-session.js'
import type {
  OutgoingRecord,
  QueuedMessage,
  Session,
  StoredSubscription,
  StoredWill
} from '../../session/session.js'
import { decodeOutgoing, decodeQueued, decodeWill, encodeOutgoing, encodeQueued, encodeWill, fromJson, toJson } from './codec.js'
import { SessionSuffix } from './keys.js'
import type { NodeKeys, TenantKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { ENQUEUE, FENCED, REQUEUE, RESET, SAVE_OUT, TAKE } from './scripts.js'

/** The largest packet identifier [MQTT-2.2.1-3]. */
const MAX_PACKET_ID = 65_535

/** What a `KeyvSession` needs from its backend. */
export interface KeyvSessionContext {
  readonly link: RedisLink
  readonly nodeKeys: NodeKeys
  readonly nodeId: string
  /** Most messages per offline queue. */
  readonly maxQueuedMessages: number
  /** Counters the session adds to. */
  readonly stats: { queued: number; queueDropped: number; queueExpired: number }
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

  async saveOutgoing(record: OutgoingRecord): Promise<void> {
    this.#used.add(record.packetId)
    await this.#script(SAVE_OUT, [String(record.packetId), encodeOutgoing(record)])
  }

  async getOutgoing(packetId: number): Promise<OutgoingRecord | undefined> {
    const bytes = await this.#ctx.link.send<Buffer | null>(['HGET', this.#key + SessionSuffix.outgoing, String(packetId)])
    return bytes === null ? undefined : decodeOutgoing(bytes)
  }

  async deleteOutgoing(packetId: number): Promise<void> {
    this.#used.delete(packetId)
    const id = String(packetId)
    await this.#fenced(['HDEL', this.#key + SessionSuffix.outgoing, id], ['ZREM', this.#key + SessionSuffix.outgoingOrder, id])
  }

  async listOutgoing(): Promise<OutgoingRecord[]> {
    const ids = await this.#ctx.link.sendText<string[]>(['ZRANGE', this.#key + SessionSuffix.outgoingOrder, '0', '-1'])
    if (ids.length === 0) return []
    const values = await this.#ctx.link.send<(Buffer | null)[]>(['HMGET', this.#key + SessionSuffix.outgoing, ...ids])
    const out: OutgoingRecord[] = []
    for (const bytes of values) if (bytes !== null) out.push(decodeOutgoing(bytes))
    return out
  }

  async saveIncoming(packetId: number): Promise<void> {
    await this.#fenced(['SADD', this.#key + SessionSuffix.incoming, String(packetId)])
  }

  async hasIncoming(packetId: number): Promise<boolean> {
    return (await this.#ctx.link.send<number>(['SISMEMBER', this.#key + SessionSuffix.incoming, String(packetId)])) === 1
  }

  async deleteIncoming(packetId: number): Promise<void> {
    await this.#fenced(['SREM', this.#key + SessionSuffix.incoming, String(packetId)])
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
    const result = await enqueueFor(this.#ctx, this.keys, this.clientId, item)
    return result.queued
  }

  async drainQueue(): Promise<QueuedMessage[]> {
    return await this.take(0)
  }

  /**
   * Takes up to `count` queued messages (0: all), oldest first, dropping expired ones (counted).
   * Fenced.
   */
  async take(count: number): Promise<QueuedMessage[]> {
    const items = await this.#script<Buffer[]>(TAKE, [String(count)])
    const now = Date.now()
    const out: QueuedMessage[] = []
    for (const bytes of items) {
      const item = decodeQueued(bytes)
      if (isMessageExpired(item.message, now)) this.#ctx.stats.queueExpired++
      else out.push(item)
    }
    return out
  }

  /** Puts taken messages back at the head of the queue, in order (their client went away). Fenced. */
  async requeue(items: QueuedMessage[]): Promise<void> {
    if (items.length === 0) return
    await this.#script(REQUEUE, items.map(encodeQueued))
  }

  async reset(): Promise<void> {
    this.#used.clear()
    this.#lastPacketId = 0
    const k = this.keys
    await this.#script(RESET, [k.prefix, this.clientId, this.#ctx.nodeKeys.routeLog, k.tenant])
  }

  /** Runs a fenced script with (node, epoch) prepended to `args`. */
  async #script<T = unknown>(source: string, args: RedisArgument[]): Promise<T> {
    return await this.#ctx.link.script<T>(source, [this.#key], [this.#ctx.nodeId, this.epoch, ...args])
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
 * bound and eviction policy of `KeyvSessionContext.maxQueuedMessages`, and wakes its owner node.
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
  const [result, owner] = await ctx.link.script<[number, Buffer | string]>(
    ENQUEUE,
    [keys.session(clientId)],
    [encodeQueued(item), String(ctx.maxQueuedMessages), ctx.nodeId, ctx.nodeKeys.inboxPrefix, keys.tenant, clientId, String(now)]
  )
  if (result === 0 || result === 2) ctx.stats.queueDropped++
  if (result === 1 || result === 2) ctx.stats.queued++
  return { queued: result > 0, owner: owner.toString() }
}
