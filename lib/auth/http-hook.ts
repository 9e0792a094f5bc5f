/**
 * The HTTP authentication hook: the broker asks a web service whether to allow a CONNECT, a
 * PUBLISH or a SUBSCRIBE (as EMQX's and VerneMQ's webhooks do).
 *
 * Request: `POST url` with `Content-Type: application/json` and the body
 * `{ action, clientid, username, password?, topic?, qos?, retain?, tenant?, remote_address?,
 * listener?, protocol_level? }` (`password` only for `connect`, as UTF-8 text: use https).
 *
 * Answer:
 * - 2xx with `{"result": "allow" | "deny" | "ignore"}` (an empty body or no `result`: allow). A
 *   `connect` allow may add `"username"` (the user name ACL rules see) and `"acl": [{filter, access}]`.
 *   `ignore` leaves the decision to the next authenticator (connect) or to the ACL (publish, subscribe).
 * - 4xx: deny.
 * - 5xx, no answer within `timeoutMs`, or no connection: the service is down, and `onError` decides
 *   (default `deny`: fail closed; `allow`; or `ignore`: as if there were no hook).
 *
 * Publish and subscribe answers (not errors) are cached for `cacheTtlMs` per client, user, action
 * and topic; connect answers are never cached (they depend on the password).
 */
import { ReasonCode } from '../packet/reason-codes.js'
import { checkAclRule } from './acl.js'
import type { AclRule } from './acl.js'
import type { AuthorizeRequest, Authorizer, Authenticator, AuthRequest, AuthVerdict, Identity } from './authenticator.js'

export type HttpHookAction = 'connect' | 'publish' | 'subscribe'

/** Options of an `HttpAuthHook`. */
export interface HttpHookOptions {
  url: string
  /** Which actions are asked about (default all three). */
  actions?: HttpHookAction[]
  /** How long to wait for an answer (ms, default 2000). */
  timeoutMs?: number
  /** How long publish/subscribe answers are kept (ms, default 10,000; 0: none). */
  cacheTtlMs?: number
  /** Most cached answers (default 10,000). */
  cacheSize?: number
  /** What a failure (5xx, timeout, no connection) means (default 'deny'). */
  onError?: 'allow' | 'deny' | 'ignore'
  /** Extra request headers (an API key...). */
  headers?: Record<string, string>
}

/** Counters of an `HttpAuthHook`. */
export interface HttpHookStats {
  requests: number
  cacheHits: number
  /** Requests that failed (5xx, timeout, no connection): answered by `onError`. */
  failures: number
}

type Answer = { result: 'allow' | 'deny' | 'ignore'; username?: string; acl?: AclRule[] } | 'error'

export class HttpAuthHook implements Authenticator, Authorizer {
  readonly name = 'http'
  readonly #url: string
  readonly #actions: Set<HttpHookAction>
  readonly #timeout: number
  readonly #ttl: number
  readonly #cacheSize: number
  readonly #onError: 'allow' | 'deny' | 'ignore'
  readonly #headers: Record<string, string>
  readonly #cache = new Map<string, { result: 'allow' | 'deny' | 'ignore'; until: number }>()
  readonly stats: HttpHookStats = { requests: 0, cacheHits: 0, failures: 0 }

  constructor(options: HttpHookOptions) {
    const url = new URL(options.url)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('HTTP hook: the url must be http: or https:')
    this.#url = url.href
    this.#actions = new Set(options.actions ?? ['connect', 'publish', 'subscribe'])
    this.#timeout = options.timeoutMs ?? 2000
    this.#ttl = options.cacheTtlMs ?? 10_000
    this.#cacheSize = options.cacheSize ?? 10_000
    this.#onError = options.onError ?? 'deny'
    this.#headers = options.headers ?? {}
  }

  async #post(body: Record<string, unknown>): Promise<Answer> {
    this.stats.requests++
    try {
      const response = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.#headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.#timeout)
      })
      const text = await response.text()
      if (response.status >= 500) return this.#failed()
      if (response.status >= 400) return { result: 'deny' }
      if (response.status < 200 || response.status >= 300) return this.#failed()
      if (text.trim().length === 0) return { result: 'allow' }
      const parsed = JSON.parse(text) as { result?: unknown; username?: unknown; acl?: unknown }
      const result = parsed.result ?? 'allow'
      if (result !== 'allow' && result !== 'deny' && result !== 'ignore') return this.#failed()
      const answer: Answer = { result }
      if (typeof parsed.username === 'string' && parsed.username.length > 0) answer.username = parsed.username
      if (Array.isArray(parsed.acl)) {
        answer.acl = parsed.acl.map((r: unknown, i) => {
          const { filter, access } = (r ?? {}) as Partial<AclRule>
          const rule = { filter, access } as AclRule
          checkAclRule(rule, `HTTP hook ACL rule ${i + 1}`)
          return rule
        })
      }
      return answer
    } catch {
      // Timeout, refused connection, malformed JSON or rules: the service is not answering usefully.
      return this.#failed()
    }
  }

  #failed(): 'error' {
    this.stats.failures++
    return 'error'
  }

  async authenticate(request: AuthRequest): Promise<AuthVerdict> {
    if (!this.#actions.has('connect')) return { result: 'ignore' }
    const body: Record<string, unknown> = {
      action: 'connect',
      clientid: request.clientId,
      username: request.username,
      password: request.password?.toString('utf8'),
      tenant: request.tenant,
      remote_address: request.connection?.remoteAddress,
      listener: request.connection?.listener,
      protocol_level: request.protocolLevel
    }
    const answer = await this.#post(body)
    const result = answer === 'error' ? this.#onError : answer.result
    if (result === 'deny') return { result: 'deny', reasonCode: ReasonCode.NotAuthorized, reasonString: answer === 'error' ? 'authentication service unavailable' : 'not authorized' }
    if (result === 'ignore') return { result: 'ignore' }
    const identity: Identity = {}
    if (answer !== 'error' && answer.username !== undefined) identity.username = answer.username
    if (answer !== 'error' && answer.acl !== undefined) identity.acl = answer.acl
    return { result: 'allow', identity }
  }

  async authorize(request: AuthorizeRequest): Promise<'allow' | 'deny' | 'ignore'> {
    if (!this.#actions.has(request.action)) return 'ignore'
    const key = `${request.action}\u0000${request.tenant ?? ''}\u0000${request.clientId}\u0000${request.username ?? ''}\u0000${request.topic}`
    const now = Date.now()
    const cached = this.#cache.get(key)
    if (cached !== undefined && cached.until > now) {
      this.stats.cacheHits++
      return cached.result
    }
    const answer = await this.#post({
      action: request.action,
      clientid: request.clientId,
      username: request.username,
      tenant: request.tenant,
      topic: request.topic,
      qos: request.qos,
      retain: request.retain
    })
    if (answer === 'error') return this.#onError
    if (this.#ttl > 0) {
      if (this.#cache.size >= this.#cacheSize) this.#cache.clear()
      this.#cache.set(key, { result: answer.result, until: now + this.#ttl })
    }
    return answer.result
  }

  /** Forget cached answers (after a change in the service's rules). */
  clearCache(): void {
    this.#cache.clear()
  }

  reload(): void {
    this.clearCache()
  }
}
