/**
 * The `auth:` section of a configuration: the access control of lib/auth (password files, rules,
 * ACLs, JWT, HTTP hook, users in Redis) wrapped around the broker's backend. See docs/security.md.
 */
import { withAccessControl } from '../auth/access-backend.js'
import type { AccessControlBackend } from '../auth/access-backend.js'
import type { AccessControl } from '../auth/access-control.js'
import { accessControlFromConfig } from '../auth/config.js'
import type { AuthConfig } from '../auth/config.js'
import type { Backend } from '../backend/backend.js'
import type { Logger } from '../broker/logger.js'
import type { BrokerConfig } from './schema.js'

/** The keys of `auth:` that authenticate clients. */
const METHODS = ['password_file', 'redis', 'jwt', 'http'] as const

/** The authentication methods `config.auth` configures (`password_file`, `redis`, `jwt`, `http`). */
export function authenticationMethods(config: BrokerConfig): string[] {
  const auth = config.auth
  if (auth === undefined) return []
  return METHODS.filter((key) => auth[key] !== undefined)
}

/** Whether anonymous clients were allowed explicitly (`allow_anonymous`, top level or under `auth:`). */
export function anonymousAllowed(config: BrokerConfig): boolean {
  return config.allow_anonymous === true || config.auth?.allow_anonymous === true
}

/**
 * The `AccessControl` of `config.auth` (undefined without an `auth:` section: every client is
 * allowed, as the engine does alone). The top-level `allow_anonymous: true` lets clients without a
 * user name in unless `auth.allow_anonymous` says otherwise. Paths are absolute already
 * (`resolvePaths`). Throws an Error naming the key when a file cannot be read or used.
 */
export function accessControl(config: BrokerConfig, logger: Logger | undefined): AccessControl | undefined {
  if (config.auth === undefined) return undefined
  const section: AuthConfig = { ...config.auth }
  if (section.allow_anonymous === undefined && config.allow_anonymous === true) section.allow_anonymous = true
  return accessControlFromConfig(section, { baseDir: process.cwd(), ...(logger === undefined ? {} : { logger }) })
}

/**
 * `backend` with `access` around it (the backend itself without). The access counters are
 * published under `sysPrefix/auth/...` every `sysIntervalMs` (0: never).
 */
export function guardBackend(backend: Backend, access: AccessControl | undefined, sysPrefix: string, sysIntervalMs: number): Backend | AccessControlBackend {
  if (access === undefined) return backend
  return withAccessControl(backend, access, { sysPrefix, sysIntervalMs })
}
