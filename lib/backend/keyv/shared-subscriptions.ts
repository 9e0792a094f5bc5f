import type { Message, StoredSubscription } from '../../session/session.js'
import { decodeMessage, encodeMessage } from './codec.js'
import { LocalShareGroup } from './local-state.js'
import type { LocalEntry } from './local-state.js'
import type { NodeContext } from './node-context.js'
import type { RedisClientLike, RedisLink } from './redis-link.js'
import { SHARE_TICKET, ShareConsumer } from './share-consumer.js'
import type { ShareTicket } from './share-consumer.js'
import type { StreamEntry } from './stream-reader.js'

/**
 * The MQTT 5 shared subscriptions of one node: the groups with a live member here (by stream key),
 * and the consumer that reads their streams (each entry goes to one member cluster-wide). Internal
 * to `KeyvBackend`.
 */
export class SharedSubscriptions {
  readonly #node: NodeContext
  /** Shared subscriptions with a member on this node, by stream key. */
  readonly #groups = new Map<string, LocalShareGroup>()
  #consumer: ShareConsumer | undefined = undefined

  constructor(node: NodeContext) {
    this.#node = node
  }

  /** Starts reading the group streams on `client` (a connection of its own). */
  async start(link: RedisLink, client: RedisClientLike): Promise<void> {
    this.#consumer = new ShareConsumer(link, client, this.#node.nodeId, (entry) => this.#onEntry(entry))
    await this.#consumer.start()
  }

  /** Stops reading; pending entries of this node are claimed by the others once it left the registry. */
  async stop(): Promise<void> {
    await this.#consumer?.stop()
    this.#groups.clear()
  }

  /** `entry` joins the group of its shared `subscription` on this node. */
  join(entry: LocalEntry, subscription: StoredSubscription): void {
    const stream = entry.tenant.keys.shareStream(subscription.topicFilter)
    let group = this.#groups.get(stream)
    if (group === undefined) {
      group = new LocalShareGroup(subscription.topicFilter, stream)
      this.#groups.set(stream, group)
    }
    group.add(entry, subscription)
    entry.filters.add(subscription.topicFilter)
    this.#consumer?.add(stream)
  }

  /** `entry` leaves the group of the shared `filter`; this node stops reading a group left empty. */
  leave(entry: LocalEntry, filter: string): void {
    const stream = entry.tenant.keys.shareStream(filter)
    const group = this.#groups.get(stream)
    if (group !== undefined && group.remove(entry) && group.members.length === 0) {
      this.#groups.delete(stream)
      this.#consumer?.remove(stream)
    }
  }

  /** Acknowledges a stream entry whose delivery completed. */
  ack(ticket: ShareTicket): void {
    this.#consumer?.ack(ticket)
  }

  /**
   * The session was taken over (or ends): its unacknowledged shared-subscription deliveries stay in
   * its inflight records, which the new connection resends; their stream entries are done.
   */
  settle(entry: LocalEntry): void {
    entry.session.fence()
    for (const ticket of entry.session.takeShareTickets()) this.#consumer?.ack(ticket)
  }

  /**
   * Hands the shared-subscription messages of an ending session to the other members of their
   * groups: those the engine queued in it (never sent) and its QoS 1 deliveries never acknowledged
   * (outgoing records); QoS 2 deliveries that were started are not moved (MQTT 5.0 4.8.2).
   * Appended at the end of the group's stream; the session's own entries are then acknowledged.
   */
  async passOn(entry: LocalEntry, wasShared: boolean): Promise<void> {
    const session = entry.session
    const items = session.takeSharedLeftovers()
    if (!wasShared && items.length === 0) return
    const link = await this.#node.use()
    for (const record of await session.listOutgoing()) {
      if (record.kind !== 'publish' || record.message.qos !== 1) continue
      const subscription = record.subscription
      if (subscription !== undefined && subscription.topicFilter.startsWith('$share/')) items.push({ message: record.message, subscription })
    }
    const keys = entry.tenant.keys
    const busMax = this.#node.busMax
    await Promise.all(
      items.map((item) =>
        link.send(['XADD', keys.shareStream(item.subscription.topicFilter), 'NOMKSTREAM', 'MAXLEN', '~', busMax, '*', 'm', encodeMessage(item.message)])
      )
    )
  }

  /** Claims the pending entries of dead nodes (those not in `live`), when this node reads a group. */
  async claimDead(link: RedisLink, now: number): Promise<void> {
    const consumer = this.#consumer
    if (consumer === undefined || consumer.streams.size === 0) return
    const live = await link.sendText<string[]>(['ZRANGEBYSCORE', this.#node.nodeKeys.nodes, String(now - this.#node.deadAfterMs), '+inf'])
    this.#node.stats.sharedClaimed += await consumer.claimDead(new Set(live))
  }

  /**
   * An entry of a shared-subscription stream reached this node: offered to the group's live local
   * members in turn. The member that took it keeps the entry pending until its client acknowledged
   * (PUBACK / PUBREC, through the session's ticket), or it is acknowledged at once (QoS 0). When
   * no local member takes it, it is put back at the end of the stream for another node.
   */
  #onEntry(entry: StreamEntry): void {
    const consumer = this.#consumer
    if (consumer === undefined) return
    const stats = this.#node.stats
    const ticket: ShareTicket = { stream: entry.stream, id: entry.id }
    const group = this.#groups.get(entry.stream)
    const bytes = entry.fields.get('m')
    if (group !== undefined && bytes !== undefined) {
      const message = decodeMessage(bytes) as Message & { [SHARE_TICKET]?: ShareTicket }
      message[SHARE_TICKET] = ticket
      const taker = group.offer(message, this.#node.count)
      if (taker !== undefined) {
        stats.sharedDelivered++
        // QoS 0 is done once handed over; QoS 1/2 once the client acknowledged (or the entry is
        // held by the session until the engine sends it).
        if (Math.min(message.qos, taker.subscription.qos) === 0) consumer.ack(ticket)
        else taker.entry.session.holdShareTicket(ticket)
        return
      }
    }
    stats.sharedPassed++
    consumer.requeue(ticket, entry.fields).then(
      (kept) => {
        if (!kept) stats.sharedDropped++
      },
      () => undefined
    )
  }
}
