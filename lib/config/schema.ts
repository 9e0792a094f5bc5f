/**
 * The JSON Schema of the configuration file (draft 2020-12 subset that ajv 8 checks), and the
 * TypeScript shape of a validated file. Keys are snake_case; each `broker.*` key is the
 * snake_case form of the `BrokerOptions` field of the same name, in the same unit
 * (renamed keys: `max_packet_size` ↔ `maximumPacketSize`, `max_subscriptions` ↔
 * `maxSubscriptionsPerClient`; see docs/configuration.md).
 *
 * `default` keywords are the values used when a key is absent (`applyDefaults` fills them in for
 * `--print-config`); they are checked against the code's own defaults by spec/config.
 */

import { authConfigSchema } from '../auth/config.js'
import type { AuthConfig } from '../auth/config.js'
import { httpConfigSchema } from '../http/options.js'
import type { HttpConfig } from '../http/options.js'

/** Ports 0 to 65535 (0: the system picks a free one). */
const port = { type: 'integer', minimum: 0, maximum: 65535 } as const
const host = { type: 'string', minLength: 1, default: '127.0.0.1' } as const
/** A listener name: used in logs, events, tenancy by listener and per-listener environment variables. */
const name = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$',
  description: 'a name of 1 to 63 letters, digits, _, . or - (starting with a letter or digit)'
} as const
const nonEmpty = { type: 'string', minLength: 1 } as const
const trustedProxies = { type: 'array', items: nonEmpty, default: [] } as const
const httpPath = { type: 'string', pattern: '^/[^\\s?#]*$', description: 'an HTTP path starting with /', default: '/mqtt' } as const

const positive = (max: number, dflt?: number): Record<string, unknown> => ({
  type: 'integer',
  minimum: 1,
  maximum: max,
  ...(dflt === undefined ? {} : { default: dflt })
})

/** 0 to 4,294,967,295 (0: usually "none" or "never"). */
const count = (dflt: number): Record<string, unknown> => ({ type: 'integer', minimum: 0, maximum: 0xffff_ffff, default: dflt })

/** PEM files and client-certificate policy of a `tls` or `wss` listener. */
const tlsSection = {
  type: 'object',
  additionalProperties: false,
  required: ['key', 'cert'],
  properties: {
    key: nonEmpty,
    cert: nonEmpty,
    ca: nonEmpty,
    passphrase: { type: 'string' },
    client_certificates: { enum: ['none', 'optional', 'required'], default: 'none' },
    username_from: { enum: ['cn', 'subject', 'dns', 'email', 'uri'] },
    min_version: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
    ciphers: nonEmpty,
    watch: { type: 'boolean', default: true },
    handshake_timeout: positive(Number.MAX_SAFE_INTEGER, 10_000)
  }
} as const

function listenerBranch(kind: string, properties: Record<string, unknown>, required: string[] = []): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'kind', ...required],
    properties: { name, kind: { const: kind }, ...properties }
  }
}

/** One listener; `kind` picks the branch (ajv `discriminator`: errors name only that branch). */
const listener = {
  type: 'object',
  discriminator: { propertyName: 'kind' },
  required: ['kind'],
  oneOf: [
    listenerBranch('tcp', { host, port: { ...port, default: 1883 }, proxy_protocol: { type: 'boolean', default: false }, proxy_timeout: positive(Number.MAX_SAFE_INTEGER, 5000), trusted_proxies: trustedProxies }),
    listenerBranch(
      'tls',
      { host, port: { ...port, default: 8883 }, tls: tlsSection, proxy_protocol: { type: 'boolean', default: false }, proxy_timeout: positive(Number.MAX_SAFE_INTEGER, 5000), trusted_proxies: trustedProxies },
      ['tls']
    ),
    listenerBranch('ws', { host, port: { ...port, default: 8080 }, path: httpPath, trusted_proxies: trustedProxies }),
    listenerBranch('wss', { host, port: { ...port, default: 8443 }, path: httpPath, tls: tlsSection, trusted_proxies: trustedProxies }, ['tls']),
    listenerBranch('unix', { path: nonEmpty, mode: { type: 'string', pattern: '^0?[0-7]{3}$', description: 'an octal file mode in quotes, e.g. "0660"' } }, ['path'])
  ]
} as const

const broker = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_packet_size: positive(268_435_460, 4 * 1024 * 1024),
    max_connect_packet_size: positive(268_435_460, 65_536),
    connect_timeout: positive(Number.MAX_SAFE_INTEGER, 10_000),
    max_keepalive: { type: 'integer', minimum: 0, maximum: 65535, default: 65535 },
    server_keep_alive: positive(65535),
    receive_maximum: positive(65535, 65535),
    inflight_window: positive(65535, 500),
    max_outgoing_queue: positive(Number.MAX_SAFE_INTEGER, 10_000),
    max_outgoing_queue_bytes: positive(Number.MAX_SAFE_INTEGER, 64 * 1024 * 1024),
    max_buffered_bytes: positive(Number.MAX_SAFE_INTEGER, 8 * 1024 * 1024),
    max_publisher_pause: count(1000),
    send_timeout: positive(Number.MAX_SAFE_INTEGER, 15_000),
    maximum_qos: { enum: [0, 1, 2], default: 2 },
    retain_available: { type: 'boolean', default: true },
    wildcard_subscription_available: { type: 'boolean', default: true },
    subscription_identifiers_available: { type: 'boolean', default: true },
    shared_subscription_available: { type: 'boolean', default: true },
    topic_alias_maximum: { type: 'integer', minimum: 0, maximum: 65535, default: 0 },
    max_session_expiry_interval: { type: 'integer', minimum: 0, maximum: 0xffff_ffff, default: 0xffff_ffff },
    validate_payload_format: { type: 'boolean', default: false },
    refuse_control_characters: { type: 'boolean', default: true },
    max_topic_length: positive(65535, 65535),
    max_topic_levels: positive(65535, 128),
    max_subscriptions: count(0),
    max_connections: count(0),
    max_connections_per_listener: count(0),
    max_connections_per_address: count(0),
    max_connect_rate_per_address: count(0),
    max_connections_per_tenant: count(0),
    flapping_max_count: count(0),
    flapping_window: positive(Number.MAX_SAFE_INTEGER, 60_000),
    flapping_ban_time: positive(Number.MAX_SAFE_INTEGER, 300_000),
    max_user_properties: positive(Number.MAX_SAFE_INTEGER, 128),
    persistent_session_expiry: count(604_800),
    // Default: 90% of the V8 heap limit (computed at start, so no fixed default here).
    max_heap_used: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    max_event_loop_lag: count(1000),
    idle_memory_release: count(1000),
    sys_interval: { type: 'number', minimum: 0, maximum: 86_400, default: 10 },
    sys_topic_prefix: {
      type: 'string',
      pattern: '^\\$SYS/[^+#\\u0000]*[^/+#\\u0000]$',
      description: 'a topic under $SYS/ without wildcards or a trailing /'
    },
    timer_interval: positive(Number.MAX_SAFE_INTEGER, 1000)
  }
} as const

const tenantId = {
  type: 'string',
  pattern: '^[a-z0-9][a-z0-9_-]{0,62}$',
  description: 'a tenant id: 1 to 63 lower-case letters, digits, _ or - (starting with a letter or digit)'
} as const

/** `backend.memory:` (snake_case `MemoryBackendOptions`). */
const memory = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_queued_messages: positive(Number.MAX_SAFE_INTEGER, 1000),
    max_queued_bytes: positive(Number.MAX_SAFE_INTEGER, 16 * 1024 * 1024),
    max_retained_messages: positive(Number.MAX_SAFE_INTEGER, 100_000),
    max_retained_bytes: positive(Number.MAX_SAFE_INTEGER, 256 * 1024 * 1024),
    queue_qos0: { type: 'boolean', default: false },
    shared_subscription_policy: { enum: ['round-robin', 'random'], default: 'round-robin' },
    expiry_check_interval: positive(Number.MAX_SAFE_INTEGER, 10_000)
  }
} as const

const redis = {
  type: 'object',
  additionalProperties: false,
  properties: {
    url: { type: 'string', pattern: '^rediss?://.', description: 'a redis:// or rediss:// URL' },
    node_id: { type: 'string', pattern: '^[^\\s{}]+$', description: 'a node id without spaces or braces' },
    prefix: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$', description: '1 to 32 letters, digits, _ or -', default: 'mq' },
    namespace: { ...tenantId, default: 'default' },
    max_queued_messages: positive(Number.MAX_SAFE_INTEGER, 1000),
    max_retained_messages: positive(Number.MAX_SAFE_INTEGER, 100_000),
    max_queued_bytes: positive(Number.MAX_SAFE_INTEGER, 16 * 1024 * 1024),
    max_retained_bytes: positive(Number.MAX_SAFE_INTEGER, 256 * 1024 * 1024),
    command_timeout: positive(Number.MAX_SAFE_INTEGER, 5000),
    connect_timeout: positive(Number.MAX_SAFE_INTEGER, 10_000),
    heartbeat_interval: positive(Number.MAX_SAFE_INTEGER, 2000),
    takeover_timeout: positive(Number.MAX_SAFE_INTEGER, 3000),
    bus_max_length: positive(Number.MAX_SAFE_INTEGER, 100_000),
    await_qos0: { type: 'boolean', default: false }
  }
} as const


const tenancy = {
  type: 'object',
  additionalProperties: false,
  properties: {
    by: { enum: ['none', 'username', 'client_id', 'listener', 'fixed'], default: 'none' },
    separator: { type: 'string', minLength: 1 },
    strip: { type: 'boolean', default: true },
    required: { type: 'boolean', default: true },
    listeners: { type: 'object', additionalProperties: tenantId, propertyNames: name },
    unknown_listener: { enum: ['default', 'refuse'], default: 'default' },
    tenant: tenantId
  }
} as const

/**
 * `http:` — the HTTP endpoints of lib/http (`httpConfigSchema`), on a port of their own or, with
 * `listener`, mounted on the HTTP(S) server of that `ws`/`wss` listener.
 */
const http = {
  ...httpConfigSchema,
  properties: { ...httpConfigSchema.properties, listener: name }
} as const

/** The whole file. */
export const CONFIG_SCHEMA = {
  $id: 'https://mqtt-broker-framework/config.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    listeners: { type: 'array', items: listener, minItems: 1 },
    allow_anonymous: { type: 'boolean', default: false },
    // Access control (lib/auth, docs/security.md): password files, rules, ACLs, JWT, HTTP hook, Redis users.
    auth: authConfigSchema,
    shutdown_timeout: { type: 'number', minimum: 0.001, maximum: 3600, default: 5 },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: {
        level: { enum: ['silent', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info' },
        format: { enum: ['text', 'json'] }
      }
    },
    broker,
    backend: {
      type: 'object',
      additionalProperties: false,
      properties: {
        type: { enum: ['memory', 'redis'], default: 'memory' },
        memory,
        redis
      }
    },
    tenancy,
    http,
    // Multi-core mode (docs/multicore.md): this many broker processes on the same listeners (node:cluster).
    workers: { type: 'integer', minimum: 1, maximum: 256, default: 1 }
  }
} as const

/** A `tls:` section of a listener. */
export interface TlsConfig {
  key: string
  cert: string
  ca?: string
  passphrase?: string
  client_certificates?: 'none' | 'optional' | 'required'
  username_from?: 'cn' | 'subject' | 'dns' | 'email' | 'uri'
  min_version?: 'TLSv1.2' | 'TLSv1.3'
  ciphers?: string
  watch?: boolean
  handshake_timeout?: number
}

interface ListenerBase {
  name: string
}

/** One entry of `listeners:`. */
export type ListenerEntry =
  | (ListenerBase & { kind: 'tcp'; host?: string; port?: number; proxy_protocol?: boolean; proxy_timeout?: number; trusted_proxies?: string[] })
  | (ListenerBase & { kind: 'tls'; host?: string; port?: number; tls: TlsConfig; proxy_protocol?: boolean; proxy_timeout?: number; trusted_proxies?: string[] })
  | (ListenerBase & { kind: 'ws'; host?: string; port?: number; path?: string; trusted_proxies?: string[] })
  | (ListenerBase & { kind: 'wss'; host?: string; port?: number; path?: string; tls: TlsConfig; trusted_proxies?: string[] })
  | (ListenerBase & { kind: 'unix'; path: string; mode?: string })

/** The `broker:` section (snake_case `BrokerOptions`). */
export interface BrokerSection {
  max_packet_size?: number
  max_connect_packet_size?: number
  connect_timeout?: number
  max_keepalive?: number
  server_keep_alive?: number
  receive_maximum?: number
  inflight_window?: number
  max_outgoing_queue?: number
  max_outgoing_queue_bytes?: number
  max_buffered_bytes?: number
  max_publisher_pause?: number
  send_timeout?: number
  maximum_qos?: 0 | 1 | 2
  retain_available?: boolean
  wildcard_subscription_available?: boolean
  subscription_identifiers_available?: boolean
  shared_subscription_available?: boolean
  topic_alias_maximum?: number
  max_session_expiry_interval?: number
  validate_payload_format?: boolean
  refuse_control_characters?: boolean
  max_topic_length?: number
  max_topic_levels?: number
  max_subscriptions?: number
  max_connections?: number
  max_connections_per_listener?: number
  max_connections_per_address?: number
  max_connect_rate_per_address?: number
  max_connections_per_tenant?: number
  flapping_max_count?: number
  flapping_window?: number
  flapping_ban_time?: number
  max_user_properties?: number
  persistent_session_expiry?: number
  max_heap_used?: number
  max_event_loop_lag?: number
  idle_memory_release?: number
  sys_interval?: number
  sys_topic_prefix?: string
  timer_interval?: number
}

/** `backend.memory:` (snake_case `MemoryBackendOptions`). */
export interface MemorySection {
  max_queued_messages?: number
  max_queued_bytes?: number
  max_retained_messages?: number
  max_retained_bytes?: number
  queue_qos0?: boolean
  shared_subscription_policy?: 'round-robin' | 'random'
  expiry_check_interval?: number
}

/** `backend.redis:` (snake_case `KeyvBackendOptions`). */
export interface RedisSection {
  url?: string
  node_id?: string
  prefix?: string
  namespace?: string
  max_queued_messages?: number
  max_retained_messages?: number
  max_queued_bytes?: number
  max_retained_bytes?: number
  command_timeout?: number
  connect_timeout?: number
  heartbeat_interval?: number
  takeover_timeout?: number
  bus_max_length?: number
  await_qos0?: boolean
}

/** `tenancy:`. */
export interface TenancySection {
  by?: 'none' | 'username' | 'client_id' | 'listener' | 'fixed'
  separator?: string
  strip?: boolean
  required?: boolean
  listeners?: Record<string, string>
  unknown_listener?: 'default' | 'refuse'
  tenant?: string
}

/** A validated configuration file. */
export interface BrokerConfig {
  listeners?: ListenerEntry[]
  allow_anonymous?: boolean
  auth?: AuthConfig
  shutdown_timeout?: number
  log?: { level?: 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace'; format?: 'text' | 'json' }
  broker?: BrokerSection
  backend?: { type?: 'memory' | 'redis'; memory?: MemorySection; redis?: RedisSection }
  tenancy?: TenancySection
  http?: HttpSection
  /** Broker processes sharing the listeners (1: this process alone; more needs the redis backend). */
  workers?: number
}

/** `http:` (lib/http's `HttpConfig`, plus `listener`: the ws/wss listener to mount on). */
export interface HttpSection extends HttpConfig {
  listener?: string
}
