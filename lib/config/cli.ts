/**
 * The command line of `mqtt-broker` and the environment, turned into overrides of the
 * configuration file: flags override the file, environment variables override both.
 */
import { parseArgs } from 'node:util'
import { LOG_LEVELS } from '../broker/logger.js'
import { DEFAULT_MAXIMUM_PACKET_SIZE, MAX_PACKET_SIZE } from '../broker/options.js'
import type { Override } from './effective.js'

/** A bad flag or value (exit code 2, with the usage). */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** What the command line asks for. */
export interface CommandLine {
  /** `--config FILE`. */
  configFile: string | undefined
  /** `--print-config`: print the effective configuration (secrets masked) and exit. */
  printConfig: boolean
  /** `--check-config`: validate (files included) and exit. */
  checkConfig: boolean
  help: boolean
  values: Record<string, string | boolean | undefined>
}

export const USAGE = `Usage: mqtt-broker [--config FILE] [options]
       mqtt-broker passwd [--delete] [--scram] FILE USER   (add, change or delete a user of a password file)

An MQTT broker (MQTT 3.1, 3.1.1 and 5.0): the in-memory backend, or with --redis one process of a
cluster (run several on different ports with the same --redis URL: they form one broker).
Without --config it listens on 127.0.0.1:1883 only. Flags override the file; the environment
variables of docs/configuration.md override both.

Options:
  -c, --config FILE        read the configuration from FILE (YAML or JSON; see docs/configuration.md)
  --print-config           print the effective configuration (secrets masked) and exit
  --check-config           check the configuration (and the files it names) and exit
  --host HOST              interface of the TCP listener (and of --ws-port) (default 127.0.0.1)
  --port PORT              port of the TCP listener (default 1883; 0 picks a free port)
  --ws-port PORT           also listen for MQTT over WebSocket on PORT, path /mqtt
  --allow-anonymous        allow clients without authentication on non-loopback addresses
  --max-packet-size BYTES  largest packet accepted (default ${DEFAULT_MAXIMUM_PACKET_SIZE}, at most ${MAX_PACKET_SIZE})
  --topic-alias-maximum N  MQTT 5 topic aliases a client may use (default 0, at most 65535)
  --max-session-expiry S   longest MQTT 5 Session Expiry Interval granted, in seconds (default none)
  --sys-interval S         seconds between two publications of the $SYS topics (default 10; 0: none);
                           under $SYS/broker/, or $SYS/brokers/<node id>/ with --redis
  --log-level LEVEL        ${LOG_LEVELS.join(', ')} (default info)
  --log-format FORMAT      text or json (default: text on a terminal, json otherwise)
  --shutdown-timeout S     seconds SIGINT/SIGTERM may take to close connections (default 5)
  --redis URL              keep sessions, queues and retained messages in Redis and share them with
                           the other processes on the same Redis (e.g. redis://127.0.0.1:6379)
  --node-id ID             this process's id in the cluster (default: hostname:pid:random)
  --redis-prefix PREFIX    root of every Redis key (default mq)
  --tenant-by WHAT         multi-tenancy: "username" (user@tenant) or "client-id" (tenant:client)
  --tenant ID              put every client of this process in tenant ID
  --workers N              run N broker processes on the same listeners, one per core (needs --redis;
                           default 1; see docs/multicore.md)
  -h, --help               show this help

Limits (docs/limits.md; same units as the configuration keys, 0 where allowed: none/off):
  --max-connect-packet-size BYTES   --connect-timeout MS            --max-keepalive S
  --receive-maximum N               --inflight-window N             --max-outgoing-queue N
  --max-outgoing-queue-bytes BYTES  --max-buffered-bytes BYTES      --max-publisher-pause MS
  --send-timeout MS                 --max-topic-length N            --max-topic-levels N
  --max-subscriptions N             --max-connections N             --max-connections-per-listener N
  --max-connections-per-address N   --max-connect-rate-per-address N (per second)
  --max-connections-per-tenant N    --flapping-max-count N (0: off)  --flapping-window MS
  --flapping-ban-time MS
  --max-user-properties N           --persistent-session-expiry S   --max-heap-used BYTES
  --max-event-loop-lag MS           --max-queued-messages N         --max-queued-bytes BYTES
  --max-retained-messages N         --max-retained-bytes BYTES
  (queued/retained: of backend.memory, or of backend.redis with --redis)

Signals: SIGINT/SIGTERM stop (a second one exits at once), SIGHUP re-reads the TLS certificates
(the HTTP listener's included) and the access-control files (auth: password_file, acl_file, JWT
keys) without dropping connections.
`

/** Integer flags that set one `broker:` key each (range checked by the schema). */
const BROKER_LIMITS = {
  'max-connect-packet-size': 'max_connect_packet_size',
  'connect-timeout': 'connect_timeout',
  'max-keepalive': 'max_keepalive',
  'receive-maximum': 'receive_maximum',
  'inflight-window': 'inflight_window',
  'max-outgoing-queue': 'max_outgoing_queue',
  'max-outgoing-queue-bytes': 'max_outgoing_queue_bytes',
  'max-buffered-bytes': 'max_buffered_bytes',
  'max-publisher-pause': 'max_publisher_pause',
  'send-timeout': 'send_timeout',
  'max-topic-length': 'max_topic_length',
  'max-topic-levels': 'max_topic_levels',
  'max-subscriptions': 'max_subscriptions',
  'max-connections': 'max_connections',
  'max-connections-per-listener': 'max_connections_per_listener',
  'max-connections-per-address': 'max_connections_per_address',
  'max-connect-rate-per-address': 'max_connect_rate_per_address',
  'max-connections-per-tenant': 'max_connections_per_tenant',
  'flapping-max-count': 'flapping_max_count',
  'flapping-window': 'flapping_window',
  'flapping-ban-time': 'flapping_ban_time',
  'max-user-properties': 'max_user_properties',
  'persistent-session-expiry': 'persistent_session_expiry',
  'max-heap-used': 'max_heap_used',
  'max-event-loop-lag': 'max_event_loop_lag'
} as const

/** Integer flags of the backend's store: `backend.memory.*`, or `backend.redis.*` with the redis backend. */
const BACKEND_LIMITS = {
  'max-queued-messages': 'max_queued_messages',
  'max-queued-bytes': 'max_queued_bytes',
  'max-retained-messages': 'max_retained_messages',
  'max-retained-bytes': 'max_retained_bytes'
} as const

const stringFlags = (names: readonly string[]): Record<string, { type: 'string' }> =>
  Object.fromEntries(names.map((name) => [name, { type: 'string' as const }]))

const FLAGS = {
  ...stringFlags(Object.keys(BROKER_LIMITS)),
  ...stringFlags(Object.keys(BACKEND_LIMITS)),
  config: { type: 'string', short: 'c' },
  'print-config': { type: 'boolean' },
  'check-config': { type: 'boolean' },
  host: { type: 'string' },
  port: { type: 'string' },
  'ws-port': { type: 'string' },
  'allow-anonymous': { type: 'boolean' },
  'max-packet-size': { type: 'string' },
  'topic-alias-maximum': { type: 'string' },
  'max-session-expiry': { type: 'string' },
  'sys-interval': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'shutdown-timeout': { type: 'string' },
  redis: { type: 'string' },
  'node-id': { type: 'string' },
  'redis-prefix': { type: 'string' },
  'tenant-by': { type: 'string' },
  tenant: { type: 'string' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' }
} as const

/** Parses `argv`. Throws `UsageError` for an unknown flag or a missing value. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  let values: Record<string, string | boolean | undefined>
  try {
    values = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: FLAGS }).values
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  if (values.tenant !== undefined && values['tenant-by'] !== undefined) throw new UsageError('--tenant and --tenant-by exclude each other')
  return {
    configFile: values.config as string | undefined,
    printConfig: values['print-config'] === true,
    checkConfig: values['check-config'] === true,
    help: values.help === true,
    values
  }
}

function integer(name: string, text: string | boolean | undefined, min: number, max: number): number | undefined {
  if (typeof text !== 'string') return undefined
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} must be an integer, got "${text}"`)
  const value = Number(text)
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${value}`)
  return value
}

function seconds(name: string, text: string | boolean | undefined): number | undefined {
  if (typeof text !== 'string') return undefined
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${name} must be a number of seconds, got "${text}"`)
  return Number(text)
}

/** The index of the first listener of `kind` in the file's raw `listeners`, or -1. */
function firstOf(data: unknown, kind: string): { index: number; count: number } {
  const listeners = (data as { listeners?: unknown } | null)?.listeners
  if (!Array.isArray(listeners)) return { index: -1, count: 0 }
  return { index: listeners.findIndex((l) => (l as { kind?: unknown } | null)?.kind === kind), count: listeners.length }
}

/**
 * The overrides the flags make to `fileData` (the file's raw contents, `{}` without a file).
 * Listener flags: `--host`/`--port` set the first `tcp` listener (one named `mqtt` is added when
 * there is none), `--ws-port` the first `ws` listener (one named `ws` on path `/mqtt` is added);
 * `--host` applies to both. Throws `UsageError` for a malformed value.
 */
export function flagOverrides(cli: CommandLine, fileData: unknown): Override[] {
  const v = cli.values
  const out: Override[] = []
  const set = (flag: string, path: (string | number)[], value: unknown): void => {
    if (value !== undefined) out.push({ path, value, origin: `--${flag}` })
  }
  const fileListeners = (fileData as { listeners?: unknown } | null)?.listeners
  const hasListeners = Array.isArray(fileListeners)
  const logLevel = v['log-level']
  if (typeof logLevel === 'string' && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`)
  }
  const logFormat = v['log-format']
  if (typeof logFormat === 'string' && logFormat !== 'text' && logFormat !== 'json') {
    throw new UsageError(`--log-format must be text or json, got "${logFormat}"`)
  }
  if (v.host === '') throw new UsageError('--host must not be empty')
  const port = integer('port', v.port, 0, 65535)
  const wsPort = integer('ws-port', v['ws-port'], 0, 65535)
  const redis = v.redis
  if (typeof redis === 'string' && !/^rediss?:\/\/./.test(redis)) throw new UsageError(`--redis must be a redis:// or rediss:// URL, got "${redis}"`)
  const tenantBy = v['tenant-by']
  if (tenantBy !== undefined && tenantBy !== 'username' && tenantBy !== 'client-id') {
    throw new UsageError(`--tenant-by must be "username" or "client-id", got "${String(tenantBy)}"`)
  }
  const numbers = {
    max_packet_size: integer('max-packet-size', v['max-packet-size'], 2, MAX_PACKET_SIZE),
    topic_alias_maximum: integer('topic-alias-maximum', v['topic-alias-maximum'], 0, 65535),
    max_session_expiry_interval: integer('max-session-expiry', v['max-session-expiry'], 0, 0xffff_ffff),
    sys_interval: integer('sys-interval', v['sys-interval'], 0, 86_400)
  }
  const shutdown = seconds('shutdown-timeout', v['shutdown-timeout'])
  const workers = integer('workers', v.workers, 1, 256)

  // Listeners: without a file's list, the default one (tcp on 127.0.0.1:1883) is what flags change;
  // a `listeners` that is not a list is left for the schema to report.
  if (fileListeners === undefined) out.push({ path: ['listeners'], value: [{ name: 'mqtt', kind: 'tcp' }], origin: '(default listener)' })
  if (fileListeners === undefined || hasListeners) listenerOverrides(v, fileData, hasListeners, port, wsPort, set, out)
  if (v['allow-anonymous'] === true) set('allow-anonymous', ['allow_anonymous'], true)
  set('log-level', ['log', 'level'], logLevel)
  set('log-format', ['log', 'format'], logFormat)
  set('shutdown-timeout', ['shutdown_timeout'], shutdown)
  set('workers', ['workers'], workers)
  set('max-packet-size', ['broker', 'max_packet_size'], numbers.max_packet_size)
  set('topic-alias-maximum', ['broker', 'topic_alias_maximum'], numbers.topic_alias_maximum)
  set('max-session-expiry', ['broker', 'max_session_expiry_interval'], numbers.max_session_expiry_interval)
  set('sys-interval', ['broker', 'sys_interval'], numbers.sys_interval)
  for (const [flag, key] of Object.entries(BROKER_LIMITS)) set(flag, ['broker', key], integer(flag, v[flag], 0, Number.MAX_SAFE_INTEGER))
  const fileBackend = (fileData as { backend?: { type?: unknown } } | null)?.backend?.type
  const store = typeof redis === 'string' || fileBackend === 'redis' ? 'redis' : 'memory'
  for (const [flag, key] of Object.entries(BACKEND_LIMITS)) set(flag, ['backend', store, key], integer(flag, v[flag], 0, Number.MAX_SAFE_INTEGER))
  if (typeof redis === 'string') {
    set('redis', ['backend', 'type'], 'redis')
    set('redis', ['backend', 'redis', 'url'], redis)
  }
  set('node-id', ['backend', 'redis', 'node_id'], v['node-id'])
  set('redis-prefix', ['backend', 'redis', 'prefix'], v['redis-prefix'])
  if (tenantBy !== undefined) set('tenant-by', ['tenancy', 'by'], tenantBy === 'client-id' ? 'client_id' : 'username')
  if (typeof v.tenant === 'string') {
    set('tenant', ['tenancy', 'by'], 'fixed')
    set('tenant', ['tenancy', 'tenant'], v.tenant)
  }
  return out
}

/** `--host`, `--port`, `--ws-port` on the first tcp / ws listener (added when missing). */
function listenerOverrides(
  v: CommandLine['values'],
  fileData: unknown,
  hasListeners: boolean,
  port: number | undefined,
  wsPort: number | undefined,
  set: (flag: string, path: (string | number)[], value: unknown) => void,
  out: Override[]
): void {
  const tcp = firstOf(fileData, 'tcp')
  let count = hasListeners ? tcp.count : 1
  const tcpIndex = hasListeners ? tcp.index : 0
  if (v.host !== undefined || port !== undefined) {
    const index = tcpIndex >= 0 ? tcpIndex : count++
    if (tcpIndex < 0) out.push({ path: ['listeners', index], value: { name: 'mqtt', kind: 'tcp' }, origin: '--port' })
    set('host', ['listeners', index, 'host'], v.host)
    set('port', ['listeners', index, 'port'], port)
  }
  if (wsPort !== undefined) {
    const ws = firstOf(fileData, 'ws')
    const index = ws.index >= 0 ? ws.index : count++
    if (ws.index < 0) out.push({ path: ['listeners', index], value: { name: 'ws', kind: 'ws', path: '/mqtt' }, origin: '--ws-port' })
    set('host', ['listeners', index, 'host'], v.host)
    set('ws-port', ['listeners', index, 'port'], wsPort)
  }
}

/** Environment variables read, and what each sets. */
export const ENVIRONMENT = {
  MQTT_BROKER_REDIS_URL: 'backend.redis.url (and backend.type: redis)',
  MQTT_BROKER_NODE_ID: 'backend.redis.node_id',
  MQTT_BROKER_TLS_PASSPHRASE: 'tls.passphrase of every tls and wss listener',
  'MQTT_BROKER_TLS_PASSPHRASE_<NAME>': 'tls.passphrase of the listener named NAME (upper case, - and . as _)',
  MQTT_BROKER_HTTP_TLS_PASSPHRASE: 'http.tls.passphrase (HTTPS on its own port; else MQTT_BROKER_TLS_PASSPHRASE applies to it too)',
  MQTT_BROKER_LOG_LEVEL: 'log.level',
  MQTT_BROKER_LOG_FORMAT: 'log.format',
  MQTT_BROKER_HTTP_TOKEN: 'http.auth.tokens: bearer tokens added (several: separated by commas or spaces)',
  MQTT_BROKER_HTTP_USERNAME: 'http.auth.users: a basic-authentication user added (with MQTT_BROKER_HTTP_PASSWORD)',
  MQTT_BROKER_HTTP_PASSWORD: "http.auth.users: that user's password (plain, or a scrypt$ hash)"
} as const

/** The environment variables as `--help` lists them (after `USAGE`). */
export const ENVIRONMENT_HELP =
  'Environment (secrets need not be in the file; masked by --print-config):\n' +
  Object.entries(ENVIRONMENT).map(([name, what]) => `  ${name}: ${what}\n`).join('')

/**
 * The HTTP credentials of the environment, added to those of the `http:` section (when there is
 * one: they never start an HTTP listener), so that secrets need not be written in the file.
 * `MQTT_BROKER_HTTP_TOKEN`: bearer tokens, separated by commas or white space.
 * `MQTT_BROKER_HTTP_USERNAME` and `MQTT_BROKER_HTTP_PASSWORD`: one basic-authentication user
 * (replacing a user of that name in the file); one without the other is a usage error.
 */
function httpCredentials(read: (name: string) => string | undefined, data: unknown): Override[] {
  const username = read('MQTT_BROKER_HTTP_USERNAME')
  const password = read('MQTT_BROKER_HTTP_PASSWORD')
  if ((username === undefined) !== (password === undefined)) {
    throw new UsageError('MQTT_BROKER_HTTP_USERNAME and MQTT_BROKER_HTTP_PASSWORD go together: set both, or neither')
  }
  const tokens = read('MQTT_BROKER_HTTP_TOKEN')?.split(/[\s,]+/).filter((t) => t.length > 0) ?? []
  const http = (data as { http?: unknown } | null)?.http
  if (typeof http !== 'object' || http === null || Array.isArray(http)) return []
  const auth = (http as { auth?: unknown }).auth
  const inFile = typeof auth === 'object' && auth !== null ? (auth as { tokens?: unknown; users?: unknown }) : {}
  const out: Override[] = []
  if (tokens.length > 0) {
    const before = Array.isArray(inFile.tokens) ? (inFile.tokens as unknown[]) : []
    out.push({ path: ['http', 'auth', 'tokens'], value: [...new Set([...before, ...tokens])], origin: 'MQTT_BROKER_HTTP_TOKEN' })
  }
  if (username !== undefined && password !== undefined) {
    const before = Array.isArray(inFile.users) ? (inFile.users as unknown[]) : []
    const others = before.filter((u) => (u as { username?: unknown } | null)?.username !== username)
    out.push({ path: ['http', 'auth', 'users'], value: [...others, { username, password }], origin: 'MQTT_BROKER_HTTP_USERNAME' })
  }
  return out
}

/** The environment-variable suffix of a listener name: `edge-tls.1` → `EDGE_TLS_1`. */
export function envName(listener: string): string {
  return listener.toUpperCase().replace(/[^A-Z0-9]/g, '_')
}

/**
 * The overrides the environment makes, on top of `data` (the file with flags applied). Empty
 * variables are ignored. Values are checked by the schema like any other.
 */
export function environmentOverrides(env: NodeJS.ProcessEnv, data: unknown): Override[] {
  const out: Override[] = []
  const read = (name: string): string | undefined => {
    const value = env[name]
    return value === undefined || value === '' ? undefined : value
  }
  const url = read('MQTT_BROKER_REDIS_URL')
  if (url !== undefined) {
    out.push({ path: ['backend', 'type'], value: 'redis', origin: 'MQTT_BROKER_REDIS_URL' })
    out.push({ path: ['backend', 'redis', 'url'], value: url, origin: 'MQTT_BROKER_REDIS_URL' })
  }
  const nodeId = read('MQTT_BROKER_NODE_ID')
  if (nodeId !== undefined) out.push({ path: ['backend', 'redis', 'node_id'], value: nodeId, origin: 'MQTT_BROKER_NODE_ID' })
  const level = read('MQTT_BROKER_LOG_LEVEL')
  if (level !== undefined) out.push({ path: ['log', 'level'], value: level, origin: 'MQTT_BROKER_LOG_LEVEL' })
  const format = read('MQTT_BROKER_LOG_FORMAT')
  if (format !== undefined) out.push({ path: ['log', 'format'], value: format, origin: 'MQTT_BROKER_LOG_FORMAT' })
  out.push(...httpCredentials(read, data))
  const listeners = (data as { listeners?: unknown } | null)?.listeners
  if (Array.isArray(listeners)) {
    const all = read('MQTT_BROKER_TLS_PASSPHRASE')
    listeners.forEach((listener: unknown, i) => {
      const l = listener as { kind?: unknown; name?: unknown; tls?: unknown } | null
      if ((l?.kind !== 'tls' && l?.kind !== 'wss') || typeof l.tls !== 'object' || l.tls === null) return
      const own = typeof l.name === 'string' ? `MQTT_BROKER_TLS_PASSPHRASE_${envName(l.name)}` : undefined
      const value = (own === undefined ? undefined : read(own)) ?? all
      if (value !== undefined) out.push({ path: ['listeners', i, 'tls', 'passphrase'], value, origin: own !== undefined && read(own) !== undefined ? own : 'MQTT_BROKER_TLS_PASSPHRASE' })
    })
  }
  out.push(...httpPassphrase(read, data))
  return out
}

/**
 * The passphrase of the HTTPS key (`http.tls`): `MQTT_BROKER_HTTP_TLS_PASSPHRASE`, else the one of
 * every TLS listener, `MQTT_BROKER_TLS_PASSPHRASE`; over the file's. Nothing without `http.tls`.
 */
function httpPassphrase(read: (name: string) => string | undefined, data: unknown): Override[] {
  const http = (data as { http?: unknown } | null)?.http
  const tls = typeof http === 'object' && http !== null ? (http as { tls?: unknown }).tls : undefined
  if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) return []
  const own = read('MQTT_BROKER_HTTP_TLS_PASSPHRASE')
  const value = own ?? read('MQTT_BROKER_TLS_PASSPHRASE')
  if (value === undefined) return []
  return [{ path: ['http', 'tls', 'passphrase'], value, origin: own !== undefined ? 'MQTT_BROKER_HTTP_TLS_PASSPHRASE' : 'MQTT_BROKER_TLS_PASSPHRASE' }]
}
