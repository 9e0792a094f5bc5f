/**
 * Users and ACL rules per tenant in Redis, shared by every broker process and changed at runtime:
 * a change made through one process (or the `passwd --redis` command) is effective on all of them
 * within a second, without a restart.
 *
 * Keys (`prefix` default `mqtt-auth`; the default tenant is written `-`):
 * - `{prefix}:users:{tenant}` — hash: user name → JSON `{ "hash": "$scrypt$...", "acl"?: [...],
 *   "scram"?: "$scram-sha-256$..." }` (hash formats of password-hash.ts);
 * - `{prefix}:rules:{tenant}` — string: JSON list of the tenant's ACL rules (for all its users);
 * - `{prefix}:version` — counter, bumped by every change;
 * - channel `{prefix}:changed` — every change publishes its tenant there.
 *
 * Each process keeps the tenants it has seen in memory (so that ACL checks stay synchronous and
 * cheap), re-reads a tenant when a change message names it, and polls `{prefix}:version` every
 * `pollMs` (default 1000) to catch a message it missed, and re-reads every tenant it knows when
 * its connections come back after an outage. A tenant not yet in memory waits at most `waitMs` for
 * Redis (a request fails past it: the CONNECT gets 0x88 Server unavailable). After a re-read,
 * `onChange` listeners run: `AccessControl` then recomputes every connection's ACL.
 */
import { createClient } from '@redis/client'
import { ReasonCode } from '../packet/reason-codes.js'
import { checkAclRule } from './acl.js'
import type { AclRule } from './acl.js'
import type { Authenticator, AuthRequest, AuthVerdict } from './authenticator.js'
import { dummyHash, hashPassword, parseHash, verifyPassword } from './password-hash.js'
import type { ParsedHash } from './password-hash.js'
import { createScramCredentials } from './scram.js'
import type { ScramCredentials } from './scram.js'
import { formatScram, isValidFileUsername, parsePasswordFile } from './password-file.js'

/** Options of a `RedisUserStore`. */
export interface RedisUserStoreOptions {
  /** `redis://host:port`. */
  url: string
  /** Key prefix (default `mqtt-auth`). */
  prefix?: string
  /** How often to compare `{prefix}:version` (ms, default 1000; 0: never, pub/sub only). */
  pollMs?: number
  /**
   * How long a tenant not yet in memory may wait for Redis (ms, default 3000): past it, the request
   * fails (the CONNECT is refused with 0x88 Server unavailable, 3.1.1: return code 3) instead of
   * waiting for Redis to come back.
   */
  waitMs?: number
}

interface StoredUser {
  hash: string
  acl?: AclRule[]
  scram?: string
}

interface User {
  hash: ParsedHash
  acl: AclRule[] | undefined
  scram: ScramCredentials | undefined
}

interface Tenant {
  users: Map<string, User>
  rules: AclRule[]
}

type Client = ReturnType<typeof createClient>

/** Back-off between connection attempts (ms): node-redis' default, 50 ms doubling up to 2 s, plus up to 200 ms of jitter. */
const retryDelay = (attempt: number): number => Math.min(2 ** attempt * 50, 2000) + Math.floor(Math.random() * 200)

const DEFAULT_TENANT = '-'
const tenantKey = (tenant: string | undefined): string => tenant ?? DEFAULT_TENANT

function parseUser(json: string): User | undefined {
  try {
    const stored = JSON.parse(json) as StoredUser
    const user: User = { hash: parseHash(stored.hash), acl: undefined, scram: undefined }
    if (Array.isArray(stored.acl)) {
      stored.acl.forEach((rule, i) => checkAclRule(rule, `rule ${i + 1}`))
      user.acl = stored.acl
    }
    if (typeof stored.scram === 'string') user.scram = parsePasswordFile(`u:${stored.hash}:${stored.scram}`).get('u')?.scram
    return user
  } catch {
    // A malformed entry is no user: it cannot log in (and nothing else breaks).
    return undefined
  }
}

export class RedisUserStore implements Authenticator {
  readonly name = 'redis'
  readonly #prefix: string
  readonly #client: Client
  readonly #subscriber: Client
  readonly #pollMs: number
  readonly #waitMs: number
  readonly #tenants = new Map<string, Tenant>()
  readonly #listeners: (() => void)[] = []
  #version: string | null = null
  #timer: ReturnType<typeof setInterval> | undefined
  /** The connection loop of each client while one runs (see `#connect`). */
  readonly #connecting = new Map<Client, Promise<void>>()
  /** The waits between connection attempts: close() ends them. */
  readonly #waits = new Map<ReturnType<typeof setTimeout>, () => void>()
  #dummy: ParsedHash = dummyHash()
  #ready: Promise<void>
  #closed = false

  constructor(options: RedisUserStoreOptions) {
    this.#prefix = options.prefix ?? 'mqtt-auth'
    this.#pollMs = options.pollMs ?? 1000
    this.#waitMs = options.waitMs ?? 3000
    // No reconnection by node-redis: it waits between attempts on a timer that destroy() does not
    // clear, so a closed store would hold the process up to ~2 s (for good, to a script that
    // expects it to end). The store reconnects on timers of its own, which close() clears.
    this.#client = createClient({ url: options.url, socket: { reconnectStrategy: false } })
    this.#subscriber = this.#client.duplicate()
    for (const client of [this.#client, this.#subscriber]) {
      // A connection lost (node-redis closed the client, giving up at once): connect it again.
      client.on('error', () => {
        if (!client.isOpen && !this.#closed) void this.#connect(client).catch(() => undefined)
      })
      // Reconnected after an outage: the change messages of the gap are lost, and a Redis that
      // lost its data counts versions from 0 again (the same number may mean other data): re-read
      // everything known.
      let connected = false
      client.on('ready', () => {
        if (connected) void this.#resync()
        connected = true
      })
    }
    this.#ready = this.#start()
    this.#ready.catch(() => undefined)
  }

  /**
   * Connects `client`, trying again with back-off until it is connected (resolves) or the store is
   * closed (rejects). One loop per client at a time: a second call joins the running one.
   */
  #connect(client: Client): Promise<void> {
    let running = this.#connecting.get(client)
    if (running === undefined) {
      running = (async () => {
        for (let attempt = 0; ; attempt++) {
          if (this.#closed) throw new Error('the user store was closed')
          try {
            await client.connect()
            return
          } catch {
            // Refused or lost during the handshake (the error event said it): wait, try again.
          }
          await this.#wait(retryDelay(attempt))
        }
      })().finally(() => this.#connecting.delete(client))
      this.#connecting.set(client, running)
    }
    return running
  }

  /**
   * Resolves once the command client is connected again when an outage closed it (its connection
   * loop runs; the caller bounds the wait): node-redis does not queue commands on a closed client.
   */
  #open(): Promise<void> {
    const client = this.#client
    if (client.isReady || this.#closed) return Promise.resolve()
    const running = this.#connecting.get(client)
    if (running !== undefined) return running
    return client.isOpen ? Promise.resolve() : this.#connect(client)
  }

  /** Resolves after `ms`, or at once when the store is closed. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.#closed) return resolve()
      const timer = setTimeout(() => {
        this.#waits.delete(timer)
        resolve()
      }, ms)
      this.#waits.set(timer, resolve)
    })
  }

  async #start(): Promise<void> {
    await Promise.all([this.#connect(this.#client), this.#connect(this.#subscriber)])
    if (this.#closed) throw new Error('the user store was closed')
    await this.#subscriber.subscribe(`${this.#prefix}:changed`, (tenant) => void this.#refresh([tenant]))
    this.#version = await this.#client.get(`${this.#prefix}:version`)
    if (this.#pollMs > 0 && !this.#closed) {
      this.#timer = setInterval(() => void this.#poll(), this.#pollMs)
      this.#timer.unref()
    }
  }

  /** Resolves once connected to Redis (rejects when it cannot connect). */
  ready(): Promise<void> {
    return this.#ready
  }

  async #poll(): Promise<void> {
    try {
      const version = await this.#client.get(`${this.#prefix}:version`)
      if (version !== this.#version) {
        this.#version = version
        await this.#refresh([...this.#tenants.keys()])
      }
    } catch {
      // Redis away: keep what we know; the next poll tries again.
    }
  }

  /** After a reconnection: take the version now and re-read every known tenant. */
  async #resync(): Promise<void> {
    try {
      this.#version = await this.#client.get(`${this.#prefix}:version`)
      await this.#refresh([...this.#tenants.keys()])
    } catch {
      // Away again: the next reconnection tries again.
    }
  }

  /** Re-read the tenants named (if this process knows them), then tell the listeners. */
  async #refresh(keys: string[]): Promise<void> {
    const known = keys.filter((key) => this.#tenants.has(key))
    for (const key of known) this.#tenants.set(key, await this.#load(key))
    if (known.length > 0) for (const listener of this.#listeners) listener()
  }

  async #load(key: string): Promise<Tenant> {
    const [users, rules] = await Promise.all([
      this.#client.hGetAll(`${this.#prefix}:users:${key}`),
      this.#client.get(`${this.#prefix}:rules:${key}`)
    ])
    const tenant: Tenant = { users: new Map(), rules: [] }
    for (const [name, json] of Object.entries(users)) {
      const user = parseUser(json)
      if (user !== undefined) tenant.users.set(name, user)
    }
    if (rules !== null) {
      try {
        const parsed = JSON.parse(rules) as AclRule[]
        parsed.forEach((rule, i) => checkAclRule(rule, `rule ${i + 1}`))
        tenant.rules = parsed
      } catch {
        tenant.rules = [{ filter: '#', access: 'deny' }, { filter: '$SYS/#', access: 'deny' }]
      }
    }
    return tenant
  }

  async #tenant(tenant: string | undefined): Promise<Tenant> {
    const key = tenantKey(tenant)
    let found = this.#tenants.get(key)
    if (found === undefined) {
      // Bounded: while Redis is away, commands wait for it; the client gets an answer meanwhile.
      let timer: ReturnType<typeof setTimeout> | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.#waitMs} ms`)), this.#waitMs)
      })
      try {
        found = await Promise.race([this.#ready.then(() => this.#open()).then(() => this.#load(key)), timeout])
      } finally {
        clearTimeout(timer)
      }
      this.#tenants.set(key, found)
    }
    return found
  }

  onChange(listener: () => void): void {
    this.#listeners.push(listener)
  }

  async authenticate(request: AuthRequest): Promise<AuthVerdict> {
    const { username, password } = request
    if (username === undefined || password === undefined) return { result: 'ignore' }
    const user = (await this.#tenant(request.tenant)).users.get(username)
    if (user === undefined) {
      await verifyPassword(this.#dummy, password.toString('utf8'))
      return { result: 'ignore' }
    }
    if (await verifyPassword(user.hash, password.toString('utf8'))) return { result: 'allow', identity: { username } }
    return { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword }
  }

  hasUser(tenant: string | undefined, username: string): boolean | undefined {
    return this.#tenants.get(tenantKey(tenant))?.users.has(username)
  }

  userAcl(tenant: string | undefined, username: string): readonly AclRule[] | undefined {
    const known = this.#tenants.get(tenantKey(tenant))
    if (known === undefined) return undefined
    const own = known.users.get(username)?.acl ?? []
    return known.rules.length === 0 ? own : own.length === 0 ? known.rules : [...known.rules, ...own]
  }

  async scram(tenant: string | undefined, username: string): Promise<ScramCredentials | undefined> {
    return (await this.#tenant(tenant)).users.get(username)?.scram
  }

  async #changed(tenant: string | undefined): Promise<void> {
    this.#version = String(await this.#client.incr(`${this.#prefix}:version`))
    await this.#client.publish(`${this.#prefix}:changed`, tenantKey(tenant))
  }

  /** Add a user or change their password (and, when given, their ACL rules). */
  async setUser(tenant: string | undefined, username: string, password: string, options: { acl?: AclRule[]; scram?: boolean } = {}): Promise<void> {
    if (!isValidFileUsername(username)) throw new TypeError('a user name must not be empty nor hold ":" or control characters')
    options.acl?.forEach((rule, i) => checkAclRule(rule, `rule ${i + 1}`))
    await this.#ready
    const key = `${this.#prefix}:users:${tenantKey(tenant)}`
    const previous = await this.#client.hGet(key, username)
    const stored: StoredUser = { hash: await hashPassword(password) }
    const acl = options.acl ?? (previous === null ? undefined : (JSON.parse(previous) as StoredUser).acl)
    if (acl !== undefined) stored.acl = acl
    if (options.scram === true) stored.scram = formatScram(createScramCredentials(password))
    await this.#client.hSet(key, username, JSON.stringify(stored))
    await this.#changed(tenant)
  }

  /** Replace a user's own ACL rules. Throws when there is no such user. */
  async setUserAcl(tenant: string | undefined, username: string, acl: AclRule[]): Promise<void> {
    acl.forEach((rule, i) => checkAclRule(rule, `rule ${i + 1}`))
    await this.#ready
    const key = `${this.#prefix}:users:${tenantKey(tenant)}`
    const previous = await this.#client.hGet(key, username)
    if (previous === null) throw new Error(`no user ${JSON.stringify(username)}`)
    await this.#client.hSet(key, username, JSON.stringify({ ...(JSON.parse(previous) as StoredUser), acl }))
    await this.#changed(tenant)
  }

  /** Delete a user; resolves false when there was none. */
  async deleteUser(tenant: string | undefined, username: string): Promise<boolean> {
    await this.#ready
    const removed = await this.#client.hDel(`${this.#prefix}:users:${tenantKey(tenant)}`, username)
    await this.#changed(tenant)
    return removed > 0
  }

  /** Replace the ACL rules of a whole tenant. */
  async setTenantAcl(tenant: string | undefined, rules: AclRule[]): Promise<void> {
    rules.forEach((rule, i) => checkAclRule(rule, `rule ${i + 1}`))
    await this.#ready
    await this.#client.set(`${this.#prefix}:rules:${tenantKey(tenant)}`, JSON.stringify(rules))
    await this.#changed(tenant)
  }

  /** The user names of a tenant (read from Redis). */
  async usernames(tenant: string | undefined): Promise<string[]> {
    await this.#ready
    return await this.#client.hKeys(`${this.#prefix}:users:${tenantKey(tenant)}`)
  }

  /** Re-read every known tenant now (SIGHUP). */
  async reload(): Promise<void> {
    await this.#refresh([...this.#tenants.keys()])
  }

  /** Close the connections, at once, whether or not Redis was ever reached. */
  close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    for (const [timer, resolve] of this.#waits) {
      clearTimeout(timer)
      resolve()
    }
    this.#waits.clear()
    // Destroyed first: a store that never reached Redis would otherwise wait for it forever.
    for (const client of [this.#subscriber, this.#client]) {
      try {
        client.destroy()
      } catch {
        // Already closed.
      }
    }
    return Promise.resolve()
  }
}
