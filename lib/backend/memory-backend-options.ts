import type { AuthenticateFunction, ClientHandle } from './backend.js'
import type { RetainedStats } from './retained-store.js'
import type { SessionQueueStats } from '../session/memory-session.js'
import type { Message, StoredSubscription } from '../session/session.js'

/** Options of a `MemoryBackend`. All optional. */
export interface MemoryBackendOptions {
  /**
   * Most messages per offline queue (default 1000). When full: the oldest queued QoS 0 message is
   * evicted, else the new message is refused; both counted in `stats.queueDropped`.
   */
  maxQueuedMessages?: number
  /** Most bytes (payloads and topics) per offline queue (default 16 MiB), same policy as `maxQueuedMessages`. */
  maxQueuedBytes?: number
  /**
   * Most retained messages (default 100,000). Storing a message on a new topic beyond it is refused
   * and counted in `stats.retainedRefused`; replacing or deleting is always possible.
   */
  maxRetainedMessages?: number
  /**
   * Most bytes (payloads and topics) of all retained messages (default 256 MiB). A message that
   * would take the store beyond it is refused and counted in `stats.retainedRefused`.
   */
  maxRetainedBytes?: number
  /**
   * Whether QoS 0 messages are queued for persistent sessions whose client is away (default false:
   * only messages delivered at QoS 1 or 2 are kept, as the specification expects [MQTT-3.1.2-5]).
   */
  queueQoS0?: boolean
  /**
   * Called for authentication; default: allow everyone. A function carrying
   * `authenticationMethods` (e.g. `ScramAuthenticator.authenticate`) brings its methods along.
   */
  authenticate?: AuthenticateFunction
  /**
   * MQTT 5 Authentication Methods `authenticate` implements (see `Backend.authenticationMethods`).
   * Default: those the `authenticate` function carries, else none (a CONNECT naming a method is
   * refused with 0x8C).
   */
  authenticationMethods?: readonly string[]
  /**
   * Which member of a shared subscription group gets the next message (MQTT 5.0 4.8.2):
   * 'round-robin' (default) or 'random'. Either way members whose `deliver` answers 'dropped' are
   * skipped and away members only get it when no member is live.
   */
  sharedSubscriptionPolicy?: 'round-robin' | 'random'
  /**
   * MQTT 5 Response Information for clients that request it (see `Backend.responseInformation`),
   * e.g. `(client) => 'response/' + client.clientId`. Default: none.
   */
  responseInformation?: (client: ClientHandle) => string | undefined
  /** See `Backend.authorizePublish`; default: every publish is allowed. */
  authorizePublish?: (client: ClientHandle, message: Message) => boolean | number | Promise<boolean | number>
  /** See `Backend.authorizeSubscribe`; default: every subscription is allowed. */
  authorizeSubscribe?: (
    client: ClientHandle,
    subscription: StoredSubscription
  ) => boolean | number | Promise<boolean | number>
  /** How often (ms) away sessions are checked for expiry (default 10,000). */
  expiryCheckInterval?: number
  /** The clock, in ms since the epoch (default `Date.now`); tests pass a fake one. */
  now?: () => number
}

/** Counters of a `MemoryBackend`, for metrics and tests. They only grow. */
export interface MemoryBackendStats extends SessionQueueStats, RetainedStats {
  /** Messages routed by `publish`. */
  published: number
  /** `deliver` calls that answered 'sent' or 'queued'. */
  delivered: number
  /** `deliver` calls that answered 'dropped'. */
  deliveryDropped: number
  /** Connections closed because another one took their session over. */
  takeovers: number
  /** Away sessions removed because their Session Expiry Interval ran out. */
  sessionsExpired: number
  /** Shared-subscription messages of an ended session handed to another member of the group. */
  sharedRedelivered: number
}
