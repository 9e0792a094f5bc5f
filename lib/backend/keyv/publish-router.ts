import type { RedisArgument } from '@redis/client'
import type { ClientHandle, DeliveryResult } from '../backend.js'
import { mergeSubscriptions } from '../merge.js'
import { topicMatches } from '../../packet/topic.js'
import type { Message, StoredSubscription } from '../../session/session.js'
import { encodeMessage, fromJson } from './codec.js'
import { enqueueFor } from './keyv-session.js'
import type { KeyvSessionContext } from './keyv-session.js'
import type { NodeKeys, TenantKeys } from './keys.js'
import { deliverLive } from './local-state.js'
import type { LocalEntry, TenantState } from './local-state.js'
import type { KeyvBackendStats } from './options.js'
import type { RedisLink } from './redis-link.js'
import { PUBLISH_BATCH } from './routing-scripts.js'

/** What the publish path needs from its `KeyvBackend`. */
export interface RouterHost {
  readonly nodeId: string
  readonly stats: KeyvBackendStats
  /** `MAXLEN ~` of the node and shared-subscription streams. */
  readonly busMax: string
  /** How long a publish waits for the route log when the filter mirror was behind (ms). */
  readonly commandTimeout: number
  log(level: 'info' | 'warn' | 'error', message: string): void
  /** The connection this node serves for `clientId` in `tenant`, if any. */
  entry(tenant: string, clientId: string): LocalEntry | undefined
  /** Counts what a `deliver` answered. */
  readonly count: (result: DeliveryResult) => void
  sessionContext(): KeyvSessionContext
  /** A persistent session this node serves got queued messages: drain them. */
  wake(tenant: string, clientId: string): void
}

/**
 * The persistent sessions a `PUBLISH_BATCH` item's reply names (after the count and the stale
 * version: per filter, a flat list of client id, subscription JSON), each with its matching subscriptions merged; No Local
 * subscriptions of the publisher left out [MQTT-3.8.3-3]. Undefined when there are none.
 */
export function persistentSubscribers(reply: readonly unknown[], message: Message): Map<string, StoredSubscription> | undefined {
  let merged: Map<string, StoredSubscription> | undefined
  for (let r = 2; r < reply.length; r++) {
    const flat = reply[r] as Buffer[]
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const clientId = (flat[i] as Buffer).toString()
      const subscription = fromJson<StoredSubscription>(flat[i + 1] as Buffer)
      if (subscription.noLocal === true && message.origin === clientId) continue
      merged ??= new Map()
      const previous = merged.get(clientId)
      merged.set(clientId, previous === undefined ? subscription : mergeSubscriptions(previous, subscription))
    }
  }
  return merged
}

/**
 * The publish path of `KeyvBackend` (see docs/redis-backend.md, "Publish" and "Routed fan-out"):
 * live deliveries on this node, one `PUBLISH_BATCH` item per message (counts, the XADDs to the
 * interested nodes, the persistent subscribers), the shared-subscription group entries, the
 * offline queues, and the catch-up when the node's filter mirror was behind.
 */
export class PublishRouter {
  readonly #host: RouterHost
  /** KEYS and leading ARGV of `PUBLISH_BATCH` (the same arrays every time: one batch per turn). */
  readonly #keys: readonly string[]
  readonly #head: readonly string[]

  constructor(host: RouterHost, nodeKeys: NodeKeys) {
    this.#host = host
    this.#keys = [nodeKeys.nodes]
    this.#head = [nodeKeys.busPrefix, host.busMax, host.nodeId]
  }

  /** Routes a message (see docs/redis-backend.md, "Publish"); resolves once every write was answered. */
  async route(link: RedisLink, tenant: TenantState, client: ClientHandle | undefined, message: Message): Promise<number> {
    const keys = tenant.keys
    this.#host.stats.published++
    const encoded = encodeMessage(message)
    // Live deliveries on this node (in-process); the script sends the message to the other nodes
    // with live subscriptions that match.
    deliverLive(tenant, message, this.#host.count)
    // QoS 0 messages never take the durable path: no need to read the persistent subscribers.
    // The PUBLISH_BATCH item of every publish routed in this event-loop turn goes in one call, in order.
    // Its filters: the topic itself (exact) and the matching wildcard filters.
    const item: RedisArgument[] = [
      keys.tenant,
      keys.filterCounts,
      keys.prefix,
      encoded,
      message.qos === 0 ? '0' : '1',
      String(tenant.wildcardVersion),
      message.topic
    ]
    tenant.wildcards.match(message.topic, (_value, _key, filter) => item.push(filter))
    const routed = link.batched<[number, number, ...Buffer[][]]>(PUBLISH_BATCH, this.#keys, this.#head, item)
    // Shared subscriptions: one entry per group stream; its consumer group hands it to one member [MQTT-4.8.2-3].
    let shareWrites: Promise<(Buffer | null)[]> | undefined
    const groups: string[] = []
    if (tenant.shared.size > 0) {
      tenant.shared.match(message.topic, (_value, sharedFilter) => groups.push(sharedFilter))
      if (groups.length > 0) shareWrites = this.share(link, keys, groups, encoded)
    }
    // The reply: the count, the filter version when the mirror was behind (else 0), then the
    // persistent subscribers of each filter (QoS 1/2).
    let reply: [number, number, ...Buffer[][]]
    let shareReplies: (Buffer | null)[] | undefined
    if (shareWrites === undefined) reply = await routed
    else [reply, shareReplies] = await Promise.all([routed, shareWrites])
    let count = reply[0]
    // The publisher's own No Local subscriptions do not count [MQTT-3.8.3-3].
    if (client !== undefined) {
      const own = this.#host.entry(keys.tenant, client.clientId)
      if (own !== undefined && own.client === client) {
        for (const f of own.filters) {
          if (tenant.local.get(f, client.clientId)?.subscription.noLocal === true && topicMatches(f, message.topic)) count--
        }
      }
    }
    // A shared subscription counts once (whatever its number of members).
    if (shareReplies !== undefined) for (const id of shareReplies) if (id !== null) count++
    // Durable path: one queue entry per persistent session, its matching subscriptions merged.
    let merged = persistentSubscribers(reply, message)
    // The filter mirror was behind (a wildcard or shared filter new to this node): the live path
    // went to every node; the shared and durable paths are completed once the mirror caught up.
    if (reply[1] > 0) {
      const late = await this.#late(link, tenant, message, encoded, item.slice(6) as string[], groups, reply[1], merged)
      count += late.count
      merged = late.merged
    }
    if (merged === undefined) return count
    const ctx = this.#host.sessionContext()
    const enqueues: Promise<void>[] = []
    for (const [clientId, subscription] of merged) {
      if ((message.qos < subscription.qos ? message.qos : subscription.qos) === 0) continue
      enqueues.push(
        enqueueFor(ctx, keys, clientId, { message, subscription }).then(({ queued, owner }) => {
          if (queued && owner === this.#host.nodeId) this.#host.wake(keys.tenant, clientId)
        })
      )
    }
    await Promise.all(enqueues)
    return count
  }

  /** One entry per shared-subscription group stream; answers the entry ids (null: no such group). */
  share(link: RedisLink, keys: TenantKeys, groups: readonly string[], encoded: Buffer): Promise<(Buffer | null)[]> {
    return Promise.all(
      groups.map((f) => link.send<Buffer | null>(['XADD', keys.shareStream(f), 'NOMKSTREAM', 'MAXLEN', '~', this.#host.busMax, '*', 'm', encoded]))
    )
  }

  /**
   * The shared and durable paths for the wildcard and shared filters that match `message` and that
   * this node's mirror did not have when it routed it (`version`: the tenant's filter version
   * then): waits (bounded) for the route log to bring them, then writes to the new shared groups
   * and reads the new filters' counts and persistent subscribers (QoS 1/2); sessions already in
   * `merged` keep their one queue entry.
   */
  async #late(
    link: RedisLink,
    tenant: TenantState,
    message: Message,
    encoded: Buffer,
    known: readonly string[],
    knownGroups: readonly string[],
    version: number,
    merged: Map<string, StoredSubscription> | undefined
  ): Promise<{ count: number; merged: Map<string, StoredSubscription> | undefined }> {
    if (!(await tenant.reached(version, this.#host.commandTimeout))) {
      this.#host.log('warn', `the route log did not bring filter version ${version} in time: a subscriber may miss a message on ${message.topic}`)
    }
    const keys = tenant.keys
    let shared = 0
    const groups: string[] = []
    tenant.shared.match(message.topic, (_value, sharedFilter) => {
      if (!knownGroups.includes(sharedFilter)) groups.push(sharedFilter)
    })
    if (groups.length > 0) for (const id of await this.share(link, keys, groups, encoded)) if (id !== null) shared++
    const extra: string[] = []
    if (message.qos > 0) {
      tenant.wildcards.match(message.topic, (_value, _key, filter) => {
        if (!known.includes(filter)) extra.push(filter)
      })
    }
    if (extra.length === 0) return { count: shared, merged }
    const [counts, ...lists] = await Promise.all([
      link.sendText<(string | null)[]>(['HMGET', keys.filterCounts, ...extra]),
      ...extra.map((f) => link.send<Buffer[]>(['HGETALL', keys.persistentSubscribers(f)]))
    ])
    let count = shared
    for (const c of counts as (string | null)[]) if (c !== null) count += Number(c)
    const late = persistentSubscribers([0, 0, ...(lists as Buffer[][])], message)
    if (late === undefined) return { count, merged }
    const out = merged ?? new Map<string, StoredSubscription>()
    for (const [clientId, subscription] of late) if (!out.has(clientId)) out.set(clientId, subscription)
    return { count, merged: out }
  }
}
