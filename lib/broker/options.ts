import { getHeapStatistics } from 'node:v8'
import type { TenantResolver } from '../tenancy/resolvers.js'
import type { Backend } from '../backend/backend.js'
import type { Logger } from './logger.js'
import { resolveClock } from './clock.js'
import type { Clock } from './clock.js'

/**
 * Options of `new Broker(options)`. Everything but `backend` is optional; the defaults are safe for
 * an embedded broker on loopback.
 */
export interface BrokerOptions {
  /** Where every decision goes: authentication, sessions, routing, retained, offline queues. */
  backend: Backend
  /**
   * Largest packet accepted from a client, in bytes (fixed header included). Larger packets close the
   * connection (MQTT 5: DISCONNECT 0x95), checked from the fixed header before any body byte is
   * kept. MQTT 5 clients are told in CONNACK. Default 4 MiB (4,194,304); at most 268,435,460.
   */
  maximumPacketSize?: number
  /**
   * Largest CONNECT accepted, in bytes (fixed header included), and the most an unauthenticated
   * connection can make the broker hold: a larger one closes the connection from its fixed header
   * (MQTT 5: CONNACK 0x95). Never more than `maximumPacketSize`. Default 65,536.
   */
  maxConnectPacketSize?: number
  /** Milliseconds a new connection may take to send CONNECT before it is closed. Default 10,000. */
  connectTimeout?: number
  /**
   * Largest keepalive accepted, in seconds (default 65,535; 0: none). MQTT 5 clients that ask for
   * more (or for 0) are told this value as Server Keep Alive; 3.1/3.1.1 clients asking for more are
   * refused with CONNACK return code 2, as they cannot be told, and so are those asking for 0 unless
   * the maximum is 65,535 (then they are held to it silently).
   */
  maxKeepalive?: number
  /** MQTT 5: the keepalive imposed on every client (CONNACK Server Keep Alive). Default: the client's. */
  serverKeepAlive?: number
  /** How many unacknowledged QoS 1/2 PUBLISH a client may send us (MQTT 5 Receive Maximum). Default 65,535. */
  receiveMaximum?: number
  /**
   * Outbound QoS 1/2 window per client: PUBLISH packets sent and not yet acknowledged. MQTT 5: the
   * smaller of this and the client's Receive Maximum. Default 500.
   */
  inflightWindow?: number
  /**
   * Messages kept per client beyond the inflight window, in order (default 10,000). When full, the
   * oldest QoS 0 message is dropped; with none, the client is disconnected as a slow consumer.
   */
  maxOutgoingQueue?: number
  /**
   * Bytes (payloads and topics) of the messages kept per client beyond the inflight window (default
   * 64 MiB). When full, like `maxOutgoingQueue`: the oldest QoS 0 message goes, else the client is
   * disconnected as a slow consumer (MQTT 5: 0x97).
   */
  maxOutgoingQueueBytes?: number
  /**
   * The output high-water mark: bytes of unsent output a connection may hold (default 8 MiB). Beyond
   * it QoS 0 deliveries to it are dropped (counted in `stats.outputDrops`), QoS 1/2 deliveries wait in
   * its bounded queue, and its own input is not read until its output drains.
   */
  maxBufferedBytes?: number
  /**
   * Milliseconds a publisher is paused at most because a receiver's socket is full (default 1,000;
   * 0: never). A receiver whose output has not drained for longer pauses nobody: its QoS 0
   * deliveries are dropped and its QoS 1/2 deliveries queued, so healthy receivers keep their rate.
   */
  maxPublisherPause?: number
  /**
   * Milliseconds a connection's output may stay backed up without draining before it is
   * disconnected as a slow consumer (MQTT 5: DISCONNECT 0x97). Default 15,000 (EMQX `send_timeout`).
   */
  sendTimeout?: number
  /** Highest QoS the broker grants and accepts (MQTT 5 Maximum QoS). Default 2. */
  maximumQoS?: 0 | 1 | 2
  /** Whether retained messages are supported (default true). */
  retainAvailable?: boolean
  /** Whether `+`/`#` filters are accepted (default true). */
  wildcardSubscriptionAvailable?: boolean
  /** MQTT 5: whether subscription identifiers are supported (default true). */
  subscriptionIdentifiersAvailable?: boolean
  /** MQTT 5: whether `$share/` subscriptions are supported (default true). */
  sharedSubscriptionAvailable?: boolean
  /**
   * MQTT 5 Topic Alias Maximum told to clients: the aliases a client may use in its PUBLISH packets
   * (default 0: a PUBLISH with an alias is DISCONNECT 0x94). Aliases towards a client follow the
   * client's own Topic Alias Maximum, per connection, least recently used replaced first.
   */
  topicAliasMaximum?: number
  /**
   * MQTT 5: the longest Session Expiry Interval granted, in seconds (default: none, 0xFFFFFFFF).
   * A client asking for more gets this value, told in CONNACK (Session Expiry Interval).
   */
  maxSessionExpiryInterval?: number
  /**
   * MQTT 5: refuse a PUBLISH whose Payload Format Indicator says UTF-8 but whose payload is not
   * valid UTF-8, with reason code 0x99 (PUBACK/PUBREC for QoS 1/2, DISCONNECT for QoS 0). Default false.
   */
  validatePayloadFormat?: boolean
  /**
   * Refuse a CONNECT whose client identifier or user name holds a control character (U+0001 to
   * U+001F, U+007F to U+009F), which the specifications say should not be sent and allow a server
   * to refuse (3.1.1 section 1.5.3, 5.0 section 1.5.4): client id with CONNACK 0x85 (3.1/3.1.1:
   * return code 2, Identifier rejected), user name with 0x86 (return code 4, Bad user name or
   * password). Default true. Log lines escape control characters either way.
   */
  refuseControlCharacters?: boolean
  /**
   * Multi-tenancy: finds each connection's tenant at CONNECT, before authentication (see
   * `lib/tenancy`: `byListener`, `byUsernameDomain`, `byClientIdPrefix`, `byFunction`). Default:
   * none, every client is in the default tenant. Pair it with a backend that separates tenants
   * (`TenantBackend`, or `KeyvBackend`, which keys its data by `client.tenant`).
   */
  tenantResolver?: TenantResolver
  /**
   * Seconds between two publications of the `$SYS` topics (default 10; 0: none). Each tenant gets
   * its own values (clients, traffic) under the same topics; see `docs/broker.md`.
   */
  sysInterval?: number
  /** Where the `$SYS` topics go (default `$SYS/broker`); must start with `$SYS/`. */
  sysTopicPrefix?: string
  /**
   * Longest topic name or filter accepted, in characters (default 65,535: the protocol's). Longer:
   * PUBLISH closes with 0x90 Topic Name invalid, a SUBSCRIBE entry gets 0x8F (3.1.1: 0x80).
   */
  maxTopicLength?: number
  /** Most levels of a topic name or filter (default 128, as EMQX; Mosquitto 200). Answered as `maxTopicLength`. */
  maxTopicLevels?: number
  /**
   * Most subscriptions one session may hold (default 0: no limit). SUBSCRIBE entries adding a filter
   * beyond it get 0x97 Quota exceeded (3.1.1: 0x80). When set, each SUBSCRIBE lists the session's
   * subscriptions first.
   */
  maxSubscriptionsPerClient?: number
  /** Most open connections of the broker (default 0: no limit). Beyond: CONNACK 0x97 (3.1.1: 3). */
  maxConnections?: number
  /** Most open connections per listener (default 0: no limit). Beyond: CONNACK 0x97 (3.1.1: 3). */
  maxConnectionsPerListener?: number
  /** Most open connections per source IP address (default 0: no limit). Beyond: CONNACK 0x97 (3.1.1: 3). */
  maxConnectionsPerAddress?: number
  /**
   * New connections per second accepted from one source IP address, with bursts of as many (default
   * 0: no limit). Beyond: CONNACK 0x9F Connection rate exceeded (3.1.1: 3).
   */
  maxConnectRatePerAddress?: number
  /**
   * Most open connections per tenant (default 0: no limit; the default tenant counts as one).
   * Checked at CONNECT once the tenant is known. Beyond: CONNACK 0x97 (3.1.1: 3).
   */
  maxConnectionsPerTenant?: number
  /**
   * Flapping detection (default 0: off): a client id (per tenant) that connects (authenticated)
   * more than this many times within `flappingWindow` is banned for `flappingBanTime`: its CONNECTs
   * get CONNACK 0x8A Banned (3.1.1: 5 Not authorized). EMQX's `flapping_detect.max_count`.
   */
  flappingMaxCount?: number
  /** Flapping detection: the window in ms (default 60,000). EMQX's `flapping_detect.window_time`. */
  flappingWindow?: number
  /** Flapping detection: how long a ban lasts, in ms (default 300,000). EMQX's `flapping_detect.ban_time`. */
  flappingBanTime?: number
  /**
   * MQTT 5: most User Properties in one packet (default 128). More closes the connection with 0x97
   * (CONNECT: CONNACK 0x97).
   */
  maxUserProperties?: number
  /**
   * Seconds a 3.1/3.1.1 persistent session (Clean Session 0) is kept after its client left (default
   * 604,800: 7 days; 4,294,967,295: for ever). MQTT 5 clients say their own (`maxSessionExpiryInterval`).
   */
  persistentSessionExpiry?: number
  /**
   * Overload protection: heap bytes in use above which the broker is overloaded (default: 90% of the
   * V8 heap limit; 0: not checked). See `maxEventLoopLag`.
   */
  maxHeapUsed?: number
  /**
   * Overload protection: mean event-loop delay in ms over one timer interval above which the broker
   * is overloaded (default 1,000; 0: not checked). While overloaded, new connections are refused with
   * CONNACK 0x89 Server busy (3.1.1: 3) and QoS 0 deliveries are shed; it recovers by itself once
   * both are below 80% of their thresholds.
   */
  maxEventLoopLag?: number
  /**
   * Memory after a burst of connections (default 1,000; 0: off): once the open connections grew by
   * this many (over their lowest count since the last time), and the broker then was quiet for one
   * timer interval (no new connection, the event loop busy under 10%), it asks V8 for one
   * collection that gives the young generation the burst grew (about 2 KB per connection) back to
   * the system. One pause (0.1–0.3 s at 10,000 connections) while idle; see
   * `benchmarks/broker/README.md`, "Memory per idle connection".
   */
  idleMemoryRelease?: number
  /** Logger (default: warnings and errors to standard error). */
  logger?: Logger
  /**
   * Milliseconds `close()` waits for connections to end and the backend to store what it must
   * (wills, sessions) before it destroys what is left and returns (default 5,000).
   */
  drainTimeout?: number
  /**
   * Milliseconds between two checks of the shared keepalive/connect-timeout wheel (default 1,000).
   * Smaller values only for tests.
   */
  timerInterval?: number
  /**
   * Where the engine reads the time and sets its timers (default `systemClock`: `Date.now()` and
   * Node's timers). Tests pass a virtual clock and advance it instead of sleeping; see `Clock`.
   */
  clock?: Clock
}

/** `BrokerOptions` with every default filled in. */
export interface ResolvedOptions {
  maximumPacketSize: number
  maxConnectPacketSize: number
  connectTimeout: number
  maxKeepalive: number | undefined
  serverKeepAlive: number | undefined
  receiveMaximum: number
  inflightWindow: number
  maxOutgoingQueue: number
  maxOutgoingQueueBytes: number
  maxBufferedBytes: number
  maxPublisherPause: number
  sendTimeout: number
  maximumQoS: 0 | 1 | 2
  retainAvailable: boolean
  wildcardSubscriptionAvailable: boolean
  subscriptionIdentifiersAvailable: boolean
  sharedSubscriptionAvailable: boolean
  topicAliasMaximum: number
  maxSessionExpiryInterval: number
  validatePayloadFormat: boolean
  refuseControlCharacters: boolean
  tenantResolver: TenantResolver | undefined
  maxTopicLength: number
  maxTopicLevels: number
  maxSubscriptionsPerClient: number
  maxConnections: number
  maxConnectionsPerListener: number
  maxConnectionsPerAddress: number
  maxConnectRatePerAddress: number
  maxConnectionsPerTenant: number
  flappingMaxCount: number
  flappingWindow: number
  flappingBanTime: number
  maxUserProperties: number
  persistentSessionExpiry: number
  maxHeapUsed: number
  maxEventLoopLag: number
  idleMemoryRelease: number
  timerInterval: number
  /** Milliseconds; 0: no `$SYS` topics. */
  sysInterval: number
  sysTopicPrefix: string
  drainTimeout: number
  clock: Clock
}

/** The largest packet MQTT can express: 268,435,455 bytes of body plus a 5-byte fixed header. */
export const MAX_PACKET_SIZE = 268_435_460

/** The default `maximumPacketSize`: 4 MiB (EMQX ships 1 MB, Mosquitto 2.1 a few MB). */
export const DEFAULT_MAXIMUM_PACKET_SIZE = 4 * 1024 * 1024

function positive(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}`)
  }
  return value
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${name} must be an integer from 0 to 4294967295, got ${value}`)
  }
  return value
}

function maxHeapUsed(value: number | undefined): number {
  if (value === undefined) return Math.floor(getHeapStatistics().heap_size_limit * 0.9)
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`maxHeapUsed must be a number of bytes (0: none), got ${value}`)
  return value
}

function sysInterval(seconds: number | undefined): number {
  if (seconds === undefined) return 10_000
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > 86_400) {
    throw new RangeError(`sysInterval must be a number of seconds from 0 to 86400, got ${String(seconds)}`)
  }
  const ms = Math.round(seconds * 1000)
  if (seconds > 0 && ms < 10) throw new RangeError(`sysInterval must be 0 or at least 0.01 seconds, got ${seconds}`)
  return ms
}

function sysTopicPrefix(prefix: string | undefined): string {
  if (prefix === undefined) return '$SYS/broker'
  if (typeof prefix !== 'string' || !prefix.startsWith('$SYS/') || prefix.endsWith('/') || /[+#]/.test(prefix) || prefix.includes('\u0000')) {
    throw new RangeError(`sysTopicPrefix must be a topic name under $SYS/ without wildcards or a trailing /, got ${JSON.stringify(prefix)}`)
  }
  return prefix
}

/** Fill in defaults and check ranges. Throws `RangeError` for a value out of range. */
export function resolveOptions(options: BrokerOptions): ResolvedOptions {
  const maximumQoS = options.maximumQoS ?? 2
  if (maximumQoS !== 0 && maximumQoS !== 1 && maximumQoS !== 2) {
    throw new RangeError(`maximumQoS must be 0, 1 or 2, got ${String(maximumQoS)}`)
  }
  const topicAliasMaximum = options.topicAliasMaximum ?? 0
  if (!Number.isInteger(topicAliasMaximum) || topicAliasMaximum < 0 || topicAliasMaximum > 65535) {
    throw new RangeError(`topicAliasMaximum must be an integer from 0 to 65535, got ${topicAliasMaximum}`)
  }
  const maximumPacketSize = positive('maximumPacketSize', options.maximumPacketSize, DEFAULT_MAXIMUM_PACKET_SIZE, MAX_PACKET_SIZE)
  return {
    maximumPacketSize,
    maxConnectPacketSize: Math.min(maximumPacketSize, positive('maxConnectPacketSize', options.maxConnectPacketSize, 65_536, MAX_PACKET_SIZE)),
    connectTimeout: positive('connectTimeout', options.connectTimeout, 10_000),
    maxKeepalive: options.maxKeepalive === 0 ? undefined : positive('maxKeepalive', options.maxKeepalive, 65535, 65535),
    serverKeepAlive:
      options.serverKeepAlive === undefined ? undefined : positive('serverKeepAlive', options.serverKeepAlive, 0, 65535),
    receiveMaximum: positive('receiveMaximum', options.receiveMaximum, 65535, 65535),
    inflightWindow: positive('inflightWindow', options.inflightWindow, 500, 65535),
    maxOutgoingQueue: positive('maxOutgoingQueue', options.maxOutgoingQueue, 10_000),
    maxOutgoingQueueBytes: positive('maxOutgoingQueueBytes', options.maxOutgoingQueueBytes, 64 * 1024 * 1024),
    maxBufferedBytes: positive('maxBufferedBytes', options.maxBufferedBytes, 8 * 1024 * 1024),
    maxPublisherPause: nonNegative('maxPublisherPause', options.maxPublisherPause, 1000),
    sendTimeout: positive('sendTimeout', options.sendTimeout, 15_000),
    maximumQoS,
    retainAvailable: options.retainAvailable ?? true,
    wildcardSubscriptionAvailable: options.wildcardSubscriptionAvailable ?? true,
    subscriptionIdentifiersAvailable: options.subscriptionIdentifiersAvailable ?? true,
    sharedSubscriptionAvailable: options.sharedSubscriptionAvailable ?? true,
    topicAliasMaximum,
    maxSessionExpiryInterval: nonNegative('maxSessionExpiryInterval', options.maxSessionExpiryInterval, 0xffff_ffff),
    validatePayloadFormat: options.validatePayloadFormat ?? false,
    refuseControlCharacters: options.refuseControlCharacters ?? true,
    tenantResolver: options.tenantResolver,
    maxTopicLength: positive('maxTopicLength', options.maxTopicLength, 65535, 65535),
    maxTopicLevels: positive('maxTopicLevels', options.maxTopicLevels, 128, 65535),
    maxSubscriptionsPerClient: nonNegative('maxSubscriptionsPerClient', options.maxSubscriptionsPerClient, 0),
    maxConnections: nonNegative('maxConnections', options.maxConnections, 0),
    maxConnectionsPerListener: nonNegative('maxConnectionsPerListener', options.maxConnectionsPerListener, 0),
    maxConnectionsPerAddress: nonNegative('maxConnectionsPerAddress', options.maxConnectionsPerAddress, 0),
    maxConnectRatePerAddress: nonNegative('maxConnectRatePerAddress', options.maxConnectRatePerAddress, 0),
    maxConnectionsPerTenant: nonNegative('maxConnectionsPerTenant', options.maxConnectionsPerTenant, 0),
    flappingMaxCount: nonNegative('flappingMaxCount', options.flappingMaxCount, 0),
    flappingWindow: positive('flappingWindow', options.flappingWindow, 60_000),
    flappingBanTime: positive('flappingBanTime', options.flappingBanTime, 300_000),
    maxUserProperties: positive('maxUserProperties', options.maxUserProperties, 128),
    persistentSessionExpiry: nonNegative('persistentSessionExpiry', options.persistentSessionExpiry, 604_800),
    maxHeapUsed: maxHeapUsed(options.maxHeapUsed),
    maxEventLoopLag: nonNegative('maxEventLoopLag', options.maxEventLoopLag, 1000),
    idleMemoryRelease: nonNegative('idleMemoryRelease', options.idleMemoryRelease, 1000),
    timerInterval: positive('timerInterval', options.timerInterval, 1000),
    sysInterval: sysInterval(options.sysInterval),
    sysTopicPrefix: sysTopicPrefix(options.sysTopicPrefix),
    drainTimeout: positive('drainTimeout', options.drainTimeout, 5000),
    clock: resolveClock(options.clock)
  }
}
