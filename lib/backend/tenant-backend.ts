import type {
  AuthenticationResult,
  Backend,
  BackendCapabilities,
  ClientHandle,
  Credentials,
  FlappingRule,
  FlappingVerdict,
  SetupResult,
  SubscribeResult
} from './backend.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { Message, StoredSubscription, StoredWill } from '../session/session.js'
import { isValidTenant } from '../tenancy/tenant-id.js'
import type { TenantDirectory } from '../tenancy/directory.js'
import { TenantListing } from '../tenancy/listing.js'
import type { Awaitable } from '../util/awaitable.js'
import { NotInspectableError } from './inspection.js'
import type { BackendCounts, BackendInspection, Page, SessionDetails, SessionQuery, SessionSummary } from './inspection.js'
import { compareClients } from './client-listing.js'
import type { ClientQuery, ClusterClient } from './client-listing.js'

/** Options of a `TenantBackend`. */
export interface TenantBackendOptions {
  /**
   * Makes the backend of one tenant (undefined: the default tenant): e.g. a `MemoryBackend`, or a
   * `KeyvBackend` whose `namespace` is the tenant. Called at most once per tenant, when the tenant
   * is first used; the backends it makes are closed by `TenantBackend.close`.
   */
  factory: (tenant: string | undefined) => Backend
  /**
   * Most tenants with a backend at once (default 10,000). A connection of a new tenant beyond it
   * is refused at `authenticate` with 0x97 Quota exceeded; other calls for it throw.
   */
  maxTenants?: number
  /**
   * The tenant backends are shared by several broker processes (e.g. `KeyvBackend`s on one Redis):
   * a management request that names a tenant (`BackendInspection`: sessions, retained messages,
   * `findClient`, `disconnectClient`, `listClients` of one tenant) makes that tenant's backend in this
   * process if it has none yet, so that it reaches what other processes store and serve. Without it
   * (default false, right for `MemoryBackend`s) such a request answers "nothing" for a tenant that
   * never connected here and makes no backend. To list the cluster's tenants, add a `directory`.
   */
  shared?: boolean
  /**
   * Where the tenants of the cluster are recorded (e.g. a `RedisTenantDirectory` on the Redis of
   * the tenant backends), so that `listTenants` answers every tenant with a session anywhere in
   * the cluster, not only those this process has a backend for. Requires `shared`. Each session
   * set up is recorded once it exists; a listing drops (and forgets) a recorded tenant that has no
   * session left. Closed by `close`. See docs/tenancy.md ("Listing the tenants of a cluster").
   */
  directory?: TenantDirectory
}

/** The Map key of the default tenant (a valid tenant id never starts with a space). */
const DEFAULT = ' default'

/**
 * A multi-tenant `Backend`: one backend per tenant, made lazily by a factory, every call routed by
 * `client.tenant` (set by the engine from a tenant resolver, see lib/tenancy), and calls without a
 * client (`publish` / `storeRetained` of wills and `$SYS` messages) by `message.tenant`. Tenants
 * share nothing: client ids, sessions, subscriptions, retained messages and takeovers of one tenant
 * never meet those of another, since they live in different backends.
 *
 * - A tenant id that is not valid (`TENANT_ID_PATTERN` of lib/tenancy) is refused: `authenticate`
 *   denies with 0x85 Client Identifier not valid, every other call throws a TypeError.
 * - Calls are passed through as they are: a synchronous tenant backend stays synchronous.
 * - `close` closes every tenant backend made; after it no new one is made.
 */
export class TenantBackend implements Backend, BackendInspection {
  /** One backend per tenant: tenants are kept apart. */
  readonly capabilities: BackendCapabilities = { tenants: true }
  readonly #factory: (tenant: string | undefined) => Backend
  readonly #maxTenants: number
  readonly #shared: boolean
  readonly #directory: TenantDirectory | undefined
  /** The directory's records and listings (with a directory). */
  readonly #listing: TenantListing | undefined
  readonly #backends = new Map<string, Backend>()
  #closed = false

  constructor(options: TenantBackendOptions | ((tenant: string | undefined) => Backend)) {
    const o = typeof options === 'function' ? { factory: options } : options
    this.#factory = o.factory
    this.#maxTenants = o.maxTenants ?? 10_000
    this.#shared = o.shared === true
    this.#directory = o.directory
    if (this.#directory !== undefined && !this.#shared) {
      throw new TypeError('TenantBackend: a directory lists the tenants of shared backends: give shared: true with it')
    }
    this.#listing = this.#directory === undefined ? undefined : new TenantListing(this.#directory, (tenant) => this.#hasSessions(tenant))
  }

  /** The tenants that have a backend now (undefined: the default tenant). */
  get tenants(): (string | undefined)[] {
    return [...this.#backends.keys()].map((key) => (key === DEFAULT ? undefined : key))
  }

  /** The backend of `tenant`, made now if it has none. Throws a TypeError for an invalid id or when full. */
  backendOf(tenant: string | undefined): Backend {
    if (tenant !== undefined && !isValidTenant(tenant)) throw new TypeError(`invalid tenant id ${JSON.stringify(tenant)}`)
    const key = tenant ?? DEFAULT
    let backend = this.#backends.get(key)
    if (backend === undefined) {
      if (this.#closed) throw new TypeError('the TenantBackend is closed')
      if (this.#backends.size >= this.#maxTenants) throw new RangeError(`too many tenants (maxTenants ${this.#maxTenants})`)
      backend = this.#factory(tenant)
      this.#backends.set(key, backend)
    }
    return backend
  }

  /**
   * False when any tenant backend made so far reports itself unavailable (an `available` property
   * that is false, as `KeyvBackend` has); true otherwise.
   */
  get available(): boolean {
    for (const backend of this.#backends.values()) if ((backend as { available?: unknown }).available === false) return false
    return true
  }

  /**
   * The backend a management request about `tenant` goes to, as an inspectable backend: the one it
   * has; with `shared`, made now if it has none (undefined when the tenant id is invalid, or when no
   * more tenants fit); without, undefined (never makes one).
   */
  #existing(tenant: string | undefined): (Backend & BackendInspection) | undefined {
    if (tenant !== undefined && !isValidTenant(tenant)) return undefined
    const backend = this.#backends.get(tenant ?? DEFAULT)
    if (backend !== undefined || !this.#shared || this.#closed || this.#backends.size >= this.#maxTenants) return backend
    return this.backendOf(tenant)
  }

  // ---- The clients of a cluster (`listClients`, `findClient`, `disconnectClient`), for shared tenant backends ----

  /**
   * `BackendInspection.listClients`. With a tenant filter, that tenant's backend answers. Without:
   * - `shared` (a cluster's backends, e.g. `KeyvBackend`s on one Redis): every tenant backend of
   *   this process (the default tenant's, made now, when there is none yet) is asked for the
   *   clients of *every* tenant it can see, and the answers are merged without duplicates. A
   *   `KeyvBackend` sees every tenant of its key space (`prefix`): with one prefix for all tenants
   *   (the tenant as `namespace`), the clients of tenants connected only to other processes are
   *   listed too; with a prefix per tenant, a tenant that has no backend in this process is not,
   *   unless the `directory` records it: when no backend answered clients of another tenant than
   *   its own, each recorded tenant without a backend here is asked for its own clients.
   * - otherwise every tenant backend of this process lists its own tenant's clients, merged.
   * Sorted by client id, then tenant. Throws `NotInspectableError` when the tenant backends cannot
   * list a cluster's clients (e.g. `MemoryBackend`s: the HTTP API then lists this process's clients).
   */
  async listClients(query: ClientQuery): Promise<Page<ClusterClient>> {
    const offset = query.offset ?? 0
    const limit = query.limit ?? 100
    if (query.filterTenant !== true && this.#shared) return await this.#listEveryTenant(query, offset, limit)
    const tenants = query.filterTenant === true ? [query.tenant] : this.tenants
    const pages: Page<ClusterClient>[] = []
    for (const tenant of tenants) {
      const backend = this.#existing(tenant)
      if (backend === undefined) continue
      if (backend.listClients === undefined) throw new NotInspectableError('listClients')
      // Each backend lists its own tenant only: backends sharing one Redis key space may see more.
      pages.push(await backend.listClients({ ...query, filterTenant: true, tenant, offset: 0, limit: offset + limit }))
    }
    // Nothing to ask, and nothing says the backends are a cluster's: let the caller list its own.
    if (pages.length === 0 && !this.#shared) throw new NotInspectableError('listClients')
    if (pages.length === 1) {
      const page = pages[0] as Page<ClusterClient>
      return { items: page.items.slice(offset, offset + limit), total: page.total }
    }
    const items = pages.flatMap((page) => page.items).sort(compareClients)
    return { items: items.slice(offset, offset + limit), total: pages.reduce((sum, page) => sum + page.total, 0) }
  }

  /**
   * Shared backends, no tenant filter: each backend's whole list (backends on one key space answer
   * the same clients, so pages could not be merged by counts), without duplicates.
   */
  async #listEveryTenant(query: ClientQuery, offset: number, limit: number): Promise<Page<ClusterClient>> {
    const tenants = this.tenants
    if (tenants.length === 0 && this.#existing(undefined) !== undefined) tenants.push(undefined)
    const byId = new Map<string, ClusterClient>()
    // Whether a backend answered clients of another tenant than its own: it sees a key space
    // shared by the tenants, so its answer holds every tenant.
    let seesOthers = false
    const ask = async (tenant: string | undefined, own: boolean): Promise<void> => {
      const backend = this.#existing(tenant)
      if (backend === undefined) return
      if (backend.listClients === undefined) throw new NotInspectableError('listClients')
      const page = await backend.listClients({ ...query, filterTenant: own, tenant, offset: 0, limit: Number.MAX_SAFE_INTEGER })
      for (const client of page.items) {
        if (client.tenant !== tenant) seesOthers = true
        const id = `${client.tenant ?? ''}\u0000${client.clientId}`
        if (!byId.has(id)) byId.set(id, client)
      }
    }
    for (const tenant of tenants) await ask(tenant, false)
    // A key space per tenant: the recorded tenants this process has no backend for answer theirs.
    const directory = this.#directory
    if (directory !== undefined && !seesOthers) {
      const asked = new Set(tenants)
      for (const tenant of (await directory.entries()).keys()) if (!asked.has(tenant)) await ask(tenant, true)
    }
    const items = [...byId.values()].sort(compareClients)
    return { items: items.slice(offset, offset + limit), total: items.length }
  }

  /** `BackendInspection.findClient`, by the tenant's backend (throws `NotInspectableError` when it cannot tell). */
  async findClient(tenant: string | undefined, clientId: string): Promise<ClusterClient | undefined> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return undefined
    if (backend.findClient === undefined) throw new NotInspectableError('findClient')
    return await backend.findClient(tenant, clientId)
  }

  /** `BackendInspection.connectedCount`, by the tenant's backend (undefined when it cannot tell). */
  async connectedCount(tenant: string | undefined): Promise<number | undefined> {
    const backend = this.#existing(tenant)
    if (backend?.connectedCount === undefined) return undefined
    return await backend.connectedCount(tenant)
  }

  /** `BackendInspection.disconnectClient`, by the tenant's backend (throws `NotInspectableError` when it cannot). */
  async disconnectClient(tenant: string | undefined, clientId: string, reasonCode?: number, reasonString?: string): Promise<boolean> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return false
    if (backend.disconnectClient === undefined) throw new NotInspectableError('disconnectClient')
    return await backend.disconnectClient(tenant, clientId, reasonCode, reasonString)
  }

  // ---- BackendInspection: routed to the tenant's backend, answering "nothing" for unknown tenants ----

  listSessions(tenant: string | undefined, query: SessionQuery): Awaitable<Page<SessionSummary>> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return { items: [], total: 0 }
    if (backend.listSessions === undefined) throw new NotInspectableError('listSessions')
    return backend.listSessions(tenant, query)
  }

  inspectSession(tenant: string | undefined, clientId: string): Awaitable<SessionDetails | undefined> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return undefined
    if (backend.inspectSession === undefined) throw new NotInspectableError('inspectSession')
    return backend.inspectSession(tenant, clientId)
  }

  deleteSession(tenant: string | undefined, clientId: string): Awaitable<boolean> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return false
    if (backend.deleteSession === undefined) throw new NotInspectableError('deleteSession')
    return backend.deleteSession(tenant, clientId)
  }

  addSessionSubscription(tenant: string | undefined, clientId: string, subscription: StoredSubscription): Awaitable<boolean> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return false
    if (backend.addSessionSubscription === undefined) throw new NotInspectableError('addSessionSubscription')
    return backend.addSessionSubscription(tenant, clientId, subscription)
  }

  removeSessionSubscription(tenant: string | undefined, clientId: string, topicFilter: string): Awaitable<boolean | undefined> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return undefined
    if (backend.removeSessionSubscription === undefined) throw new NotInspectableError('removeSessionSubscription')
    return backend.removeSessionSubscription(tenant, clientId, topicFilter)
  }

  listRetained(tenant: string | undefined, filter: string, limit: number): Awaitable<Message[]> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return []
    if (backend.listRetained === undefined) throw new NotInspectableError('listRetained')
    return backend.listRetained(tenant, filter, limit)
  }

  counts(tenant: string | undefined): Awaitable<BackendCounts> {
    const backend = this.#existing(tenant)
    if (backend === undefined) return { sessions: 0, subscriptions: 0, retained: 0, queued: 0, inflight: 0 }
    if (backend.counts === undefined) throw new NotInspectableError('counts')
    return backend.counts(tenant)
  }

  /**
   * `BackendInspection.listTenants`. Without a `directory`: the tenants that have a backend in
   * this process (made by a connection or a management request), at once. With one: every tenant
   * recorded in the directory that still has a session anywhere in the cluster (`counts(tenant)`
   * of its backend, made now if need be, says sessions > 0); a recorded tenant without sessions is
   * forgotten, unless a session was recorded meanwhile. A tenant that cannot be checked (no more
   * backends fit, or its backend cannot count or failed) stays listed. Rejects when the directory
   * cannot be read.
   */
  listTenants(): (string | undefined)[] | Promise<(string | undefined)[]> {
    const listing = this.#listing
    return listing === undefined ? this.tenants : listing.list()
  }

  /** False only when the tenant's backend counts no session (true when it cannot count; a failed count is true too, see `TenantListing`). */
  async #hasSessions(tenant: string | undefined): Promise<boolean> {
    const backend = this.#existing(tenant)
    if (backend?.counts === undefined) return true
    return (await backend.counts(tenant)).sessions !== 0
  }

  authenticate(client: ClientHandle, credentials: Credentials): Awaitable<AuthenticationResult> {
    const tenant = client.tenant
    if (tenant !== undefined && !isValidTenant(tenant)) {
      return { result: 'deny', reasonCode: ReasonCode.ClientIdentifierNotValid, reasonString: 'invalid tenant' }
    }
    if (!this.#backends.has(tenant ?? DEFAULT) && this.#backends.size >= this.#maxTenants) {
      return { result: 'deny', reasonCode: ReasonCode.QuotaExceeded, reasonString: 'too many tenants' }
    }
    return this.backendOf(tenant).authenticate(client, credentials)
  }

  /** The methods of the client's tenant backend; none for a tenant `authenticate` would refuse. */
  authenticationMethods(client: ClientHandle): readonly string[] {
    const tenant = client.tenant
    if (tenant !== undefined && !isValidTenant(tenant)) return []
    if (!this.#backends.has(tenant ?? DEFAULT) && this.#backends.size >= this.#maxTenants) return []
    const backend = this.backendOf(tenant)
    return backend.authenticationMethods === undefined ? [] : backend.authenticationMethods(client)
  }

  setup(client: ClientHandle, clean: boolean, expiryInterval: number): Awaitable<SetupResult> {
    const set = this.backendOf(client.tenant).setup(client, clean, expiryInterval)
    // With a directory: answered once the tenant is recorded, after the session exists.
    const listing = this.#listing
    return listing === undefined ? set : listing.recorded(client.tenant, set)
  }

  queueOffline(client: ClientHandle): Awaitable<void> {
    return this.backendOf(client.tenant).queueOffline(client)
  }

  subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Awaitable<SubscribeResult[]> {
    return this.backendOf(client.tenant).subscribe(client, subscriptions)
  }

  unsubscribe(client: ClientHandle, topicFilters: string[]): Awaitable<number[]> {
    return this.backendOf(client.tenant).unsubscribe(client, topicFilters)
  }

  storeRetained(client: ClientHandle | undefined, message: Message): Awaitable<void | boolean> {
    return this.backendOf(client !== undefined ? client.tenant : message.tenant).storeRetained(client, message)
  }

  queueRetained(client: ClientHandle, subscription: StoredSubscription): Awaitable<void> {
    return this.backendOf(client.tenant).queueRetained(client, subscription)
  }

  publish(client: ClientHandle | undefined, message: Message): Awaitable<number | undefined> {
    return this.backendOf(client !== undefined ? client.tenant : message.tenant).publish(client, message)
  }

  terminate(client: ClientHandle): Awaitable<void> {
    return this.backendOf(client.tenant).terminate(client)
  }

  delayWill(client: ClientHandle, will: StoredWill, dueAt: number): Awaitable<boolean> {
    const backend = this.backendOf(client.tenant)
    return backend.delayWill === undefined ? false : backend.delayWill(client, will, dueAt)
  }

  countFlapping(client: ClientHandle, rule: FlappingRule): Awaitable<FlappingVerdict | undefined> {
    const backend = this.backendOf(client.tenant)
    return backend.countFlapping === undefined ? undefined : backend.countFlapping(client, rule)
  }

  responseInformation(client: ClientHandle): Awaitable<string | undefined> {
    const backend = this.backendOf(client.tenant)
    return backend.responseInformation === undefined ? undefined : backend.responseInformation(client)
  }

  authorizePublish(client: ClientHandle, message: Message): Awaitable<boolean | number> {
    const backend = this.backendOf(client.tenant)
    return backend.authorizePublish === undefined ? true : backend.authorizePublish(client, message)
  }

  authorizeSubscribe(client: ClientHandle, subscription: StoredSubscription): Awaitable<boolean | number> {
    const backend = this.backendOf(client.tenant)
    return backend.authorizeSubscribe === undefined ? true : backend.authorizeSubscribe(client, subscription)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const backends = [...this.#backends.values()]
    this.#backends.clear()
    const directory = this.#directory
    const results = await Promise.allSettled([
      ...backends.map(async (backend) => await backend.close()),
      (async () => await directory?.close?.())()
    ])
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }
}

