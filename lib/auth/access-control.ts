/**
 * `AccessControl`: the policy — who may connect (connection rules, authenticators, SCRAM), what they
 * may touch (ACL rules, authorizers) — with its live state: reload, per-connection ACLs recomputed
 * after every change, brute-force slowing, counters and events. `AccessControlBackend`
 * (access-backend.ts) applies it around any `Backend`.
 *
 * The order in which a CONNECT is decided (docs/security.md):
 * 1. brute force: an address with too many recent failures waits first;
 * 2. connection rules (first match wins) — a deny answers 0x87 Not authorized (3.1.1: 5);
 * 3. MQTT 5 enhanced authentication SCRAM-SHA-256, when the CONNECT asks for it;
 * 4. the authenticators in order: the first to allow or deny decides; 'ignore' asks the next;
 * 5. nobody decided: a CONNECT without user name is allowed when anonymous clients are, any other
 *    is denied with 0x86 Bad user name or password (3.1.1: 4) — or 0x87 for refused anonymity;
 * 6. the wrapped backend's own `authenticate`.
 */
import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type { AuthenticationResult, ClientHandle, Credentials } from '../backend/backend.js'
import type { Logger } from '../broker/logger.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { ClientAcl, checkAclRule } from './acl.js'
import { AclTemplate } from './acl-template.js'
import type { AclRule, AclSubject } from './acl.js'
import { readAclFile } from './acl-file.js'
import type { Authenticator, AuthorizeRequest, Authorizer, AuthRequest, AuthVerdict, Identity } from './authenticator.js'
import { BruteForceGuard } from './brute-force.js'
import type { AccessEvent, AccessStats } from './access-events.js'
import { deny, scramUser } from './access-control-options.js'

export type { AccessEvent, AccessStats } from './access-events.js'
import { ConnectionRules, hostOf } from './connection-rules.js'
import { SCRAM_SHA_256, ScramAuthenticator } from './scram.js'
import type { ScramCredentials } from './scram.js'

export type { AccessControlOptions } from './access-control-options.js'
import type { AccessControlOptions } from './access-control-options.js'

/** What access control keeps per connection. */
interface ClientState {
  identity: Identity
  /** The authenticator that allowed the connection (checked again after changes). */
  by?: Authenticator
  subject: AclSubject
  acl: ClientAcl | undefined
  generation: number
  timer?: ReturnType<typeof setTimeout>
  scramUser?: string
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export class AccessControl {
  readonly #authenticators: Authenticator[]
  readonly #authorizers: Authorizer[]
  readonly #allowAnonymous: boolean
  #connectionRules: ConnectionRules
  readonly #staticAcl: AclRule[]
  readonly #aclFiles: string[]
  #fileAcl: AclRule[] = []
  readonly #aclDefault: 'allow' | 'deny' | undefined
  readonly #guard: BruteForceGuard | undefined
  readonly #scram: ScramAuthenticator | undefined
  readonly #logger: Logger | undefined
  readonly #states = new WeakMap<ClientHandle, ClientState>()
  readonly #events = new Subject<AccessEvent>()
  #generation = 0
  /** The tenant of the SCRAM exchange being started (see `#scramLookup`). */
  #scramTenant: string | undefined = undefined
  readonly #live = new Set<ClientHandle>()
  #sweepAt = 1024
  /** ACLs by signature, and their shared decisions by template key, for the current generation. */
  readonly #shared = new Map<string, ClientAcl>()
  readonly #templates = new Map<string, AclTemplate>()
  #sharedGeneration = -1
  readonly #stats = {
    loginsAllowed: 0,
    loginsDenied: 0,
    connectionsRefused: 0,
    publishesDenied: 0,
    subscriptionsDenied: 0,
    deliveriesDenied: 0,
    expired: 0,
    removed: 0,
    reloads: 0
  }

  constructor(options: AccessControlOptions = {}) {
    this.#authenticators = options.authenticators ?? []
    this.#authorizers = options.authorizers ?? []
    this.#allowAnonymous = options.allowAnonymous ?? this.#authenticators.length === 0
    this.#connectionRules = new ConnectionRules(options.connectionRules ?? [], options.connectionDefault)
    this.#staticAcl = options.acl ?? []
    this.#staticAcl.forEach((rule, i) => checkAclRule(rule, `ACL rule ${i + 1}`))
    this.#aclFiles = options.aclFiles ?? []
    this.#fileAcl = this.#aclFiles.flatMap((path) => readAclFile(path))
    this.#aclDefault = options.aclDefault
    this.#guard = options.bruteForce === false ? undefined : new BruteForceGuard(options.bruteForce)
    this.#logger = options.logger
    if (options.scram !== false && this.#authenticators.some((a) => a.scram !== undefined)) {
      this.#scram = new ScramAuthenticator({ lookup: (username) => this.#scramLookup(username) })
    }
    for (const a of this.#authenticators) a.onChange?.(() => this.changed())
  }

  /** Access events (hot; built only while someone subscribes). */
  get events$(): Observable<AccessEvent> {
    return this.#events.asObservable()
  }

  get stats(): AccessStats {
    return { ...this.#stats, bruteForce: this.#guard?.stats ?? { failures: 0, delayed: 0, addresses: 0 } }
  }

  /** Bumped by every change of rules or users; connections recompute their ACL lazily. */
  get generation(): number {
    return this.#generation
  }

  /**
   * Rules or users changed (a store saw a change, files were read again): every ACL is recomputed,
   * and connections of users that are gone are closed.
   */
  changed(): void {
    this.#generation++
    this.#revalidate()
  }

  /**
   * Read the ACL files and the authenticators' files again (SIGHUP), without touching connections:
   * their ACLs follow at the next check. Throws when something cannot be read; what could be read
   * is used, what could not keeps its previous state.
   */
  async reload(): Promise<void> {
    const errors: string[] = []
    try {
      this.#fileAcl = this.#aclFiles.flatMap((path) => readAclFile(path))
    } catch (error) {
      errors.push((error as Error).message)
    }
    for (const a of this.#authenticators) {
      try {
        await a.reload?.()
      } catch (error) {
        errors.push(`${a.name}: ${(error as Error).message}`)
      }
    }
    this.#stats.reloads++
    this.changed()
    if (errors.length > 0) {
      const error = errors.join('; ')
      this.#logger?.warn('access control reload failed', { error })
      this.#emit(() => ({ type: 'reload-failed', error }))
      throw new Error(`reload failed: ${error}`)
    }
    this.#logger?.info('access control reloaded', { generation: this.#generation })
    this.#emit(() => ({ type: 'reloaded', generation: this.#generation }))
  }

  #emit(make: () => AccessEvent): void {
    if (this.#events.observed) this.#events.next(make())
  }

  async #scramLookup(username: string): Promise<ScramCredentials | undefined> {
    // Read before the first await: set just before the (synchronous) call that looks users up.
    const tenant = this.#scramTenant
    for (const a of this.#authenticators) {
      const found = await a.scram?.(tenant, username)
      if (found !== undefined) return found
    }
    return undefined
  }

  /** The MQTT 5 Authentication Methods this access control implements: SCRAM-SHA-256 when enabled. */
  authenticationMethods(): readonly string[] {
    return this.#scram === undefined ? [] : [SCRAM_SHA_256]
  }

  /** Decide a CONNECT (or an AUTH continuing one); see the order in this module's comment. */
  async authenticate(client: ClientHandle, credentials: Credentials): Promise<AuthenticationResult> {
    const address = hostOf(credentials.connection?.remoteAddress)
    let delayedMs = 0
    // The later steps of one SCRAM exchange are not held back again.
    const continuing = credentials.authenticationMethod !== undefined && scramUser(credentials.authenticationData) === undefined
    if (address !== undefined && this.#guard !== undefined && !continuing) {
      delayedMs = this.#guard.delayFor(address)
      if (delayedMs > 0) await sleep(delayedMs)
    }
    const { clientId, username } = credentials
    const rule = this.#connectionRules.decide({ clientId, username, tenant: client.tenant, connection: credentials.connection })
    if (!rule.allow) {
      this.#stats.connectionsRefused++
      this.#logger?.info('connection refused by rule', { clientId, username, address, rule: rule.rule + 1 })
      this.#emit(() => ({ type: 'connection-refused', clientId, username, address, rule: rule.rule }))
      return deny(ReasonCode.NotAuthorized, 'connection not allowed')
    }
    let verdict: AuthVerdict | AuthenticationResult
    if (credentials.authenticationMethod === SCRAM_SHA_256 && this.#scram !== undefined) {
      const state = this.#states.get(client)
      const user = scramUser(credentials.authenticationData)
      this.#scramTenant = client.tenant
      const result = await this.#scram.authenticate(client, credentials)
      if (result.result === 'continue') {
        if (user !== undefined) this.#stateFor(client, {}).scramUser = user
        return result
      }
      if (result.result !== 'allow') verdict = result
      else {
        const name = state?.scramUser ?? this.#states.get(client)?.scramUser ?? username
        return this.#allowed(client, credentials, name === undefined ? {} : { username: name }, address, undefined, result)
      }
    } else {
      const asked = await this.#ask(client, credentials)
      if (asked.verdict.result === 'allow') return this.#allowed(client, credentials, asked.verdict.identity ?? {}, address, asked.by)
      verdict = asked.verdict
    }
    const reasonCode = verdict.result === 'deny' ? verdict.reasonCode : ReasonCode.NotAuthorized
    this.#stats.loginsDenied++
    const failures = address !== undefined && this.#guard !== undefined ? this.#guard.failure(address) : 0
    this.#logger?.info('login failed', { clientId, username, address, reasonCode, failures })
    this.#emit(() => ({ type: 'login-failed', clientId, username, address, reasonCode, failures, delayedMs }))
    return verdict as AuthenticationResult
  }

  /** Steps 4 and 5: the authenticators, then anonymity. */
  async #ask(client: ClientHandle, credentials: Credentials): Promise<{ verdict: AuthVerdict; by?: Authenticator }> {
    if (credentials.authenticationMethod !== undefined) {
      return { verdict: { result: 'deny', reasonCode: ReasonCode.BadAuthenticationMethod, reasonString: 'authentication method not supported' } }
    }
    const request: AuthRequest = {
      clientId: credentials.clientId,
      username: credentials.username,
      password: credentials.password,
      tenant: client.tenant,
      protocolLevel: client.protocolLevel,
      connection: credentials.connection
    }
    for (const authenticator of this.#authenticators) {
      let verdict: AuthVerdict
      try {
        verdict = await authenticator.authenticate(request)
      } catch (error) {
        // A store that cannot answer (Redis away...): refuse for now, never crash, never allow.
        this.#logger?.warn('authenticator failed', { authenticator: authenticator.name, error: (error as Error).message })
        return { verdict: { result: 'deny', reasonCode: ReasonCode.ServerUnavailable, reasonString: 'authentication unavailable' } }
      }
      if (verdict.result === 'allow') {
        const identity = { ...verdict.identity }
        identity.username ??= credentials.username
        return { verdict: { result: 'allow', identity }, by: authenticator }
      }
      if (verdict.result === 'deny') return { verdict }
    }
    if (credentials.username === undefined && credentials.password === undefined) {
      return {
        verdict: this.#allowAnonymous
          ? { result: 'allow', identity: {} }
          : { result: 'deny', reasonCode: ReasonCode.NotAuthorized, reasonString: 'anonymous clients are not allowed' }
      }
    }
    return { verdict: { result: 'deny', reasonCode: ReasonCode.BadUserNameOrPassword } }
  }

  #allowed(
    client: ClientHandle,
    credentials: Credentials,
    identity: Identity,
    address: string | undefined,
    by: Authenticator | undefined,
    result: AuthenticationResult = { result: 'allow' }
  ): AuthenticationResult {
    if (identity.tenant !== undefined && client.tenant !== undefined && identity.tenant !== client.tenant) {
      this.#stats.loginsDenied++
      return deny(ReasonCode.NotAuthorized, 'credentials of another tenant')
    }
    const state = this.#stateFor(client, identity)
    if (by !== undefined) state.by = by
    this.#track(client)
    if (state.timer !== undefined) clearTimeout(state.timer)
    state.timer = undefined
    if (identity.expiresAt !== undefined) {
      const left = identity.expiresAt - Date.now()
      if (left <= 0) return deny(ReasonCode.BadUserNameOrPassword, 'credentials expired')
      // setTimeout holds at most ~24.8 days: longer tokens are checked again then.
      state.timer = setTimeout(() => this.#expire(client, identity.expiresAt!), Math.min(left, 2 ** 31 - 1))
      state.timer.unref()
    }
    this.#stats.loginsAllowed++
    if (address !== undefined) this.#guard?.success(address)
    const { clientId } = credentials
    const name = by?.name ?? (credentials.authenticationMethod ?? 'anonymous')
    this.#emit(() => ({ type: 'login', clientId, username: state.subject.username, address, by: name }))
    return result
  }

  #expire(client: ClientHandle, expiresAt: number): void {
    const state = this.#states.get(client)
    if (state === undefined || !client.connected || state.identity.expiresAt !== expiresAt) return
    const left = expiresAt - Date.now()
    if (left > 0) {
      state.timer = setTimeout(() => this.#expire(client, expiresAt), Math.min(left, 2 ** 31 - 1))
      state.timer.unref()
      return
    }
    this.#stats.expired++
    this.#emit(() => ({ type: 'expired', clientId: client.clientId, username: state.subject.username }))
    // MQTT 5: DISCONNECT 0xA0 Maximum connect time; 3.1.1: the connection just closes.
    client.close(ReasonCode.MaximumConnectTime, 'credentials expired')
  }

  /** The state of `client`, made (or its identity replaced) now. */
  #stateFor(client: ClientHandle, identity: Identity | undefined): ClientState {
    let state = this.#states.get(client)
    if (state === undefined || identity !== undefined) {
      const id = identity ?? {}
      const subject: AclSubject = {
        username: id.username ?? client.username,
        clientId: client.clientId,
        tenant: client.tenant ?? id.tenant
      }
      const scram = state?.scramUser
      state = { identity: id, subject, acl: undefined, generation: -1, timer: state?.timer }
      if (scram !== undefined) state.scramUser = scram
      this.#states.set(client, state)
    }
    return state
  }

  /** The ACL of `client`, recomputed when rules or users changed since it was made. */
  aclOf(client: ClientHandle): ClientAcl {
    const state = this.#stateFor(client, undefined)
    if (state.acl !== undefined && state.generation === this.#generation) return state.acl
    const { subject, identity } = state
    let rules: AclRule[] = [...this.#staticAcl, ...this.#fileAcl]
    const configured = rules.length > 0
    if (identity.acl !== undefined) rules = rules.concat(identity.acl)
    if (subject.username !== undefined) {
      for (const a of this.#authenticators) {
        const own = a.userAcl?.(client.tenant, subject.username)
        if (own !== undefined) rules = rules.concat(own)
      }
    }
    const defaultAllow = this.#aclDefault === 'allow' || (this.#aclDefault === undefined && !configured && rules.length === 0)
    // Decisions cached under an older generation must not survive a change of rules or users.
    if (this.#sharedGeneration !== this.#generation || this.#shared.size >= 10_000 || this.#templates.size >= 10_000) {
      this.#shared.clear()
      this.#templates.clear()
      this.#sharedGeneration = this.#generation
    }
    const acl = new ClientAcl(rules, subject, defaultAllow, this.#template)
    // Connections whose rules come out alike (no %c, same user...) share one ACL and its caches:
    // memory stays bounded by the number of distinct rule sets, not of connections. Those whose
    // rules differ only by %u %c %t share a template (acl-template.ts) for the topics those rules
    // cannot touch.
    // An ACL with a `%c` rule is its connection's own: not kept for sharing, so that it goes with
    // its connection (kept, such ACLs would pile up to the 10,000 of the reset, one per client id
    // ever seen, and make every full garbage collection mark them).
    if (acl.perClient) {
      state.acl = acl
    } else {
      const signature = acl.signature
      state.acl = this.#shared.get(signature) ?? acl
      if (state.acl === acl) this.#shared.set(signature, acl)
    }
    state.generation = this.#generation
    return state.acl
  }

  /** The shared decisions of `key` for the current generation (made once). */
  readonly #template = (key: string, applicable: AclRule[], defaultAllow: boolean): AclTemplate => {
    let template = this.#templates.get(key)
    if (template === undefined) {
      template = new AclTemplate(applicable, defaultAllow)
      this.#templates.set(key, template)
    }
    return template
  }

  /** May `client` receive a message on `topic`? (per delivery: cached) */
  mayRead(client: ClientHandle, topic: string): boolean {
    const acl = this.aclOf(client)
    if (acl.readsAll || acl.mayRead(topic)) return true
    this.#stats.deliveriesDenied++
    return false
  }

  /** Count a delivery not made because the receiver may not read its topic. */
  deliveryDenied(): void {
    this.#stats.deliveriesDenied++
  }

  /** Whether authorizers (the HTTP hook) are asked after the ACL allowed. */
  get hasAuthorizers(): boolean {
    return this.#authorizers.length > 0
  }

  /** May a connection with `acl` (its `aclOf`) publish on `topic`, by the ACL alone? Counts a refusal. */
  mayWrite(acl: ClientAcl, topic: string): boolean {
    if (acl.mayWrite(topic)) return true
    this.#stats.publishesDenied++
    return false
  }

  /** May `client` publish on `topic`: the ACL, then the authorizers. */
  mayPublish(client: ClientHandle, topic: string, qos: number, retain: boolean): boolean | Promise<boolean> {
    if (!this.aclOf(client).mayWrite(topic)) {
      this.#stats.publishesDenied++
      return false
    }
    if (this.#authorizers.length === 0) return true
    return this.#authorize(client, { action: 'publish', topic, qos, retain, ...this.#who(client) })
  }

  /** May `client` subscribe to `filter`: the ACL, then the authorizers. */
  maySubscribe(client: ClientHandle, filter: string, qos: number): boolean | Promise<boolean> {
    if (!this.aclOf(client).maySubscribe(filter)) {
      this.#stats.subscriptionsDenied++
      return false
    }
    if (this.#authorizers.length === 0) return true
    return this.#authorize(client, { action: 'subscribe', topic: filter, qos, ...this.#who(client) })
  }

  #who(client: ClientHandle): Pick<AuthorizeRequest, 'clientId' | 'username' | 'tenant'> {
    const { subject } = this.#stateFor(client, undefined)
    return { clientId: subject.clientId, username: subject.username, tenant: subject.tenant }
  }

  async #authorize(client: ClientHandle, request: AuthorizeRequest): Promise<boolean> {
    for (const authorizer of this.#authorizers) {
      let answer: 'allow' | 'deny' | 'ignore'
      try {
        answer = await authorizer.authorize(request)
      } catch (error) {
        this.#logger?.warn('authorizer failed', { authorizer: authorizer.name, error: (error as Error).message })
        answer = 'deny'
      }
      if (answer === 'ignore') continue
      if (answer === 'deny') {
        if (request.action === 'publish') this.#stats.publishesDenied++
        else this.#stats.subscriptionsDenied++
      }
      return answer === 'allow'
    }
    return true
  }

  /** The connection ended: stop its expiry timer. */
  release(client: ClientHandle): void {
    const state = this.#states.get(client)
    if (state?.timer !== undefined) clearTimeout(state.timer)
    this.#states.delete(client)
    this.#live.delete(client)
  }

  /** Remember a live connection (for `#revalidate`), sweeping closed ones now and then. */
  #track(client: ClientHandle): void {
    this.#live.add(client)
    if (this.#live.size >= this.#sweepAt) {
      // Taken-over connections are never released: forget the closed ones.
      for (const c of this.#live) if (!c.connected) this.#live.delete(c)
      this.#sweepAt = Math.max(1024, this.#live.size * 2)
    }
  }

  /**
   * After a change: a connection whose user is gone from the store that let it in is closed
   * (MQTT 5: DISCONNECT 0x98 Administrative action). Its ACL follows lazily anyway.
   */
  #revalidate(): void {
    for (const client of this.#live) {
      if (!client.connected) {
        this.#live.delete(client)
        continue
      }
      const state = this.#states.get(client)
      const username = state?.subject.username
      if (state?.by?.hasUser === undefined || username === undefined) continue
      if (state.by.hasUser(client.tenant, username) === false) {
        this.#live.delete(client)
        this.#stats.removed++
        this.#logger?.info('user removed: closing its connection', { clientId: client.clientId, username })
        client.close(ReasonCode.AdministrativeAction, 'user removed')
      }
    }
  }

  /** Close the authenticators and authorizers; complete `events$`. */
  async close(): Promise<void> {
    this.#events.complete()
    for (const a of this.#authenticators) await a.close?.()
    for (const a of this.#authorizers) await a.close?.()
  }
}
