/**
 * From a validated configuration to the objects code would build by hand: `BrokerOptions`, the
 * backend, the tenant resolver and the listeners' `ListenerConfig`s. Nothing here starts anything
 * but the backend's connection (`makeBackend`).
 */
import type { Backend } from '../backend/backend.js'
import { KeyvBackend } from '../backend/keyv/index.js'
import type { KeyvBackendOptions } from '../backend/keyv/index.js'
import { MemoryBackend } from '../backend/memory-backend.js'
import type { MemoryBackendOptions } from '../backend/memory-backend.js'
import { TenantBackend } from '../backend/tenant-backend.js'
import type { Logger } from '../broker/logger.js'
import type { BrokerOptions } from '../broker/options.js'
import { byClientIdPrefix, byFunction, byListener, byUsernameDomain } from '../tenancy/index.js'
import type { TenantResolver } from '../tenancy/index.js'
import type { ListenerConfig } from '../transport/listener-config.js'
import type { TlsListenerConfig } from '../transport/tls-files.js'
import type { BrokerConfig, ListenerEntry, TlsConfig } from './schema.js'

/** Drops undefined values (so `BrokerOptions` defaults apply). */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

/**
 * The `BrokerOptions` of `config.broker`, `config.tenancy` and `shutdown_timeout` (seconds, as
 * `drainTimeout` in ms), without backend and logger.
 */
export function brokerOptions(config: BrokerConfig): Omit<BrokerOptions, 'backend'> {
  const b = config.broker ?? {}
  const resolver = tenantResolver(config)
  return defined({
    maximumPacketSize: b.max_packet_size,
    maxConnectPacketSize: b.max_connect_packet_size,
    connectTimeout: b.connect_timeout,
    maxKeepalive: b.max_keepalive,
    serverKeepAlive: b.server_keep_alive,
    receiveMaximum: b.receive_maximum,
    inflightWindow: b.inflight_window,
    maxOutgoingQueue: b.max_outgoing_queue,
    maxOutgoingQueueBytes: b.max_outgoing_queue_bytes,
    maxBufferedBytes: b.max_buffered_bytes,
    maxPublisherPause: b.max_publisher_pause,
    sendTimeout: b.send_timeout,
    maximumQoS: b.maximum_qos,
    retainAvailable: b.retain_available,
    wildcardSubscriptionAvailable: b.wildcard_subscription_available,
    subscriptionIdentifiersAvailable: b.subscription_identifiers_available,
    sharedSubscriptionAvailable: b.shared_subscription_available,
    topicAliasMaximum: b.topic_alias_maximum,
    maxSessionExpiryInterval: b.max_session_expiry_interval,
    validatePayloadFormat: b.validate_payload_format,
    refuseControlCharacters: b.refuse_control_characters,
    maxTopicLength: b.max_topic_length,
    maxTopicLevels: b.max_topic_levels,
    maxSubscriptionsPerClient: b.max_subscriptions,
    maxConnections: b.max_connections,
    maxConnectionsPerListener: b.max_connections_per_listener,
    maxConnectionsPerAddress: b.max_connections_per_address,
    maxConnectRatePerAddress: b.max_connect_rate_per_address,
    maxConnectionsPerTenant: b.max_connections_per_tenant,
    flappingMaxCount: b.flapping_max_count,
    flappingWindow: b.flapping_window,
    flappingBanTime: b.flapping_ban_time,
    maxUserProperties: b.max_user_properties,
    persistentSessionExpiry: b.persistent_session_expiry,
    maxHeapUsed: b.max_heap_used,
    maxEventLoopLag: b.max_event_loop_lag,
    idleMemoryRelease: b.idle_memory_release,
    sysInterval: b.sys_interval,
    sysTopicPrefix: b.sys_topic_prefix,
    timerInterval: b.timer_interval,
    drainTimeout: config.shutdown_timeout === undefined ? undefined : Math.max(1, Math.round(config.shutdown_timeout * 1000)),
    tenantResolver: resolver
  })
}

/** Whether clients are put in tenants (then the memory backend keeps one store per tenant). */
export function tenancyEnabled(config: BrokerConfig): boolean {
  return (config.tenancy?.by ?? 'none') !== 'none'
}

/** The tenant resolver of `config.tenancy` (undefined: `by: none`). */
export function tenantResolver(config: BrokerConfig): TenantResolver | undefined {
  const t = config.tenancy ?? {}
  const common = defined({ separator: t.separator, strip: t.strip, required: t.required })
  switch (t.by ?? 'none') {
    case 'username':
      return byUsernameDomain(common)
    case 'client_id':
      return byClientIdPrefix(common)
    case 'listener':
      return byListener(t.listeners ?? {}, { unknown: t.unknown_listener ?? 'default' })
    case 'fixed': {
      const tenant = t.tenant
      return byFunction(() => tenant)
    }
    default:
      return undefined
  }
}

/** The `MemoryBackendOptions` of `backend.memory`. */
export function memoryOptions(config: BrokerConfig): MemoryBackendOptions {
  const m = config.backend?.memory ?? {}
  return defined({
    maxQueuedMessages: m.max_queued_messages,
    maxQueuedBytes: m.max_queued_bytes,
    maxRetainedMessages: m.max_retained_messages,
    maxRetainedBytes: m.max_retained_bytes,
    queueQoS0: m.queue_qos0,
    sharedSubscriptionPolicy: m.shared_subscription_policy,
    expiryCheckInterval: m.expiry_check_interval
  })
}

/** The `KeyvBackendOptions` of `backend.redis` (without `log`). */
export function redisOptions(config: BrokerConfig): KeyvBackendOptions {
  const r = config.backend?.redis ?? {}
  return defined({
    url: r.url,
    nodeId: r.node_id,
    prefix: r.prefix,
    namespace: r.namespace,
    maxQueuedMessages: r.max_queued_messages,
    maxRetainedMessages: r.max_retained_messages,
    maxQueuedBytes: r.max_queued_bytes,
    maxRetainedBytes: r.max_retained_bytes,
    commandTimeout: r.command_timeout,
    connectTimeout: r.connect_timeout,
    heartbeatInterval: r.heartbeat_interval,
    takeoverTimeout: r.takeover_timeout,
    busMaxLength: r.bus_max_length,
    awaitQos0: r.await_qos0
  })
}

/** The backend could not be started (Redis unreachable): nothing else was started. */
export class BackendStartError extends Error {
  override name = 'BackendStartError'
}

/**
 * The backend of `config.backend`: a `MemoryBackend` (one per tenant when tenancy is on), or a
 * `KeyvBackend` on Redis, ready (reachable) before this resolves. Rejects with
 * `BackendStartError` when Redis cannot be used; the backend is then closed.
 */
export async function makeBackend(config: BrokerConfig, logger: Logger): Promise<Backend> {
  if ((config.backend?.type ?? 'memory') === 'memory') {
    const options = memoryOptions(config)
    return tenancyEnabled(config) ? new TenantBackend(() => new MemoryBackend(options)) : new MemoryBackend(options)
  }
  const options = redisOptions(config)
  const backend = new KeyvBackend({ ...options, log: (level, message) => logger[level](message, { backend: 'redis' }) })
  try {
    await backend.ready()
  } catch (error) {
    await Promise.resolve(backend.close()).catch(() => undefined)
    throw new BackendStartError(`cannot use Redis at ${options.url ?? '?'}: ${(error as Error).message}`)
  }
  const warning = await backend.checkDurability().catch(() => undefined)
  if (warning !== undefined) logger.warn(warning)
  return backend
}

function tlsOptions(tls: TlsConfig): TlsListenerConfig {
  return defined({
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    passphrase: tls.passphrase,
    clientCertificates: tls.client_certificates,
    usernameFrom: tls.username_from,
    minVersion: tls.min_version,
    ciphers: tls.ciphers,
    watch: tls.watch,
    handshakeTimeout: tls.handshake_timeout
  })
}

/** One `listeners:` entry as the transports take it. */
export function listenerConfig(entry: ListenerEntry): ListenerConfig {
  switch (entry.kind) {
    case 'unix':
      return defined({
        name: entry.name,
        kind: 'unix',
        socketPath: entry.path,
        socketMode: entry.mode === undefined ? undefined : parseInt(entry.mode, 8)
      })
    case 'tcp':
      return defined({ name: entry.name, kind: 'tcp', host: entry.host, port: entry.port, proxyProtocol: entry.proxy_protocol, proxyTimeout: entry.proxy_timeout, trustedProxies: entry.trusted_proxies })
    case 'tls':
      return defined({ name: entry.name, kind: 'tls', host: entry.host, port: entry.port, tls: tlsOptions(entry.tls), proxyProtocol: entry.proxy_protocol, proxyTimeout: entry.proxy_timeout, trustedProxies: entry.trusted_proxies })
    case 'ws':
      return defined({ name: entry.name, kind: 'ws', host: entry.host, port: entry.port, path: entry.path, trustedProxies: entry.trusted_proxies })
    case 'wss':
      return defined({ name: entry.name, kind: 'wss', host: entry.host, port: entry.port, path: entry.path, tls: tlsOptions(entry.tls), trustedProxies: entry.trusted_proxies })
  }
}

/** Every listener of `config` as `ListenerConfig`s. */
export function listenerConfigs(config: BrokerConfig): ListenerConfig[] {
  return (config.listeners ?? []).map(listenerConfig)
}
