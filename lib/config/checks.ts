/**
 * Checks a schema cannot express, run on the effective configuration before anything starts:
 * listener names and addresses, TLS files, trusted proxies, the Redis URL, tenancy references,
 * and the safe-default rule (no anonymous access on a non-loopback address unless asked for).
 */
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { isDeepStrictEqual } from 'node:util'
import { TrustedProxies } from '../transport/trusted-proxies.js'
import { anonymousAllowed, authenticationMethods } from './access.js'
import { formatKey } from './errors.js'
import type { ConfigIssue, ConfigPath } from './errors.js'
import type { Locate } from './load.js'
import type { BrokerConfig, ListenerEntry } from './schema.js'

/** True for addresses that only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '')
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h)
}

const WILDCARD = new Set(['0.0.0.0', '::', '', '[::]'])

/** Whether two hosts can collide on one port. */
function overlap(a: string, b: string): boolean {
  return a === b || WILDCARD.has(a) || WILDCARD.has(b)
}

/**
 * Whether clients are authenticated: `auth:` configures a password file, Redis users, JWT or an
 * HTTP hook (ACLs or connection rules alone authenticate nobody).
 */
export function hasAuthentication(config: BrokerConfig): boolean {
  return authenticationMethods(config).length > 0
}

/**
 * Every problem of `config` (defaults filled in, paths resolved), each at its place. Reads the
 * file system (TLS files must be readable) but binds nothing.
 */
export async function semanticIssues(config: BrokerConfig, locate: Locate): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = []
  const add = (path: ConfigPath, message: string): void => {
    issues.push({ place: locate(path), key: formatKey(path), message })
  }
  const listeners = config.listeners ?? []
  const names = new Map<string, number>()
  const reads: Promise<void>[] = []
  listeners.forEach((listener, i) => {
    const at = (...rest: (string | number)[]): ConfigPath => ['listeners', i, ...rest]
    const first = names.get(listener.name)
    if (first !== undefined) add(at('name'), `"${listener.name}" is already the name of listeners[${first}]`)
    else names.set(listener.name, i)
    if (listener.kind === 'unix') return
    try {
      new TrustedProxies(listener.trusted_proxies ?? [])
    } catch (error) {
      add(at('trusted_proxies'), (error as Error).message)
    }
    if ((listener.kind === 'tcp' || listener.kind === 'tls') && listener.proxy_protocol === true && (listener.trusted_proxies ?? []).length === 0) {
      add(at('proxy_protocol'), 'needs trusted_proxies: the addresses of the load balancers allowed to send PROXY headers')
    }
    if (listener.kind === 'tls' || listener.kind === 'wss') {
      const tls = listener.tls
      const mode = tls.client_certificates ?? 'none'
      if (mode !== 'none' && tls.ca === undefined) add(at('tls', 'client_certificates'), `"${mode}" needs tls.ca, the CA that client certificates must chain to`)
      if (tls.username_from !== undefined && mode === 'none') add(at('tls', 'username_from'), 'needs client_certificates: optional or required')
      for (const file of ['key', 'cert', 'ca'] as const) {
        const path = tls[file]
        if (path === undefined) continue
        reads.push(
          access(path, constants.R_OK).catch((error: NodeJS.ErrnoException) =>
            add(at('tls', file), `listener "${listener.name}": cannot read "${path}": ${error.code ?? error.message}`)
          )
        )
      }
    }
  })
  addressIssues(listeners, add)
  const backend = config.backend
  if (backend?.type === 'redis' && backend.redis?.url === undefined) {
    add(['backend', 'redis'], 'the redis backend needs url (or MQTT_BROKER_REDIS_URL, or --redis)')
  }
  if ((backend?.type ?? 'memory') === 'memory' && backend?.redis !== undefined) {
    for (const key of Object.keys(backend.redis)) add(['backend', 'redis', key], 'only used with the redis backend (backend.type: redis, or --redis)')
  }
  if (backend?.type === 'redis' && backend.memory !== undefined) {
    add(['backend', 'memory'], 'only used with the memory backend (backend.type: memory); the redis backend has its own limits under backend.redis')
  }
  tenancyIssues(config, names, add)
  httpIssues(config, reads, add)
  authFileIssues(config, reads, add)
  await Promise.all(reads)
  if (!hasAuthentication(config) && !anonymousAllowed(config)) {
    listeners.forEach((listener, i) => {
      if (listener.kind === 'unix') return
      const host = listener.host ?? '127.0.0.1'
      if (isLoopback(host)) return
      add(
        ['listeners', i, 'host'],
        `listener "${listener.name}" would accept anonymous clients from the network on ${host}: no authentication method is configured. ` +
          'Configure one under auth: (password_file, jwt, http or redis), or allow anonymous access explicitly with allow_anonymous: true (--allow-anonymous)'
      )
    })
  }
  return issues
}

function addressIssues(listeners: readonly ListenerEntry[], add: (path: ConfigPath, message: string) => void): void {
  listeners.forEach((b, j) => {
    for (let i = 0; i < j; i++) {
      const a = listeners[i]!
      if (a.kind === 'unix' || b.kind === 'unix') {
        if (a.kind === 'unix' && b.kind === 'unix' && a.path === b.path) add(['listeners', j, 'path'], `listener "${b.name}": socket ${b.path} is also listeners[${i}] "${a.name}"'s`)
        continue
      }
      const port = b.port ?? 0
      if (port === 0 || port !== a.port || !overlap(a.host ?? '127.0.0.1', b.host ?? '127.0.0.1')) continue
      // WebSocket listeners share one HTTP(S) server on one port, one path each.
      const shared =
        (a.kind === 'ws' && b.kind === 'ws') || (a.kind === 'wss' && b.kind === 'wss' && isDeepStrictEqual(a.tls, b.tls))
      if (shared && (a.host ?? '127.0.0.1') === (b.host ?? '127.0.0.1')) {
        if ((a as { path?: string }).path === (b as { path?: string }).path) {
          add(['listeners', j, 'path'], `listener "${b.name}": path ${String((b as { path?: string }).path)} on port ${port} is also listeners[${i}] "${a.name}"'s`)
        }
        continue
      }
      add(['listeners', j, 'port'], `listener "${b.name}": port ${port} is also used by listeners[${i}] "${a.name}" (${a.kind} on ${a.host ?? '127.0.0.1'})`)
    }
  })
}

/** The files `auth:` names must be readable (they are read at start, and again on SIGHUP). */
function authFileIssues(config: BrokerConfig, reads: Promise<void>[], add: (path: ConfigPath, message: string) => void): void {
  const auth = config.auth
  if (auth === undefined) return
  const files: [ConfigPath, string][] = []
  for (const key of ['password_file', 'acl_file'] as const) {
    const value = auth[key]
    if (typeof value === 'string') files.push([['auth', key], value])
    else value?.forEach((path, i) => files.push([['auth', key, i], path]))
  }
  for (const key of ['public_key_file', 'jwks_file'] as const) {
    const path = auth.jwt?.[key]
    if (path !== undefined) files.push([['auth', 'jwt', key], path])
  }
  for (const [at, path] of files) {
    reads.push(access(path, constants.R_OK).catch((error: NodeJS.ErrnoException) => add(at, `cannot read "${path}": ${error.code ?? error.message}`)))
  }
}

/** Whether the `http:` section serves anything. */
export function httpEnabled(config: BrokerConfig): boolean {
  return config.http !== undefined && config.http.enabled !== false
}

/**
 * `http:`: the listener it mounts on, its TLS files, its port against the MQTT listeners', and the
 * safe-default rule: reachable beyond loopback only with credentials or `http.allow_anonymous`.
 */
function httpIssues(config: BrokerConfig, reads: Promise<void>[], add: (path: ConfigPath, message: string) => void): void {
  const http = config.http
  if (http === undefined || !httpEnabled(config)) return
  const listeners = config.listeners ?? []
  let host = http.host ?? '127.0.0.1'
  if (http.listener !== undefined) {
    const target = listeners.find((l) => l.name === http.listener)
    if (target === undefined) add(['http', 'listener'], `no listener is named "${http.listener}"`)
    else if (target.kind !== 'ws' && target.kind !== 'wss') add(['http', 'listener'], `listener "${target.name}" is ${target.kind}: the HTTP endpoints mount on a ws or wss listener`)
    else host = target.host ?? '127.0.0.1'
    if (http.tls !== undefined) add(['http', 'tls'], 'not with http.listener: the endpoints use that listener\'s server (and TLS)')
  } else {
    const port = http.port ?? 0
    listeners.forEach((l, i) => {
      if (l.kind === 'unix' || port === 0 || l.port !== port || !overlap(l.host ?? '127.0.0.1', host)) return
      add(['http', 'port'], `port ${port} is also used by listeners[${i}] "${l.name}" (to share a ws listener's port, set http.listener: ${l.name})`)
    })
    for (const file of ['key', 'cert', 'ca'] as const) {
      const path = http.tls?.[file]
      if (path === undefined) continue
      reads.push(access(path, constants.R_OK).catch((error: NodeJS.ErrnoException) => add(['http', 'tls', file], `cannot read "${path}": ${error.code ?? error.message}`)))
    }
  }
  const credentials = (http.auth?.tokens?.length ?? 0) > 0 || (http.auth?.users?.length ?? 0) > 0
  if (!credentials && http.allow_anonymous !== true && !isLoopback(host)) {
    add(
      http.listener === undefined ? ['http', 'host'] : ['http', 'listener'],
      `the HTTP endpoints (management API, metrics, dashboard) would be served on ${host} without credentials. ` +
        'Configure http.auth (tokens or users), or open them deliberately with http.allow_anonymous: true'
    )
  }
}

function tenancyIssues(config: BrokerConfig, names: Map<string, number>, add: (path: ConfigPath, message: string) => void): void {
  const tenancy = config.tenancy
  if (tenancy === undefined) return
  const by = tenancy.by ?? 'none'
  if (by === 'fixed' && tenancy.tenant === undefined) add(['tenancy'], 'by: fixed needs tenant')
  if (by !== 'fixed' && tenancy.tenant !== undefined) add(['tenancy', 'tenant'], 'only for by: fixed')
  if (by === 'listener') {
    if (tenancy.listeners === undefined) add(['tenancy'], 'by: listener needs listeners (listener name: tenant)')
    for (const name of Object.keys(tenancy.listeners ?? {})) {
      if (!names.has(name)) add(['tenancy', 'listeners', name], `no listener is named "${name}"`)
    }
  } else if (tenancy.listeners !== undefined) {
    add(['tenancy', 'listeners'], 'only for by: listener')
  }
  if (tenancy.separator !== undefined && by !== 'username' && by !== 'client_id') add(['tenancy', 'separator'], 'only for by: username or client_id')
}
