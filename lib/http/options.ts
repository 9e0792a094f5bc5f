import { readFileSync } from 'node:fs'
import type { SecureContextOptions } from 'node:tls'

/** A user of HTTP basic authentication. */
export interface HttpUser {
  username: string
  /**
   * The password: plain text, or a scrypt hash as `scrypt$<N>$<r>$<p>$<salt base64>$<hash base64>`
   * (`hashHttpPassword` makes one; configuration files should hold hashes).
   */
  password: string
}

/** Who may use the HTTP endpoints. */
export interface HttpAuthOptions {
  /** Bearer tokens (`Authorization: Bearer <token>`). */
  tokens?: string[]
  /** Basic authentication users (`Authorization: Basic ...`). */
  users?: HttpUser[]
}

/** Options of the HTTP handler (`createHttpHandler`). All optional. */
export interface HttpOptions {
  /**
   * Credentials. Without any, only requests from loopback addresses (127.0.0.0/8, ::1) are served,
   * unless `allowAnonymous` is true.
   */
  auth?: HttpAuthOptions
  /** Serve requests without credentials from any address (default false). Deliberately open. */
  allowAnonymous?: boolean
  /** `/healthz` and `/readyz` without credentials, for probes (default true). */
  publicHealth?: boolean
  /** `/metrics` without credentials (default false). */
  publicMetrics?: boolean
  /** Serve the dashboard at `/` (default true). */
  dashboard?: boolean
  /** Serve the REST management API under `/api/v1` (default true). */
  api?: boolean
  /** Serve `/metrics` (default true). */
  metrics?: boolean
  /**
   * Most tenants that get their own metric series (label `tenant`); the rest are summed under
   * `tenant="_other"` (default 100; 0: no per-tenant series).
   */
  metricsTenantLimit?: number
  /** Collect prom-client's default Node.js metrics: event-loop lag, GC, heap, CPU (default true). */
  defaultMetrics?: boolean
  /** Listeners that must be bound for `/readyz` (default 1). */
  minListeners?: number
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodySize?: number
  /** Path prefix when the handler is mounted under one on a shared server, e.g. `/admin` (default none). */
  basePath?: string
}

/** Options of `listenHttp`: the handler's, plus where to listen. */
export interface HttpListenOptions extends HttpOptions {
  /** Interface (default 127.0.0.1: loopback only). */
  host?: string
  /** Port (default 8081; 0 picks a free one). */
  port?: number
  /** Serve HTTPS with these TLS options (key, cert, ca, ... as Node's `tls.createSecureContext` takes). */
  tls?: SecureContextOptions
}

/** The default HTTP port. */
export const DEFAULT_HTTP_PORT = 8081

/** The `http:` section of the configuration file, in snake_case (see `httpConfigSchema`). */
export interface HttpConfig {
  enabled?: boolean
  host?: string
  port?: number
  tls?: { key: string; cert: string; ca?: string; passphrase?: string; min_version?: 'TLSv1.2' | 'TLSv1.3'; watch?: boolean }
  auth?: { tokens?: string[]; users?: { username: string; password: string }[] }
  allow_anonymous?: boolean
  public_health?: boolean
  public_metrics?: boolean
  dashboard?: boolean
  api?: boolean
  metrics?: boolean
  metrics_tenant_limit?: number
  default_metrics?: boolean
  min_listeners?: number
  max_body_size?: number
  base_path?: string
}

/**
 * An ajv (draft-07 / 2019-09 / 2020-12) JSON Schema for the `http:` configuration section. Every
 * key is optional; unknown keys are refused.
 */
export const httpConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'boolean', default: true, description: 'Serve the HTTP endpoints' },
    host: { type: 'string', minLength: 1, default: '127.0.0.1', description: 'Interface to bind (loopback by default)' },
    port: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULT_HTTP_PORT },
    tls: {
      type: 'object',
      additionalProperties: false,
      required: ['key', 'cert'],
      description: 'Serve HTTPS: PEM files',
      properties: {
        key: { type: 'string', minLength: 1, description: 'Private key file (PEM)' },
        cert: { type: 'string', minLength: 1, description: 'Certificate chain file (PEM)' },
        ca: { type: 'string', minLength: 1, description: 'CA file (PEM)' },
        passphrase: { type: 'string', description: 'Passphrase of the key' },
        min_version: { enum: ['TLSv1.2', 'TLSv1.3'], default: 'TLSv1.2' },
        watch: { type: 'boolean', default: true, description: 'Re-read the files when they change on disk (SIGHUP re-reads them anyway)' }
      }
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      properties: {
        tokens: { type: 'array', items: { type: 'string', minLength: 16 }, description: 'Bearer tokens (at least 16 characters)' },
        users: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['username', 'password'],
            properties: {
              username: { type: 'string', minLength: 1, pattern: '^[^:]+$' },
              password: { type: 'string', minLength: 1, description: 'scrypt$N$r$p$salt$hash (or plain text)' }
            }
          }
        }
      }
    },
    allow_anonymous: { type: 'boolean', default: false, description: 'Serve requests without credentials from any address' },
    public_health: { type: 'boolean', default: true },
    public_metrics: { type: 'boolean', default: false },
    dashboard: { type: 'boolean', default: true },
    api: { type: 'boolean', default: true },
    metrics: { type: 'boolean', default: true },
    metrics_tenant_limit: { type: 'integer', minimum: 0, maximum: 100000, default: 100 },
    default_metrics: { type: 'boolean', default: true },
    min_listeners: { type: 'integer', minimum: 0, default: 1 },
    max_body_size: { type: 'integer', minimum: 1024, maximum: 104857600, default: 1048576 },
    base_path: { type: 'string', pattern: '^(/[A-Za-z0-9._~-]+)*$', default: '' }
  }
} as const

/**
 * The `listenHttp` options of a validated `http:` section. TLS files are read here (an unreadable
 * file throws with its path). `readFile` is for tests.
 */
export function httpOptionsFromConfig(config: HttpConfig, readFile: (path: string) => Buffer = (path) => readFileSync(path)): HttpListenOptions {
  const out: HttpListenOptions = {}
  if (config.host !== undefined) out.host = config.host
  if (config.port !== undefined) out.port = config.port
  if (config.tls !== undefined) {
    const t = config.tls
    const tls: SecureContextOptions = { key: readFile(t.key), cert: readFile(t.cert), minVersion: t.min_version ?? 'TLSv1.2' }
    if (t.ca !== undefined) tls.ca = readFile(t.ca)
    if (t.passphrase !== undefined) tls.passphrase = t.passphrase
    out.tls = tls
  }
  if (config.auth !== undefined) {
    const auth: HttpAuthOptions = {}
    if (config.auth.tokens !== undefined) auth.tokens = [...config.auth.tokens]
    if (config.auth.users !== undefined) auth.users = config.auth.users.map((u) => ({ username: u.username, password: u.password }))
    out.auth = auth
  }
  if (config.allow_anonymous !== undefined) out.allowAnonymous = config.allow_anonymous
  if (config.public_health !== undefined) out.publicHealth = config.public_health
  if (config.public_metrics !== undefined) out.publicMetrics = config.public_metrics
  if (config.dashboard !== undefined) out.dashboard = config.dashboard
  if (config.api !== undefined) out.api = config.api
  if (config.metrics !== undefined) out.metrics = config.metrics
  if (config.metrics_tenant_limit !== undefined) out.metricsTenantLimit = config.metrics_tenant_limit
  if (config.default_metrics !== undefined) out.defaultMetrics = config.default_metrics
  if (config.min_listeners !== undefined) out.minListeners = config.min_listeners
  if (config.max_body_size !== undefined) out.maxBodySize = config.max_body_size
  if (config.base_path !== undefined && config.base_path !== '') out.basePath = config.base_path
  return out
}
