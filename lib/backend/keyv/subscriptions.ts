import type { ClientHandle, SubscribeResult } from '../backend.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import type { StoredSubscription } from '../../session/session.js'
import { toJson } from './codec.js'
import type { LocalRouting } from './local-routing.js'
import type { LocalEntry } from './local-state.js'
import type { NodeContext } from './node-context.js'
import type { RedisLink } from './redis-link.js'
import { SUBSCRIBE, UNSUBSCRIBE } from './scripts.js'

/**
 * Subscriptions as one node handles them: stored in the session and indexed per tenant in Redis
 * (SUBSCRIBE / UNSUBSCRIBE scripts, fenced), and routed to this node (`LocalRouting`) before the
 * SUBACK, so that a message published on any node after it reaches the client. Internal to
 * `KeyvBackend`.
 */
export class Subscriptions {
  readonly #node: NodeContext
  readonly #routing: LocalRouting

  constructor(node: NodeContext, routing: LocalRouting) {
    this.#node = node
    this.#routing = routing
  }

  /**
   * `Backend.queueOffline`: routes the session's stored subscriptions here before anything is
   * delivered (MQTT-3.1.2-4 / 4.1), then the connection goes live and its queue is drained.
   */
  async restore(client: ClientHandle): Promise<void> {
    await this.#node.use()
    const entry = this.#routing.owned(client)
    const routed: Promise<void>[] = []
    for (const subscription of await entry.session.listSubscriptions()) {
      const write = this.#routing.addRoute(entry, subscription)
      if (write !== undefined) routed.push(write)
    }
    if (routed.length > 0) await Promise.all(routed)
    entry.live = true
    await this.#routing.drain(entry)
  }

  /** `Backend.subscribe`: stored, indexed and routed; grants the requested QoS. */
  async subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    const link = await this.#node.use()
    return await this.#subscribe(link, this.#routing.owned(client), subscriptions)
  }

  /** Subscribes the session of a connection this node serves (a client's SUBSCRIBE, or an operator's). */
  async subscribeEntry(entry: LocalEntry, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    return await this.#subscribe(await this.#node.use(), entry, subscriptions)
  }

  async #subscribe(link: RedisLink, entry: LocalEntry, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    const node = this.#node
    const keys = entry.tenant.keys
    const clientId = entry.client.clientId
    return await Promise.all(
      subscriptions.map(async (subscription): Promise<SubscribeResult> => {
        await link.script(
          SUBSCRIBE,
          [entry.session.key],
          [node.nodeId, entry.session.epoch, subscription.topicFilter, toJson(subscription), keys.prefix, clientId, node.nodeKeys.routeLog, keys.tenant]
        )
        // The SUBACK waits until messages published on any node are routed here.
        await this.#routing.addRoute(entry, subscription)
        return subscription.qos
      })
    )
  }

  /** `Backend.unsubscribe`: 0x00, or 0x11 for a filter without subscription. */
  async unsubscribe(client: ClientHandle, topicFilters: string[]): Promise<number[]> {
    const link = await this.#node.use()
    return await this.#unsubscribe(link, this.#routing.owned(client), topicFilters)
  }

  /** Unsubscribes the session of a connection this node serves (a client's UNSUBSCRIBE, or an operator's). */
  async unsubscribeEntry(entry: LocalEntry, topicFilters: string[]): Promise<number[]> {
    return await this.#unsubscribe(await this.#node.use(), entry, topicFilters)
  }

  async #unsubscribe(link: RedisLink, entry: LocalEntry, topicFilters: string[]): Promise<number[]> {
    const node = this.#node
    const keys = entry.tenant.keys
    const clientId = entry.client.clientId
    return await Promise.all(
      topicFilters.map(async (filter) => {
        // The local route goes first: no delivery after the UNSUBACK [MQTT-3.10.4-2].
        if (entry.filters.delete(filter)) this.#routing.removeRoute(entry, filter)
        const n = await link.script<number>(
          UNSUBSCRIBE,
          [entry.session.key],
          [node.nodeId, entry.session.epoch, filter, keys.prefix, clientId, node.nodeKeys.routeLog, keys.tenant]
        )
        return n === 1 ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted
      })
    )
  }
}
