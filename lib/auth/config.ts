/**
 * The `auth:` section of the configuration file: its JSON Schema (a fragment the configuration
 * loader plugs in under `properties.auth`) and the function building an `AccessControl` from it.
 * Relative paths are resolved against the configuration file's folder. See docs/security.md.
 */
import { resolve } from 'node:path'
import type { Logger } from '../broker/logger.js'
import type { AclRule } from './acl.js'
import { AccessControl } from './access-control.js'
import type { Authenticator, Authorizer } from './authenticator.js'
import type { ConnectionRule } from './connection-rules.js'
import { HttpAuthHook } from './http-hook.js'
import type { HttpHookAction } from './http-hook.js'
import { JwtAuthenticator } from './jwt.js'
import type { JwtOptions } from './jwt.js'
import { PasswordFile } from './password-file.js'
import { RedisUserStore } from './redis-store.js'

/** The `auth:` section, as the schema allows it. */
export interface AuthConfig {
  allow_anonymous?: boolean
  password_file?: string | string[]
  acl_file?: string | string[]
  acl?: { filter: string; access: AclRule['access']; user?: string; client?: string; tenant?: string }[]
  acl_default?: 'allow' | 'deny'
  connection_rules?: ConnectionRule[]
  connection_default?: 'allow' | 'deny'
  jwt?: {
    secret?: string
    secret_env?: string
    public_key_file?: string
    jwks_file?: string
    algorithms?: string[]
    issuer?: string | string[]
    audience?: string | string[]
    clock_tolerance_sec?: number
    username_claim?: string
    tenant_claim?: string
    acl_claim?: string
    require_expiry?: boolean
  }
  http?: {
    url: string
    actions?: HttpHookAction[]
    timeout_ms?: number
    cache_ttl_ms?: number
    cache_size?: number
    on_error?: 'allow' | 'deny' | 'ignore'
    headers?: Record<string, string>
  }
  redis?: { url: string; prefix?: string; poll_ms?: number; wait_ms?: number }
  brute_force?:
    | false
    | { free_attempts?: number; window_ms?: number; delay_ms?: number; max_delay_ms?: number; max_addresses?: number }
  scram?: boolean
  /** The order authenticators are asked in (default: password_file, redis, jwt, http). */
  order?: ('password_file' | 'redis' | 'jwt' | 'http')[]
}

const stringOrList = { oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] }
const allowDeny = { type: 'string', enum: ['allow', 'deny'] }
const positiveInt = { type: 'integer', minimum: 0 }

/** JSON Schema (draft-07, ajv) of the `auth:` section. */
export const authConfigSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Access control: who may connect and what they may touch (docs/security.md).',
  properties: {
    allow_anonymous: { type: 'boolean', description: 'Allow CONNECTs without user name (default: only when no authenticator is configured).' },
    password_file: { ...stringOrList, description: 'Password file(s): user:hash lines ($scrypt$, Mosquitto $7$/$6$).' },
    acl_file: { ...stringOrList, description: 'ACL file(s) in Mosquitto format.' },
    acl: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['filter', 'access'],
        properties: {
          filter: { type: 'string', minLength: 1 },
          access: { type: 'string', enum: ['read', 'write', 'readwrite', 'deny'] },
          user: { type: 'string' },
          client: { type: 'string' },
          tenant: { type: 'string' }
        }
      }
    },
    acl_default: allowDeny,
    connection_rules: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: {
          action: allowDeny,
          client_id: { type: 'string' },
          username: { type: 'string' },
          address: stringOrList,
          listener: { type: 'string' },
          certificate_subject: { type: 'string' },
          tenant: { type: 'string' }
        }
      }
    },
    connection_default: allowDeny,
    jwt: {
      type: 'object',
      additionalProperties: false,
      properties: {
        secret: { type: 'string', minLength: 16 },
        secret_env: { type: 'string', minLength: 1 },
        public_key_file: { type: 'string', minLength: 1 },
        jwks_file: { type: 'string', minLength: 1 },
        algorithms: { type: 'array', items: { type: 'string' }, minItems: 1 },
        issuer: stringOrList,
        audience: stringOrList,
        clock_tolerance_sec: positiveInt,
        username_claim: { type: 'string', minLength: 1 },
        tenant_claim: { type: 'string', minLength: 1 },
        acl_claim: { type: 'string', minLength: 1 },
        require_expiry: { type: 'boolean' }
      }
    },
    http: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        actions: { type: 'array', items: { type: 'string', enum: ['connect', 'publish', 'subscribe'] }, uniqueItems: true },
        timeout_ms: { type: 'integer', minimum: 1 },
        cache_ttl_ms: positiveInt,
        cache_size: { type: 'integer', minimum: 1 },
        on_error: { type: 'string', enum: ['allow', 'deny', 'ignore'] },
        headers: { type: 'object', additionalProperties: { type: 'string' } }
      }
    },
    redis: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^rediss?://' },
        prefix: { type: 'string', minLength: 1 },
        poll_ms: positiveInt,
        wait_ms: { type: 'integer', minimum: 1 }
      }
    },
    brute_force: {
      oneOf: [
        { type: 'boolean', enum: [false] },
        {
          type: 'object',
          additionalProperties: false,
          properties: {
            free_attempts: positiveInt,
            window_ms: { type: 'integer', minimum: 1 },
            delay_ms: positiveInt,
            max_delay_ms: positiveInt,
            max_addresses: { type: 'integer', minimum: 1 }
          }
        }
      ]
    },
    scram: { type: 'boolean' },
    order: {
      type: 'array',
      items: { type: 'string', enum: ['password_file', 'redis', 'jwt', 'http'] },
      uniqueItems: true
    }
  }
} as const

/** Options of `accessControlFromConfig`. */
export interface AuthConfigContext {
  /** The configuration file's folder: relative paths are resolved against it. */
  baseDir: string
  logger?: Logger
  /** Where `jwt.secret_env` is looked up (default `process.env`). */
  env?: Record<string, string | undefined>
}

const list = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value])

/**
 * Build the `AccessControl` of an `auth:` section (already validated against `authConfigSchema`).
 * Throws an Error naming the key when a file cannot be read or a value is not usable. Wrap the
 * broker's backend with it: `withAccessControl(backend, accessControl)`; call `reload()` on SIGHUP
 * and `close()` after the broker closed.
 */
export function accessControlFromConfig(config: AuthConfig, context: AuthConfigContext): AccessControl {
  const path = (p: string): string => resolve(context.baseDir, p)
  const made: Partial<Record<'password_file' | 'redis' | 'jwt' | 'http', Authenticator[]>> = {}
  const at = <T>(key: string, make: () => T): T => {
    try {
      return make()
    } catch (error) {
      throw new Error(`auth.${key}: ${(error as Error).message}`, { cause: error })
    }
  }
  const files = list(config.password_file)
  if (files.length > 0) made.password_file = at('password_file', () => files.map((f) => new PasswordFile(path(f))))
  let hook: HttpAuthHook | undefined
  if (config.http !== undefined) {
    const h = config.http
    hook = at('http', () =>
      new HttpAuthHook({
        url: h.url,
        ...(h.actions === undefined ? {} : { actions: h.actions }),
        ...(h.timeout_ms === undefined ? {} : { timeoutMs: h.timeout_ms }),
        ...(h.cache_ttl_ms === undefined ? {} : { cacheTtlMs: h.cache_ttl_ms }),
        ...(h.cache_size === undefined ? {} : { cacheSize: h.cache_size }),
        ...(h.on_error === undefined ? {} : { onError: h.on_error }),
        ...(h.headers === undefined ? {} : { headers: h.headers })
      })
    )
    made.http = [hook]
  }
  if (config.jwt !== undefined) {
    const j = config.jwt
    made.jwt = [
      at('jwt', () => {
        let secret = j.secret
        if (j.secret_env !== undefined) {
          secret = (context.env ?? process.env)[j.secret_env]
          if (secret === undefined) throw new Error(`environment variable ${j.secret_env} is not set`)
        }
        const options: JwtOptions = {}
        if (secret !== undefined) options.secret = secret
        if (j.public_key_file !== undefined) options.publicKeyFile = path(j.public_key_file)
        if (j.jwks_file !== undefined) options.jwksFile = path(j.jwks_file)
        if (j.algorithms !== undefined) options.algorithms = j.algorithms
        if (j.issuer !== undefined) options.issuer = j.issuer
        if (j.audience !== undefined) options.audience = j.audience
        if (j.clock_tolerance_sec !== undefined) options.clockToleranceSec = j.clock_tolerance_sec
        if (j.username_claim !== undefined) options.usernameClaim = j.username_claim
        if (j.tenant_claim !== undefined) options.tenantClaim = j.tenant_claim
        if (j.acl_claim !== undefined) options.aclClaim = j.acl_claim
        if (j.require_expiry !== undefined) options.requireExpiry = j.require_expiry
        return new JwtAuthenticator(options)
      })
    ]
  }
  // Last: nothing above connects anywhere, so a bad value elsewhere leaves no Redis connection open.
  if (config.redis !== undefined) {
    const r = config.redis
    made.redis = [
      new RedisUserStore({
        url: r.url,
        ...(r.prefix === undefined ? {} : { prefix: r.prefix }),
        ...(r.poll_ms === undefined ? {} : { pollMs: r.poll_ms }),
        ...(r.wait_ms === undefined ? {} : { waitMs: r.wait_ms })
      })
    ]
  }
  const order = config.order ?? ['password_file', 'redis', 'jwt', 'http']
  const authenticators = order.flatMap((key) => made[key] ?? [])
  // Configured but left out of `order`: still asked, after the ordered ones.
  for (const key of ['password_file', 'redis', 'jwt', 'http'] as const) if (!order.includes(key)) authenticators.push(...(made[key] ?? []))
  const authorizers: Authorizer[] = hook === undefined ? [] : [hook]
  const bf = config.brute_force
  try {
    return new AccessControl({
      authenticators,
      authorizers,
      ...(config.allow_anonymous === undefined ? {} : { allowAnonymous: config.allow_anonymous }),
      ...(config.connection_rules === undefined ? {} : { connectionRules: config.connection_rules }),
      ...(config.connection_default === undefined ? {} : { connectionDefault: config.connection_default }),
      ...(config.acl === undefined ? {} : { acl: config.acl }),
      aclFiles: list(config.acl_file).map(path),
      ...(config.acl_default === undefined ? {} : { aclDefault: config.acl_default }),
      bruteForce:
        bf === false
          ? false
          : {
              ...(bf?.free_attempts === undefined ? {} : { freeAttempts: bf.free_attempts }),
              ...(bf?.window_ms === undefined ? {} : { windowMs: bf.window_ms }),
              ...(bf?.delay_ms === undefined ? {} : { delayMs: bf.delay_ms }),
              ...(bf?.max_delay_ms === undefined ? {} : { maxDelayMs: bf.max_delay_ms }),
              ...(bf?.max_addresses === undefined ? {} : { maxAddresses: bf.max_addresses })
            },
      ...(config.scram === undefined ? {} : { scram: config.scram }),
      ...(context.logger === undefined ? {} : { logger: context.logger })
    })
  } catch (error) {
    for (const store of made.redis ?? []) void store.close?.()
    throw new Error(`auth: ${(error as Error).message}`, { cause: error })
  }
}
