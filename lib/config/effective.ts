/**
 * The effective configuration: the file, then command-line flags, then environment variables
 * (each overriding the one before), then the schema's defaults. Each override remembers where it
 * came from, so that a bad value is reported at its flag or variable rather than in the file.
 */
import { isAbsolute, resolve } from 'node:path'
import { formatKey } from './errors.js'
import type { ConfigPath } from './errors.js'
import type { Locate } from './load.js'
import { CONFIG_SCHEMA } from './schema.js'
import type { BrokerConfig } from './schema.js'

/** One value set from outside the file. */
export interface Override {
  readonly path: ConfigPath
  readonly value: unknown
  /** `--port`, `MQTT_BROKER_REDIS_URL`, `(default)`… */
  readonly origin: string
}

type Json = Record<string, unknown>

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Sets `path` to `value` in `data` (creating maps on the way). */
function setIn(data: Json, path: ConfigPath, value: unknown): void {
  let node: Json | unknown[] = data
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i]!
    const next = (node as Record<string | number, unknown>)[part]
    if (typeof next === 'object' && next !== null) {
      node = next as Json
    } else {
      const made: Json = {}
      ;(node as Record<string | number, unknown>)[part] = made
      node = made
    }
  }
  ;(node as Record<string | number, unknown>)[path[path.length - 1]!] = value
}

/**
 * Applies `overrides` in order to a copy of `data`. Answers the data and a `Locate` that names an
 * override's origin for any key at or under its path, and asks `fileLocate` otherwise.
 */
export function applyOverrides(data: unknown, overrides: readonly Override[], fileLocate: Locate): { data: unknown; locate: Locate } {
  const copy = structuredClone(isObject(data) ? data : data ?? {}) as unknown
  if (isObject(copy)) for (const override of overrides) setIn(copy, override.path, structuredClone(override.value))
  const locate: Locate = (path) => {
    let best: Override | undefined
    for (const override of overrides) {
      const p = override.path
      if (p.length <= path.length && p.every((part, i) => part === path[i]) && (best === undefined || p.length >= best.path.length)) best = override
    }
    return best === undefined ? fileLocate(path) : best.origin
  }
  return { data: copy, locate }
}

type Schema = Record<string, unknown>

/** Sections shown (with their defaults) even when the file leaves them out. */
const ALWAYS = new Set(['log', 'broker', 'backend', 'tenancy'])

function fill(value: Json, schema: Schema, top: boolean): void {
  if (Array.isArray(schema.oneOf) && isObject(schema.discriminator)) {
    const tag = (schema.discriminator as { propertyName: string }).propertyName
    const branch = (schema.oneOf as Schema[]).find((b) => ((b.properties as Json)[tag] as { const?: unknown }).const === value[tag])
    if (branch !== undefined) fill(value, branch, false)
    return
  }
  const properties = (schema.properties ?? {}) as Record<string, Schema>
  for (const [key, sub] of Object.entries(properties)) {
    if (value[key] === undefined && 'default' in sub) value[key] = structuredClone(sub.default)
    if (value[key] === undefined && top && ALWAYS.has(key)) value[key] = {}
    const child = value[key]
    if (isObject(child) && sub.type === 'object') fill(child, sub, false)
    if (Array.isArray(child) && isObject(sub.items)) for (const item of child) if (isObject(item)) fill(item, sub.items as Schema, false)
  }
  // The settings of the backend in use are shown.
  for (const type of ['memory', 'redis']) {
    if (value.type === type && properties[type] !== undefined) fill((value[type] ??= {}) as Json, properties[type], false)
  }
}

/** `value` with its keys in the order of `schema` (then any others, e.g. under `auth:`). */
function ordered(value: unknown, schema: Schema | undefined): unknown {
  if (Array.isArray(value)) return value.map((item) => ordered(item, schema?.items as Schema | undefined))
  if (!isObject(value) || schema === undefined) return value
  if (Array.isArray(schema.oneOf) && isObject(schema.discriminator)) {
    const tag = (schema.discriminator as { propertyName: string }).propertyName
    const branch = (schema.oneOf as Schema[]).find((b) => ((b.properties as Json)[tag] as { const?: unknown }).const === value[tag])
    return ordered(value, branch)
  }
  const properties = (schema.properties ?? {}) as Record<string, Schema>
  const out: Json = {}
  for (const key of Object.keys(properties)) if (value[key] !== undefined) out[key] = ordered(value[key], properties[key])
  for (const key of Object.keys(value)) if (!(key in out)) out[key] = value[key]
  return out
}

/**
 * A copy of a valid configuration with every default filled in (what the broker runs with), its
 * keys in the schema's order.
 */
export function withDefaults(config: BrokerConfig): BrokerConfig {
  const copy = structuredClone(config) as unknown as Json
  fill(copy, CONFIG_SCHEMA as unknown as Schema, true)
  return ordered(copy, CONFIG_SCHEMA as unknown as Schema) as BrokerConfig
}

/** Makes relative file paths of listeners (TLS files, Unix socket), of `auth:` and of `http.tls` to `base` (the file's folder). */
export function resolvePaths(config: BrokerConfig, base: string): BrokerConfig {
  const copy = structuredClone(config)
  const abs = (path: string): string => (isAbsolute(path) ? path : resolve(base, path))
  for (const listener of copy.listeners ?? []) {
    if (listener.kind === 'unix') listener.path = abs(listener.path)
    if (listener.kind === 'tls' || listener.kind === 'wss') {
      listener.tls.key = abs(listener.tls.key)
      listener.tls.cert = abs(listener.tls.cert)
      if (listener.tls.ca !== undefined) listener.tls.ca = abs(listener.tls.ca)
    }
  }
  const auth = copy.auth
  if (auth !== undefined) {
    const absAll = (value: string | string[] | undefined): string | string[] | undefined =>
      value === undefined ? undefined : Array.isArray(value) ? value.map(abs) : abs(value)
    if (auth.password_file !== undefined) auth.password_file = absAll(auth.password_file)!
    if (auth.acl_file !== undefined) auth.acl_file = absAll(auth.acl_file)!
    if (auth.jwt?.public_key_file !== undefined) auth.jwt.public_key_file = abs(auth.jwt.public_key_file)
    if (auth.jwt?.jwks_file !== undefined) auth.jwt.jwks_file = abs(auth.jwt.jwks_file)
  }
  const httpTls = copy.http?.tls
  if (httpTls !== undefined) {
    httpTls.key = abs(httpTls.key)
    httpTls.cert = abs(httpTls.cert)
    if (httpTls.ca !== undefined) httpTls.ca = abs(httpTls.ca)
  }
  return copy
}

// `headers` (of the auth HTTP hook) often carry an Authorization value.
const SECRET_KEY = /passphrase|password|secret|token|private_key|^headers$/i
const MASK = '********'

function maskValue(key: string, value: unknown): unknown {
  if (SECRET_KEY.test(key) && value !== undefined && value !== null) return MASK
  if (key === 'url' && typeof value === 'string') return maskUrl(value)
  if (Array.isArray(value)) return value.map((item) => maskValue('', item))
  if (isObject(value)) {
    const out: Json = {}
    for (const [k, v] of Object.entries(value)) out[k] = maskValue(k, v)
    return out
  }
  return value
}

/** A URL with its password (and a user name given alone, Redis's AUTH form) replaced by `********`. */
export function maskUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return url
  }
  if (parsed.password.length > 0) parsed.password = MASK
  else if (parsed.username.length > 0) parsed.username = MASK
  return parsed.toString()
}

/**
 * A copy fit to print: passphrases, passwords, secrets and tokens (any key so named, anywhere,
 * `auth:` included) and the password of URLs are masked.
 */
export function maskSecrets(config: BrokerConfig): BrokerConfig {
  return maskValue('', config) as BrokerConfig
}

/** The key of `path` (re-exported for callers that build overrides). */
export const keyOf = formatKey
