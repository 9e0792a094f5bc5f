import type Keyv from 'keyv'
import type { AuthenticateFunction } from '../backend.js'

/** Options of a `KeyvBackend`. Give `keyv` or `url`. */
export interface KeyvBackendOptions {
  /**
   * A Keyv whose store is a `@keyv/redis` 5 adapter (`createKeyv(url)`); its `store.client` becomes
   * the command connection. The backend never subscribes or blocks on it and never closes it.
   */
  keyv?: Keyv
  /** A Redis URL (`redis://127.0.0.1:6379`): the backend creates (and closes) its own Keyv. */
  url?: string
  /** This process's node id (default `hostname:pid:random`); unique per process start. */
  nodeId?: string
  /** Root of every key (default `mq`). */
  prefix?: string
  /** Tenant of connections whose handle has none, and of broker-made messages (default `default`). */
  namespace?: string
  /** Most messages per offline queue (default 1000); the oldest QoS 0 message is evicted first. */
  maxQueuedMessages?: number
  /** Most retained messages per tenant (default 100,000). */
  maxRetainedMessages?: number
  /**
   * Most bytes per offline queue (default 16 MiB, counting each message encoded as stored: payload,
   * topic, properties and a few bytes), with the policy of `maxQueuedMessages`; cluster-wide.
   */
  maxQueuedBytes?: number
  /**
   * Most bytes of retained messages per tenant (default 256 MiB, encoded as stored): a message that
   * would take the store beyond it is refused (`stats.retainedRefused`); cluster-wide.
   */
  maxRetainedBytes?: number
  /** Per-command timeout in ms (default 5000): a command without answer fails the operation. */
  commandTimeout?: number
  /**
   * How long the start-up may take to reach Redis (default 10,000 ms). After it `ready()` and every
   * method reject with `BackendUnavailableError`; the backend must be made again.
   */
  connectTimeout?: number
  /** Heartbeat period in ms (default 2000); a node silent for 3 periods counts as dead. */
  heartbeatInterval?: number
  /** How long `setup` waits for a remote node to close a taken-over connection (default 3000 ms). */
  takeoverTimeout?: number
  /** Approximate bound of each node's message stream and of each shared-subscription stream (default 100,000 entries). */
  busMaxLength?: number
  /**
   * Whether `publish` of a QoS 0 message waits for Redis (default false). QoS 0 has nothing to
   * acknowledge and nothing durable, so by default it is routed without waiting: `publish`
   * answers undefined at once (the count is unknown) and the engine reads the connection's next
   * packet while the command is in flight (commands stay in order on the connection). Set true
   * for an exact count at QoS 0 (MQTT 5 metrics, tests), at the cost of a Redis round trip per
   * QoS 0 message of each publisher.
   */
  awaitQos0?: boolean
  /**
   * Called for authentication; default: allow everyone. A function carrying
   * `authenticationMethods` (e.g. `ScramAuthenticator.authenticate`) brings its methods along.
   */
  authenticate?: AuthenticateFunction
  /**
   * MQTT 5 Authentication Methods `authenticate` implements (see `Backend.authenticationMethods`).
   * Default: those the `authenticate` function carries, else none.
   */
  authenticationMethods?: readonly string[]
  /** Where log lines go (default: warnings and errors to `console.error`); control characters in them are escaped. */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void
}

/** Events of a `KeyvBackend`: Redis became unreachable (once per outage) or reachable again. */
export type KeyvBackendEvent = { type: 'unavailable'; error: unknown } | { type: 'available' }

/** Counters of a `KeyvBackend` (this node only). They only grow. */
export interface KeyvBackendStats {
  published: number
  delivered: number
  deliveryDropped: number
  queued: number
  queueDropped: number
  queueExpired: number
  retainedRefused: number
  takeovers: number
  /** Messages other nodes routed to this node (entries read from its message stream). */
  busReceived: number
  sessionsExpired: number
  /** Dead nodes whose sessions this node released. */
  nodesReaped: number
  /** QoS 0 publishes routed without waiting (`awaitQos0` false) whose Redis write failed. */
  publishFailed: number
  /** QoS 0 publishes that waited for Redis because it was behind (back-pressure on their publisher). */
  publishWaited: number
  /** Shared-subscription messages this node handed to a member. */
  sharedDelivered: number
  /** Shared-subscription messages passed on (no local member took them) / dropped after 5 hops. */
  sharedPassed: number
  sharedDropped: number
  /** Shared-subscription entries taken over from dead nodes' consumers. */
  sharedClaimed: number
  /** Times this node found it had been released by the cluster while alive (its connections closed). */
  nodeReleased: number
  /** Wills of sessions released by this node's reaper that it published (at once or when due). */
  willsPublished: number
}

/** Zeroed counters. */
export function newStats(): KeyvBackendStats {
  return {
    published: 0,
    delivered: 0,
    deliveryDropped: 0,
    queued: 0,
    queueDropped: 0,
    queueExpired: 0,
    retainedRefused: 0,
    takeovers: 0,
    busReceived: 0,
    sessionsExpired: 0,
    nodesReaped: 0,
    nodeReleased: 0,
    publishFailed: 0,
    publishWaited: 0,
    sharedDelivered: 0,
    sharedPassed: 0,
    sharedDropped: 0,
    sharedClaimed: 0,
    willsPublished: 0
  }
}
