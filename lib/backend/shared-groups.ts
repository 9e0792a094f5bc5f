import type { DeliveryResult } from './backend.js'
import type { SessionEntry } from './memory-routes.js'
import type { Message, StoredSubscription } from '../session/session.js'

/** How a shared group reaches its members; implemented by `MemoryBackend`. */
export interface MemberRouter {
  /**
   * Deliver to the member's live connection. Returns undefined when the member has no live
   * connection (connecting or away), else what `ClientHandle.deliver` answered.
   */
  deliverLive(entry: SessionEntry, message: Message, subscription: StoredSubscription): DeliveryResult | undefined
  /** Queue for a member without a live connection. Returns false when not queued. */
  enqueue(entry: SessionEntry, message: Message, subscription: StoredSubscription): boolean
}

/**
 * One MQTT 5 shared subscription `$share/{name}/{filter}`: the sessions subscribed to it (members)
 * and a round-robin cursor. Each message matching `filter` goes to one member [MQTT-4.8.2-3].
 * Internal to the memory backend, stored in its topic tree under the inner filter.
 */
export class SharedGroup {
  readonly shared = true
  readonly name: string
  readonly filter: string
  /** Members in join order, as parallel arrays. */
  readonly entries: SessionEntry[] = []
  readonly subscriptions: StoredSubscription[] = []
  /** The member the next message is offered to first. */
  next = 0

  constructor(name: string, filter: string) {
    this.name = name
    this.filter = filter
  }

  /** Number of member sessions. */
  get size(): number {
    return this.entries.length
  }

  /** Adds a member or replaces its subscription (a repeated SUBSCRIBE). */
  add(entry: SessionEntry, subscription: StoredSubscription): void {
    const at = this.entries.indexOf(entry)
    if (at >= 0) {
      this.subscriptions[at] = subscription
      return
    }
    this.entries.push(entry)
    this.subscriptions.push(subscription)
  }

  /** Removes a member. Returns true if it was one. */
  remove(entry: SessionEntry): boolean {
    const at = this.entries.indexOf(entry)
    if (at < 0) return false
    this.entries.splice(at, 1)
    this.subscriptions.splice(at, 1)
    if (this.next > at) this.next--
    if (this.next >= this.entries.length) this.next = 0
    return true
  }

  /**
   * Route one message to one member: the live members are offered the message in round-robin
   * order from `next`, skipping those whose `deliver` answers 'dropped'; when no live member took
   * it, it is queued for one of the others (also round robin, subject to the queueing rules).
   * Returns true if a member took it (sent, queued by the engine, or queued in a session).
   */
  route(message: Message, router: MemberRouter): boolean {
    const n = this.entries.length
    if (n === 0) return false
    const start = this.next < n ? this.next : 0
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      // A delivery may close a member and change the arrays: re-check the bounds.
      const entry = this.entries[i]
      const subscription = this.subscriptions[i]
      if (entry === undefined || subscription === undefined) continue
      const result = router.deliverLive(entry, message, subscription)
      if (result !== undefined && result !== 'dropped') {
        this.next = (i + 1) % n
        return true
      }
    }
    // No live member took it: keep it for a member that is away or still connecting.
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      const entry = this.entries[i]
      const subscription = this.subscriptions[i]
      if (entry === undefined || subscription === undefined) continue
      if (router.enqueue(entry, message, subscription)) {
        this.next = (i + 1) % n
        return true
      }
    }
    return false
  }
}
