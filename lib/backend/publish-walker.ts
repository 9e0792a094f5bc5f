/**
 * The publish walk of `MemoryBackend`: one topic-tree match per message, the matches of one client
 * merged, then every client and shared group routed. Split out of memory-backend.ts; internal.
 */
import { mergeSubscriptions } from './merge.js'
import type { SessionEntry, Subscriber } from './memory-routes.js'
import type { MemberRouter, SharedGroup } from './shared-groups.js'
import type { TopicTree } from './topic-tree.js'
import type { Message, StoredSubscription } from '../session/session.js'

/** A tree value: one client's subscription, or a shared group. */
export type Route = Subscriber | SharedGroup

/**
 * Scratch arrays of one (possibly nested) publish walk, reused from message to message: slots
 * 0 … count-1 (groups: groupCount) are in use. The arrays are never truncated (that frees their
 * backing stores, allocated again by the next message); their slots are cleared after each message
 * so that no session stays referenced, and arrays grown beyond `KEEP_SLOTS` are released.
 */
interface Walk {
  entries: (SessionEntry | undefined)[]
  subscriptions: (StoredSubscription | undefined)[]
  groups: (SharedGroup | undefined)[]
  count: number
  groupCount: number
}

/** Above this many matches, a walk's arrays are released after the message rather than kept. */
const KEEP_SLOTS = 1024

/** Routes one client's (merged) subscription: deliver live, or queue. */
export type RouteTo = (entry: SessionEntry, message: Message, subscription: StoredSubscription) => void

/**
 * Walks the tree once per message and calls `routeTo` at most once per client, with that client's
 * matching subscriptions merged (`mergeSubscriptions`); shared groups route through `router`. On the
 * QoS 0 path to live clients it creates no promise, closure or per-subscriber object.
 */
export class PublishWalker {
  readonly #tree: TopicTree<Route>
  readonly #routeTo: RouteTo
  readonly #router: MemberRouter
  readonly #randomShared: boolean
  // Walk state: valid only during `#tree.match` (which never calls out of this class).
  readonly #walks: Walk[] = []
  #depth = 0
  #epoch = 0
  #walk: Walk | undefined = undefined
  #origin: string | undefined = undefined
  #matched = 0
  /** Bound once: the walk's callback must not be a new closure per message. */
  readonly #collect = (route: Route): void => this.#onMatch(route)

  constructor(tree: TopicTree<Route>, routeTo: RouteTo, router: MemberRouter, randomShared: boolean) {
    this.#tree = tree
    this.#routeTo = routeTo
    this.#router = router
    this.#randomShared = randomShared
  }

  /** Routes `message` to every matching subscription; returns the number matched (after No Local). */
  publish(message: Message): number {
    let walk = this.#walks[this.#depth]
    if (walk === undefined) {
      walk = { entries: [], subscriptions: [], groups: [], count: 0, groupCount: 0 }
      this.#walks[this.#depth] = walk
    }
    // A walk whose match threw (a callback error) left its slots filled: start clean.
    if (walk.count !== 0 || walk.groupCount !== 0) release(walk)
    // Collect: one tree walk; per client the first match is kept as is, later ones merged.
    this.#walk = walk
    this.#origin = message.origin
    this.#epoch++
    this.#matched = 0
    this.#tree.match(message.topic, this.#collect)
    const matched = this.#matched
    this.#walk = undefined
    // Route: deliveries may re-enter `publish` (a will), which then uses the next walk's arrays.
    this.#depth++
    try {
      const { entries, subscriptions, groups, count, groupCount } = walk
      const routeTo = this.#routeTo
      for (let i = 0; i < count; i++) {
        routeTo(entries[i] as SessionEntry, message, subscriptions[i] as StoredSubscription)
      }
      for (let i = 0; i < groupCount; i++) {
        const group = groups[i] as SharedGroup
        if (this.#randomShared) group.next = Math.floor(Math.random() * group.size)
        group.route(message, this.#router)
      }
    } finally {
      this.#depth--
      release(walk)
    }
    return matched
  }

  #onMatch(route: Route): void {
    const walk = this.#walk as Walk
    if (route.shared) {
      walk.groups[walk.groupCount++] = route
      this.#matched++
      return
    }
    const subscription = route.subscription
    const entry = route.entry
    // No Local: not to the publisher's own subscription [MQTT-3.8.3-3]; skipped before merging so
    // that an overlapping subscription without No Local still gets the message at its own QoS.
    if (subscription.noLocal === true && this.#origin !== undefined && this.#origin === entry.session.clientId) return
    this.#matched++
    if (entry.mark !== this.#epoch) {
      entry.mark = this.#epoch
      const slot = walk.count++
      entry.slot = slot
      walk.entries[slot] = entry
      walk.subscriptions[slot] = subscription
    } else {
      const slot = entry.slot
      walk.subscriptions[slot] = mergeSubscriptions(walk.subscriptions[slot] as StoredSubscription, subscription)
    }
  }
}

/** Clears a walk's slots for the next message (see `Walk`). */
function release(walk: Walk): void {
  if (walk.count > KEEP_SLOTS) {
    walk.entries = []
    walk.subscriptions = []
  } else {
    for (let i = 0; i < walk.count; i++) {
      walk.entries[i] = undefined
      walk.subscriptions[i] = undefined
    }
  }
  if (walk.groupCount > KEEP_SLOTS) walk.groups = []
  else for (let i = 0; i < walk.groupCount; i++) walk.groups[i] = undefined
  walk.count = 0
  walk.groupCount = 0
}
