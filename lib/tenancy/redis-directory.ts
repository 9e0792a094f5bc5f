import { createClient } from '@redis/client'
import type { TenantDirectory } from './directory.js'
import { fieldTenant, tenantField } from './directory.js'

/** Options of a `RedisTenantDirectory`: a Redis URL (own connection) or a client to borrow. */
export interface RedisTenantDirectoryOptions {
  /** `redis://host:port`: the directory opens one connection of its own, closed by `close()`. */
  url?: string
  /**
   * A connected node-redis (`@redis/client` 5) client to send the commands on instead (e.g. one
   * the application keeps); never closed by the directory.
   */
  client?: DirectoryClient
  /**
   * The HASH that holds the directory (default `mq:_:tenants`, next to the node-level keys of a
   * `KeyvBackend` with the default `prefix`). Every process of a cluster must use the same key;
   * two clusters on one Redis need two keys.
   */
  key?: string
  /** Most time a command may take (ms, default 5000); then it rejects. */
  timeout?: number
}

/** The one member of a node-redis client the directory uses. */
export interface DirectoryClient {
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>
}

/** Forgets a tenant only if its generation did not change since it was read (atomic in Redis). */
const FORGET = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0`

/** The directory's own connection (no offline queue, no reconnection timers: see the class). */
function openClient(url: string) {
  const client = createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: false } })
  // Errors reach the command that failed; the event alone must not crash the process.
  client.on('error', () => undefined)
  return client
}

type Client = ReturnType<typeof openClient>

/**
 * A `TenantDirectory` in one Redis HASH, `key`: tenant id ('' for the default tenant) → generation.
 * `record` is one HINCRBY, `entries` one HGETALL (the hash holds one field per tenant with sessions,
 * so a listing reads what it lists, never the keyspace), `forget` one conditional HDEL script.
 *
 * With `url`, the connection is opened on first use and opened again by the next command after it
 * was lost (no reconnection timers: nothing outlives `close()`); a command while Redis is
 * unreachable rejects at once.
 */
export class RedisTenantDirectory implements TenantDirectory {
  readonly key: string
  readonly #own: Client | undefined
  readonly #client: DirectoryClient
  readonly #timeout: number
  #connecting: Promise<unknown> | undefined = undefined
  #closed = false

  constructor(options: RedisTenantDirectoryOptions) {
    const key = options.key ?? 'mq:_:tenants'
    if (typeof key !== 'string' || key === '') throw new TypeError('RedisTenantDirectory: key must be a non-empty string')
    this.key = key
    const timeout = options.timeout ?? 5000
    if (!Number.isInteger(timeout) || timeout <= 0) throw new TypeError('RedisTenantDirectory: timeout must be a positive integer (ms)')
    this.#timeout = timeout
    if (options.client !== undefined) {
      this.#own = undefined
      this.#client = options.client
    } else if (typeof options.url === 'string' && options.url !== '') {
      const own = openClient(options.url)
      this.#own = own
      this.#client = own
    } else {
      throw new TypeError('RedisTenantDirectory: give a url or a client')
    }
  }

  async #send<T>(args: string[]): Promise<T> {
    if (this.#closed) throw new Error('the tenant directory is closed')
    const own = this.#own
    if (own !== undefined && !own.isReady) {
      this.#connecting ??= (own.isOpen ? Promise.resolve() : own.connect()).finally(() => {
        this.#connecting = undefined
      })
      await this.#connecting
    }
    return (await this.#client.sendCommand(args, { timeout: this.#timeout })) as T
  }

  async record(tenant: string | undefined): Promise<void> {
    await this.#send(['HINCRBY', this.key, tenantField(tenant), '1'])
  }

  async entries(): Promise<Map<string | undefined, string>> {
    const reply = await this.#send<unknown>(['HGETALL', this.key])
    // RESP2: a flat array; RESP3: a map (an object or a Map, by the client's type mapping).
    const pairs: [string, string][] = []
    if (Array.isArray(reply)) {
      for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), String(reply[i + 1])])
    } else if (reply instanceof Map) {
      for (const [field, value] of reply) pairs.push([String(field), String(value)])
    } else if (typeof reply === 'object' && reply !== null) {
      for (const [field, value] of Object.entries(reply)) pairs.push([field, String(value)])
    }
    const out = new Map<string | undefined, string>()
    for (const [field, generation] of pairs) {
      const tenant = fieldTenant(field)
      if (tenant !== null) out.set(tenant, generation)
    }
    return out
  }

  async forget(tenant: string | undefined, generation: string): Promise<boolean> {
    return Number(await this.#send(['EVAL', FORGET, '1', this.key, tenantField(tenant), generation])) === 1
  }

  /** Closes the directory's own connection (a borrowed client stays open). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const own = this.#own
    if (own === undefined) return
    await this.#connecting?.catch(() => undefined)
    if (own.isOpen) await own.close().catch(() => own.destroy())
  }
}
