/**
 * `AccessControlBackend`: access control as a decorator around any `Backend` — MemoryBackend,
 * KeyvBackend, TenantBackend or a third party's — so the engine keeps talking to the one backend it
 * is given, and every backend gets authentication and authorization without writing anything.
 *
 * - `authenticate`: the `AccessControl` decides first; when it allows, the wrapped backend's own
 *   `authenticate` has the last word (both must allow).
 * - `authorizePublish` / `authorizeSubscribe`: the ACL (and authorizers) first, then the wrapped
 *   backend's hooks if it has any. A refusal is 0x87 Not authorized (the engine answers 0x80 in a
 *   3.1.1 SUBACK).
 * - Read access is checked per delivery: the wrapped backend sees, for each connection, one
 *   `ClientHandle` of ours (always the same object for one connection) whose `deliver` checks the
 *   receiver's ACL (a cached Map lookup) before handing the message to the engine; a message the
 *   receiver may not read is answered 'dropped' (a shared group then tries another member).
 */
import type {
  AuthenticationResult,
  Backend,
  BackendCapabilities,
  ClientHandle,
  Credentials,
  DeliveryResult,
  FlappingRule,
  FlappingVerdict,
  SetupResult,
  SubscribeResult
} from '../backend/backend.js'
import type { BackendInspection } from '../backend/inspection.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { ProtocolLevel } from '../packet/types.js'
import type { Message, StoredSubscription, StoredWill } from '../session/session.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'
import { AccessControl } from './access-control.js'
import type { AccessControlOptions } from './access-control.js'
import type { ClientAcl } from './acl.js'

/** The handle the wrapped backend sees for one connection: the engine's, with a read check on `deliver`. */
class GuardedHandle implements ClientHandle {
  readonly #inner: ClientHandle
  readonly #control: AccessControl
  /** The connection's ACL as of `#generation` (recomputed after any change of rules or users). */
  #acl: ClientAcl | undefined = undefined
  #generation = -1
  /** The last topic this connection was allowed to read, and in which generation. */
  #readTopic: string | undefined = undefined
  #readGeneration = -1
  /** The last topic this connection was allowed to publish on, and in which generation. */
  #writeTopic: string | undefined = undefined
  #writeGeneration = -1

  constructor(inner: ClientHandle, control: AccessControl) {
    this.#inner = inner
    this.#control = control
  }

  get clientId(): string {
    return this.#inner.clientId
  }

  get protocolLevel(): ProtocolLevel {
    return this.#inner.protocolLevel
  }

  get username(): string | undefined {
    return this.#inner.username
  }

  get tenant(): string | undefined {
    return this.#inner.tenant
  }

  get connected(): boolean {
    return this.#inner.connected
  }

  // What the engine's connection tells besides `ClientHandle` (the Redis backend's client list shows it).
  get listener(): string | undefined {
    return (this.#inner as { listener?: string }).listener
  }

  get transport(): string | undefined {
    return (this.#inner as { transport?: string }).transport
  }

  get remoteAddress(): string | undefined {
    return (this.#inner as { remoteAddress?: string }).remoteAddress
  }

  get createdAt(): number | undefined {
    return (this.#inner as { createdAt?: number }).createdAt
  }

  deliver(message: Message, subscription: StoredSubscription, isRetained?: boolean): DeliveryResult {
    // The hot path: the topic this connection was last allowed to read, in this generation of
    // rules, passes with one comparison (a run of messages on one topic). The topic is stored
    // again when equal: a publisher's decoder hands out one string object per repeated topic, so
    // that the next messages of that publisher compare equal by reference (no character loop)
    // when several publishers take turns on one topic (fan-in).
    const topic = message.topic
    if (topic === this.#readTopic && this.#readGeneration === this.#control.generation) this.#readTopic = topic
    else if (!this.#mayRead(topic)) return 'dropped'
    return this.#inner.deliver(message, subscription, isRetained)
  }

  /** The read check past the last topic: the ACL decides (through its shared template); remembered when allowed. */
  #mayRead(topic: string): boolean {
    const acl = this.acl()
    if (!acl.readsAll && !acl.mayRead(topic)) {
      this.#control.deliveryDenied()
      return false
    }
    this.#readTopic = topic
    this.#readGeneration = this.#generation
    return true
  }

  /**
   * May the connection publish on `topic`, by the ACL alone (a refusal is counted)? The last topic
   * allowed in this generation of rules passes with one comparison, as in `deliver`.
   */
  mayWrite(topic: string): boolean {
    if (topic === this.#writeTopic && this.#writeGeneration === this.#control.generation) {
      this.#writeTopic = topic
      return true
    }
    if (!this.#control.mayWrite(this.acl(), topic)) return false
    this.#writeTopic = topic
    this.#writeGeneration = this.#generation
    return true
  }

  /** The connection's ACL, recomputed after a change of rules or users (a new generation). */
  acl(): ClientAcl {
    const acl = this.#acl
    if (acl !== undefined && this.#generation === this.#control.generation) return acl
    this.#generation = this.#control.generation
    return (this.#acl = this.#control.aclOf(this.#inner))
  }

  close(reasonCode?: number, reasonString?: string): void {
    this.#inner.close(reasonCode, reasonString)
  }

  /** The identity changed (re-authentication): take the ACL afresh at the next delivery. */
  reset(): void {
    this.#acl = undefined
    this.#readTopic = undefined
    this.#writeTopic = undefined
  }
}

const verdictCode = (allowed: boolean): boolean | number => (allowed ? true : ReasonCode.NotAuthorized)

/** Options of the decorator itself. */
export interface AccessControlBackendOptions {
  /**
   * Publish the access counters as retained `$SYS` messages of the default tenant every this many
   * ms (default 0: never): `{prefix}/auth/logins/allowed`, `.../logins/failed`,
   * `.../connections/refused`, `.../publishes/denied`, `.../subscriptions/denied`,
   * `.../deliveries/denied`, `.../expired`, `.../bruteforce/delayed`, `.../bruteforce/addresses`.
   */
  sysIntervalMs?: number
  /** The `$SYS` prefix (default `$SYS/broker`). */
  sysPrefix?: string
}

/** The optional inspection methods handed through to the wrapped backend (when it has them). */
const INSPECTION = [
  'listSessions',
  'inspectSession',
  'deleteSession',
  'addSessionSubscription',
  'removeSessionSubscription',
  'listRetained',
  'counts',
  'listTenants',
  'listClients',
  'findClient',
  'disconnectClient',
  'connectedCount'
] as const satisfies readonly (keyof BackendInspection)[]

/**
 * A `Backend` with access control around another one. Besides the decisions it hands every
 * optional member the engine and the HTTP API use to the wrapped backend: `authenticationMethods`
 * (with SCRAM-SHA-256 when the access control does it), `available`, `stats` and the
 * `BackendInspection` methods (defined only when the wrapped backend has them, so that the HTTP API
 * still sees which ones the backend lacks and answers 501 for those).
 */
export class AccessControlBackend implements Backend, BackendInspection {
  /** The policy (reload, stats, events). */
  readonly access: AccessControl
  /** The wrapped backend. */
  readonly inner: Backend
  readonly #handles = new WeakMap<ClientHandle, GuardedHandle>()
  /** The last `#guard` answer: a connection's PUBLISH is authorized, then published (often in runs). */
  #lastClient: ClientHandle | undefined = undefined
  #lastHandle: GuardedHandle | undefined = undefined
  readonly #ownsAccess: boolean
  readonly #sysTimer: ReturnType<typeof setInterval> | undefined
  readonly #sysLast = new Map<string, string>()
  readonly #sysPrefix: string
  declare readonly listSessions?: BackendInspection['listSessions']
  declare readonly inspectSession?: BackendInspection['inspectSession']
  declare readonly deleteSession?: BackendInspection['deleteSession']
  declare readonly addSessionSubscription?: BackendInspection['addSessionSubscription']
  declare readonly removeSessionSubscription?: BackendInspection['removeSessionSubscription']
  declare readonly listRetained?: BackendInspection['listRetained']
  declare readonly counts?: BackendInspection['counts']
  declare readonly listTenants?: BackendInspection['listTenants']
  declare readonly listClients?: BackendInspection['listClients']
  declare readonly findClient?: BackendInspection['findClient']
  declare readonly disconnectClient?: BackendInspection['disconnectClient']
  declare readonly connectedCount?: BackendInspection['connectedCount']

  constructor(inner: Backend, access: AccessControl | AccessControlOptions = {}, options: AccessControlBackendOptions = {}) {
    this.inner = inner
    // Operators' inspection (REST API, metrics, $SYS counts) goes straight to the stored state.
    const inspectable = inner as Backend & BackendInspection
    for (const name of INSPECTION) {
      const method = inspectable[name] as ((...args: unknown[]) => unknown) | undefined
      if (typeof method === 'function') Object.defineProperty(this, name, { value: method.bind(inner), enumerable: false })
    }
    this.#ownsAccess = !(access instanceof AccessControl)
    this.access = access instanceof AccessControl ? access : new AccessControl(access)
    this.#sysPrefix = options.sysPrefix ?? '$SYS/broker'
    const interval = options.sysIntervalMs ?? 0
    if (interval > 0) {
      this.#sysTimer = setInterval(() => void this.publishSys().catch(() => undefined), interval)
      this.#sysTimer.unref()
    }
  }

  /** Publish the access counters under `$SYS` now (only those that changed since the last time). */
  async publishSys(): Promise<void> {
    const s = this.access.stats
    const values: [string, number][] = [
      ['logins/allowed', s.loginsAllowed],
      ['logins/failed', s.loginsDenied],
      ['connections/refused', s.connectionsRefused],
      ['publishes/denied', s.publishesDenied],
      ['subscriptions/denied', s.subscriptionsDenied],
      ['deliveries/denied', s.deliveriesDenied],
      ['expired', s.expired],
      ['bruteforce/delayed', s.bruteForce.delayed],
      ['bruteforce/addresses', s.bruteForce.addresses]
    ]
    for (const [name, value] of values) {
      const topic = `${this.#sysPrefix}/auth/${name}`
      const text = String(value)
      if (this.#sysLast.get(topic) === text) continue
      this.#sysLast.set(topic, text)
      const message: Message = { topic, payload: Buffer.from(text), qos: 0, retain: true, receivedAt: Date.now() }
      await this.inner.storeRetained(undefined, message)
      await this.inner.publish(undefined, message)
    }
  }

  /** The one handle the wrapped backend sees for `client` (the last one asked for is at hand). */
  #guard(client: ClientHandle): GuardedHandle {
    if (client === this.#lastClient) return this.#lastHandle!
    let handle = this.#handles.get(client)
    if (handle === undefined) {
      handle = new GuardedHandle(client, this.access)
      this.#handles.set(client, handle)
    }
    this.#lastClient = client
    this.#lastHandle = handle
    return handle
  }

  /** The wrapped backend's reachability (`KeyvBackend`: Redis), for `/readyz` and the metrics. */
  /** The capabilities of the backend it wraps (access control keeps tenants as apart as it does). */
  get capabilities(): BackendCapabilities | undefined {
    return this.inner.capabilities
  }

  get available(): boolean {
    return (this.inner as { available?: unknown }).available !== false
  }

  /** The wrapped backend's counters, if it has any (the access counters are `access.stats`). */
  get stats(): unknown {
    return (this.inner as { stats?: unknown }).stats
  }

  /** MQTT 5 Authentication Methods: SCRAM-SHA-256 when the access control does it, and the wrapped backend's. */
  authenticationMethods(client: ClientHandle): readonly string[] {
    const ours = this.access.authenticationMethods()
    const theirs = this.inner.authenticationMethods === undefined ? [] : this.inner.authenticationMethods(this.#guard(client))
    return ours.length === 0 ? theirs : [...new Set([...ours, ...theirs])]
  }

  authenticate(client: ClientHandle, credentials: Credentials): Promise<AuthenticationResult> {
    return this.access.authenticate(client, credentials).then(async (ours) => {
      if (ours.result !== 'allow') return ours
      this.#handles.get(client)?.reset()
      const theirs = await this.inner.authenticate(this.#guard(client), credentials)
      // Our final enhanced-authentication data (SCRAM server-final) goes with the inner allow.
      if (theirs.result === 'allow' && ours.properties !== undefined) return { ...theirs, properties: { ...ours.properties, ...theirs.properties } }
      return theirs
    })
  }

  setup(client: ClientHandle, clean: boolean, expiryInterval: number): Awaitable<SetupResult> {
    return this.inner.setup(this.#guard(client), clean, expiryInterval)
  }

  queueOffline(client: ClientHandle): Awaitable<void> {
    return this.inner.queueOffline(this.#guard(client))
  }

  subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Awaitable<SubscribeResult[]> {
    return this.inner.subscribe(this.#guard(client), subscriptions)
  }

  unsubscribe(client: ClientHandle, topicFilters: string[]): Awaitable<number[]> {
    return this.inner.unsubscribe(this.#guard(client), topicFilters)
  }

  storeRetained(client: ClientHandle | undefined, message: Message): Awaitable<void | boolean> {
    return this.inner.storeRetained(client === undefined ? undefined : this.#guard(client), message)
  }

  queueRetained(client: ClientHandle, subscription: StoredSubscription): Awaitable<void> {
    return this.inner.queueRetained(this.#guard(client), subscription)
  }

  publish(client: ClientHandle | undefined, message: Message): Awaitable<number | undefined> {
    return this.inner.publish(client === undefined ? undefined : this.#guard(client), message)
  }

  terminate(client: ClientHandle): Awaitable<void> {
    const handle = this.#guard(client)
    this.access.release(client)
    // Hold no ended connection.
    this.#lastClient = this.#lastHandle = undefined
    return this.inner.terminate(handle)
  }

  delayWill(client: ClientHandle, will: StoredWill, dueAt: number): Awaitable<boolean> {
    return this.inner.delayWill === undefined ? false : this.inner.delayWill(this.#guard(client), will, dueAt)
  }

  countFlapping(client: ClientHandle, rule: FlappingRule): Awaitable<FlappingVerdict | undefined> {
    return this.inner.countFlapping === undefined ? undefined : this.inner.countFlapping(this.#guard(client), rule)
  }

  responseInformation(client: ClientHandle): Awaitable<string | undefined> {
    return this.inner.responseInformation === undefined ? undefined : this.inner.responseInformation(this.#guard(client))
  }

  authorizePublish(client: ClientHandle, message: Message): Awaitable<boolean | number> {
    const handle = this.#guard(client)
    // Without authorizers the ACL answers at once, through the handle (the last topic allowed: one
    // comparison): no closure, no promise.
    const ours = this.access.hasAuthorizers
      ? this.access.mayPublish(client, message.topic, message.qos, message.retain)
      : handle.mayWrite(message.topic)
    if (ours === true) return this.inner.authorizePublish === undefined ? true : this.inner.authorizePublish(handle, message)
    if (ours === false) return ReasonCode.NotAuthorized
    return ours.then((allowed) => this.#publishAllowed(allowed, handle, message))
  }

  #publishAllowed(allowed: boolean, handle: GuardedHandle, message: Message): Awaitable<boolean | number> {
    if (!allowed) return ReasonCode.NotAuthorized
    return this.inner.authorizePublish === undefined ? true : this.inner.authorizePublish(handle, message)
  }

  authorizeSubscribe(client: ClientHandle, subscription: StoredSubscription): Awaitable<boolean | number> {
    const ours = this.access.maySubscribe(client, subscription.topicFilter, subscription.qos)
    const next = (allowed: boolean): Awaitable<boolean | number> => {
      if (!allowed) return verdictCode(false)
      return this.inner.authorizeSubscribe === undefined ? true : this.inner.authorizeSubscribe(this.#guard(client), subscription)
    }
    return isPromise(ours) ? ours.then(next) : next(ours)
  }

  async close(): Promise<void> {
    if (this.#sysTimer !== undefined) clearInterval(this.#sysTimer)
    try {
      await this.inner.close()
    } finally {
      if (this.#ownsAccess) await this.access.close()
    }
  }
}

/** `backend` with access control (a shared `AccessControl`, or options to make one). */
export function withAccessControl(
  backend: Backend,
  access: AccessControl | AccessControlOptions = {},
  options: AccessControlBackendOptions = {}
): AccessControlBackend {
  return new AccessControlBackend(backend, access, options)
}
