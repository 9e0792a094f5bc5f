import type { ClientHandle } from './backend.js'
import type { MemorySession } from '../session/memory-session.js'
import type { StoredSubscription } from '../session/session.js'

/**
 * What `MemoryBackend` keeps per client identifier: the session, the connection that owns it (if
 * any) and scratch fields for the publish walk. Internal to the memory backend.
 *
 * States:
 * - connecting: `client` set, `live` false (between `setup` and `queueOffline`): messages are queued,
 *   whatever their QoS, and drained by `queueOffline` in order.
 * - live: `client` set, `live` true: messages go to `client.deliver`.
 * - away: `client` undefined (persistent session after `terminate`): QoS 1/2 messages are queued
 *   until `expiresAt`.
 */
export class SessionEntry {
  session: MemorySession
  client: ClientHandle | undefined = undefined
  live = false
  /** When an away session expires (ms since the epoch); Infinity while connected or never. */
  expiresAt = Number.POSITIVE_INFINITY
  /** Publish walk: the walk number that last collected this entry (see `MemoryBackend.publish`). */
  mark = 0
  /** Publish walk: this entry's position in the walk's scratch arrays. */
  slot = 0

  constructor(session: MemorySession) {
    this.session = session
  }
}

/** The value a `TopicTree` holds for an ordinary (non-shared) subscription of one client. */
export interface Subscriber {
  readonly shared: false
  readonly entry: SessionEntry
  readonly subscription: StoredSubscription
}

/** Makes the tree value of an ordinary subscription. */
export function subscriber(entry: SessionEntry, subscription: StoredSubscription): Subscriber {
  return { shared: false, entry, subscription }
}

/** The tree key of a shared group. U+0000 cannot occur in a client identifier [MQTT-1.5.4-2]. */
export function sharedGroupKey(group: string): string {
  return '\u0000' + group
}
