import { createHash } from 'node:crypto'
import { RESP_TYPES } from '@redis/client'
import type { RedisArgument } from '@redis/client'
import { BackendUnavailableError } from '../errors.js'
import { MqttError, SessionTakenOverError } from '../../packet/errors.js'

/**
 * The few members of a node-redis (`@redis/client` 5) client the backend uses. `keyv.store.client`
 * of `@keyv/redis` 5 is such a client. Redis Cluster and Sentinel clients (which `@keyv/redis` 5
 * accepts) are not supported yet: their `sendCommand` takes other arguments, and a Sentinel client
 * has no `duplicate()` for the blocking connections.
 */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  sendCommand<T = unknown>(args: ReadonlyArray<RedisArgument>, options?: { typeMapping?: object; timeout?: number }): Promise<T>
  duplicate(): RedisClientLike
  connect(): Promise<unknown>
  destroy(): void
  close(): Promise<void>
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
}

/** Reply type mapping that keeps every bulk string as a Buffer (byte-exact binary payloads). */
export const BINARY = { [RESP_TYPES.BLOB_STRING]: Buffer } as const

// Declared with the other errors of the contract (lib/backend/errors.ts); kept importable from here.
export { BackendUnavailableError } from '../errors.js'

/** The most items of one batched script call (bounds how long Redis runs one script). */
export const BATCH_MAX = 128

/**
 * Batched items sent and not yet answered beyond which the link is `congested` (16 full batches:
 * enough to keep Redis busy, see `congested`).
 */
export const CONGESTED_ITEMS = 2048

interface Waiter {
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
}

interface Batch {
  source: string
  keys: readonly RedisArgument[]
  head: readonly RedisArgument[]
  args: RedisArgument[]
  /** The Buffer arguments of the items, in order: sent as one argument (see `batched`). */
  bytes: Buffer[]
  waiters: Waiter[]
  timer: ReturnType<typeof setImmediate>
}

/** Events a `RedisLink` reports. */
export type LinkEvent = { type: 'unavailable'; error: unknown } | { type: 'available' }

/**
 * The command connection of the backend: sends commands (binary replies, a per-command timeout),
 * runs Lua scripts by SHA with a fallback to EVAL, tracks availability (one `unavailable` event per
 * outage, one `available` when it is back) and refuses commands at once while Redis is away
 * instead of queueing them.
 *
 * Errors: a command refused because Redis is away, timed out, or lost with its connection rejects
 * with `BackendUnavailableError`; a script that answers `FENCED …` rejects with
 * `SessionTakenOverError`; other Redis errors are passed through.
 */
export class RedisLink {
  readonly client: RedisClientLike
  readonly timeout: number
  #available = true
  #loading: Promise<void> | undefined = undefined
  readonly #scripts: readonly string[]
  readonly #shas = new Map<string, string>()
  readonly #onEvent: (event: LinkEvent) => void
  readonly #onError = (error: unknown): void => {
    if (!this.#available) return
    this.#available = false
    this.#onEvent({ type: 'unavailable', error })
  }
  readonly #onReady = (): void => {
    if (!this.#available) this.#recover()
  }
  /**
   * Commands awaiting their reply, with a deadline on a coarse clock: one sweep timer for all
   * (a per-command `timeout` of node-redis costs an AbortSignal and a timer per command).
   */
  readonly #pending = new Set<{ deadline: number; reject: (error: unknown) => void }>()
  #clock = Date.now()
  /** An overdue verdict is waiting for the loop to read the replies that came (see `#sweep`). */
  #confirming = false
  readonly #sweeper: ReturnType<typeof setInterval>
  /** The script calls being gathered into one (see `batched`), sent before any other command. */
  #batch: Batch | undefined = undefined
  /** Batched items added and not answered yet (gathered or sent). */
  #unanswered = 0
  /** When each batched call not answered yet was sent (coarse clock), oldest first: replies come in order. */
  readonly #sentAt: number[] = []
  #sentHead = 0

  /**
   * @param scripts every Lua script the backend runs: loaded at start and again after each
   *   reconnect, before the link reports itself available (a restarted Redis forgot them, and an
   *   EVALSHA answered NOSCRIPT would be retried after commands sent later: out of order).
   */
  constructor(client: RedisClientLike, timeout: number, onEvent: (event: LinkEvent) => void, scripts: readonly string[] = []) {
    this.client = client
    this.timeout = timeout
    this.#onEvent = onEvent
    this.#scripts = scripts
    for (const source of scripts) this.#shas.set(source, createHash('sha1').update(source).digest('hex'))
    client.on('error', this.#onError)
    client.on('ready', this.#onReady)
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.min(250, timeout / 4)))
    this.#sweeper.unref()
  }

  /**
   * Fails the commands whose reply is overdue (their outcome is unknown). A reply may be waiting
   * unread: timers run before the loop reads its sockets, so after a busy stretch of the event
   * loop the sweep would see commands as overdue whose replies came in time. The verdict is given
   * after the loop has read what arrived (`setImmediate` runs after the poll phase).
   */
  #sweep(): void {
    this.#clock = Date.now()
    // Declared unavailable by a timeout while the connection stayed up: no 'ready' event will
    // come, and operations refuse without sending anything (`NodeContext.use`): try again here.
    if (!this.#available && this.#loading === undefined && this.client.isReady) this.#recover()
    if (this.#confirming) return
    let suspects: { deadline: number; reject: (error: unknown) => void }[] | undefined
    for (const entry of this.#pending) if (entry.deadline <= this.#clock) (suspects ??= []).push(entry)
    if (suspects === undefined) return
    this.#confirming = true
    setImmediate(() => {
      this.#confirming = false
      let overdue = false
      for (const entry of suspects) {
        if (!this.#pending.delete(entry)) continue
        overdue = true
        entry.reject(new BackendUnavailableError(`the Redis backend did not answer within ${this.timeout} ms`))
      }
      if (overdue) this.#onError(new Error('a Redis command timed out'))
    })
  }

  /** Resolves with the reply of `sent`, or rejects (translated) when it fails or is overdue. */
  #guard<T>(sent: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { deadline: Date.now() + this.timeout, reject }
      this.#pending.add(entry)
      sent.then(
        (value) => {
          if (this.#pending.delete(entry)) resolve(value)
        },
        (error: unknown) => {
          if (this.#pending.delete(entry)) reject(this.#translate(error))
        }
      )
    })
  }

  /** Loads every script (SCRIPT LOAD). */
  async loadScripts(): Promise<void> {
    await Promise.all(this.#scripts.map((source) => this.client.sendCommand(['SCRIPT', 'LOAD', source], { timeout: this.timeout })))
  }

  /** Whether commands can be sent now. */
  get available(): boolean {
    return this.#available && this.client.isReady
  }

  /** Stops listening to the client's events. */
  detach(): void {
    this.flush()
    clearInterval(this.#sweeper)
    this.client.off('error', this.#onError)
    this.client.off('ready', this.#onReady)
  }

  /** The connection is ready again: reload the scripts, then report the link available. */
  #recover(): void {
    if (this.#loading !== undefined) return
    this.#loading = this.loadScripts().then(
      () => {
        this.#loading = undefined
        if (this.#available || !this.client.isReady) return
        this.#available = true
        this.#onEvent({ type: 'available' })
      },
      () => {
        // Lost again while loading: the next 'ready' tries again.
        this.#loading = undefined
      }
    )
  }

  #refuse(): BackendUnavailableError {
    if (this.client.isReady) this.#recover()
    else this.#onError(new Error('the Redis connection is not ready'))
    return new BackendUnavailableError('the Redis backend is unavailable')
  }

  /**
   * Whether Redis (or the way to it) is behind: more than `CONGESTED_ITEMS` batched items wait for
   * their reply, or the oldest batched call has waited a quarter of the command timeout. A caller
   * that would not wait for its reply (a QoS 0 publish) should then wait: back-pressure, so that
   * what Redis has yet to do stays bounded instead of growing into a backlog that outlasts the
   * command timeout (which would report Redis unavailable and refuse everything after it).
   */
  get congested(): boolean {
    if (this.#unanswered > CONGESTED_ITEMS) return true
    const oldest = this.#sentAt[this.#sentHead]
    return oldest !== undefined && this.#clock - oldest > this.timeout / 4
  }

  /** A batched call was answered (or failed): the oldest sent. */
  #answered(items: number): void {
    this.#unanswered -= items
    this.#sentHead++
    if (this.#sentHead === this.#sentAt.length) {
      this.#sentAt.length = 0
      this.#sentHead = 0
    }
  }

  /** Sends one command; bulk strings come back as Buffers. */
  async send<T = unknown>(args: ReadonlyArray<RedisArgument>): Promise<T> {
    if (this.#batch !== undefined) this.flush()
    if (!this.#available || !this.client.isReady) throw this.#refuse()
    return await this.#guard(this.client.sendCommand<T>(args, { typeMapping: BINARY }))
  }

  /** Sends one command; bulk strings come back as JS strings (UTF-8). */
  async sendText<T = unknown>(args: ReadonlyArray<RedisArgument>): Promise<T> {
    if (this.#batch !== undefined) this.flush()
    if (!this.#available || !this.client.isReady) throw this.#refuse()
    return await this.#guard(this.client.sendCommand<T>(args))
  }

  /** Runs a Lua script (EVALSHA, loading it on NOSCRIPT). Bulk replies are Buffers. */
  async script<T = unknown>(source: string, keys: readonly RedisArgument[], args: readonly RedisArgument[]): Promise<T> {
    let sha = this.#shas.get(source)
    if (sha === undefined) {
      sha = createHash('sha1').update(source).digest('hex')
      this.#shas.set(source, sha)
    }
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.send<T>(['EVALSHA', sha, ...tail])
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
      return await this.send<T>(['EVAL', source, ...tail])
    }
  }

  /**
   * Adds one item to a batched call of the script `source`, which takes `keys` and the arguments
   * `head`, the number of items, the bytes of the items' Buffer arguments (all concatenated, in
   * order), then each item as its length followed by its arguments, a Buffer argument replaced
   * by its byte length (the script cuts it from the concatenation), and answers one reply per item,
   * in order. One concatenated argument instead of one per message: node-redis writes each Buffer
   * argument as two socket writes of its own (a 128-message call was ~260 writes). Items added in one event-loop turn go in one call (at
   * most `BATCH_MAX`), sent at the end of the turn (when node-redis writes) or as soon as any other
   * command is sent through this link, so commands reach Redis in the order they were issued.
   * Resolves with the item's reply; every item of a call fails with it (a failed call is atomic
   * as a whole only for what Redis applies: use scripts that cannot fail midway).
   */
  batched<T = unknown>(source: string, keys: readonly RedisArgument[], head: readonly RedisArgument[], item: readonly RedisArgument[]): Promise<T> {
    let batch = this.#batch
    if (batch !== undefined && (batch.source !== source || batch.keys !== keys || batch.head !== head)) {
      this.flush()
      batch = undefined
    }
    if (batch === undefined) {
      batch = { source, keys, head, args: [], bytes: [], waiters: [], timer: setImmediate(() => this.flush()) }
      this.#batch = batch
    }
    const args = batch.args
    this.#unanswered++
    args.push(String(item.length))
    for (let i = 0; i < item.length; i++) {
      const arg = item[i] as RedisArgument
      if (typeof arg === 'string') args.push(arg)
      else {
        batch.bytes.push(arg)
        args.push(String(arg.length))
      }
    }
    const promise = new Promise<T>((resolve, reject) => {
      ;(batch as Batch).waiters.push({ resolve: resolve as (value: unknown) => void, reject })
    })
    if (batch.waiters.length >= BATCH_MAX) this.flush()
    return promise
  }

  /** Sends the batched call being gathered, if any (see `batched`). */
  flush(): void {
    const batch = this.#batch
    if (batch === undefined) return
    this.#batch = undefined
    clearImmediate(batch.timer)
    const { waiters } = batch
    this.#sentAt.push(Date.now())
    const bytes = batch.bytes.length === 1 ? (batch.bytes[0] as Buffer) : Buffer.concat(batch.bytes)
    this.script<unknown[]>(batch.source, batch.keys, [...batch.head, String(waiters.length), bytes, ...batch.args]).then(
      (replies) => {
        this.#answered(waiters.length)
        for (let i = 0; i < waiters.length; i++) (waiters[i] as Waiter).resolve(replies[i])
      },
      (error: unknown) => {
        this.#answered(waiters.length)
        for (const waiter of waiters) waiter.reject(error)
      }
    )
  }

  #translate(error: unknown): unknown {
    if (error instanceof MqttError) return error
    const message = error instanceof Error ? error.message : String(error)
    const name = error instanceof Error ? error.name : ''
    if (message.startsWith('FENCED') || message.includes('FENCED')) {
      return new SessionTakenOverError('the session belongs to another connection (fenced by its epoch)', { cause: error })
    }
    if (
      name === 'TimeoutError' ||
      name === 'SocketClosedUnexpectedlyError' ||
      name === 'ClientOfflineError' ||
      name === 'ClientClosedError' ||
      name === 'ConnectionTimeoutError' ||
      /ECONNREFUSED|ECONNRESET|EPIPE|closed|offline/i.test(message)
    ) {
      this.#onError(error)
      return new BackendUnavailableError(`the Redis backend is unavailable: ${message}`, error)
    }
    return error
  }
}
