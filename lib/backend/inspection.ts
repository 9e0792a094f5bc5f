import type { Awaitable } from '../util/awaitable.js'
import type { Message, StoredSubscription } from '../session/session.js'
import type { ClientQuery, ClusterClient } from './client-listing.js'

/** One stored session as the management API shows it. */
export interface SessionSummary {
  clientId: string
  /** Undefined: the default tenant. */
  tenant: string | undefined
  /** Whether a connection owns the session now (on any process, for a shared backend). */
  connected: boolean
  /** The Session Expiry Interval in seconds (0xFFFFFFFF: never). */
  expiryInterval: number
  /** When an away session expires (ms since the epoch), if it does. */
  expiresAt?: number
  /** Number of subscriptions. */
  subscriptions: number
  /** Messages waiting in the offline queue. */
  queued: number
  /** Outgoing QoS 1/2 exchanges not completed yet. */
  inflight: number
}

/** One session with its subscriptions. */
export interface SessionDetails extends SessionSummary {
  subscriptionList: StoredSubscription[]
}

/**
 * Totals of one tenant's stored state. A backend leaves out what it cannot count cheaply (the
 * Redis backend counts sessions, subscriptions and retained messages, not queues): absent totals are not
 * reported.
 */
export interface BackendCounts {
  sessions?: number
  subscriptions?: number
  retained?: number
  /** Messages in offline queues. */
  queued?: number
  /** Outgoing QoS 1/2 exchanges not completed yet. */
  inflight?: number
}

/** A page of a listing. */
export interface Page<T> {
  items: T[]
  /** Number of items in the whole listing (for the page controls). */
  total: number
}

/** What a session listing asks for. */
export interface SessionQuery {
  /** Items to skip (default 0). */
  offset?: number
  /** Most items (default 100). */
  limit?: number
  /** Only client ids containing this text. */
  search?: string
}

/**
 * Optional methods a `Backend` may add so that operators can inspect and steer its stored state
 * (the REST management API, the dashboard, the `$SYS` counts and the metrics use them). Every one
 * is optional: a backend without it answers 501 Not Implemented over HTTP. `tenant` undefined is
 * the default tenant; a backend without tenants ignores it. None of them may create a tenant.
 */
export interface BackendInspection {
  /** Stored sessions (connected or away), in a stable order (client id). */
  listSessions?(tenant: string | undefined, query: SessionQuery): Awaitable<Page<SessionSummary>>
  /** One session, or undefined when there is none. */
  inspectSession?(tenant: string | undefined, clientId: string): Awaitable<SessionDetails | undefined>
  /**
   * Deletes a session with its subscriptions and queue; a connection that owns it is closed first
   * (0x98 Administrative action). Answers false when there was none.
   */
  deleteSession?(tenant: string | undefined, clientId: string): Awaitable<boolean>
  /**
   * Adds (or replaces) a subscription of a stored session, live at once when it is connected. No
   * retained messages are sent. Answers false when there is no such session.
   */
  addSessionSubscription?(tenant: string | undefined, clientId: string, subscription: StoredSubscription): Awaitable<boolean>
  /** Removes a subscription; undefined when there is no such session, false when no such subscription. */
  removeSessionSubscription?(tenant: string | undefined, clientId: string, topicFilter: string): Awaitable<boolean | undefined>
  /** Retained messages matching `filter` (a valid topic filter), at most `limit`, sorted by topic. */
  listRetained?(tenant: string | undefined, filter: string, limit: number): Awaitable<Message[]>
  /** Totals of a tenant's stored state. */
  counts?(tenant: string | undefined): Awaitable<BackendCounts>
  /** The tenants that have stored state (undefined: the default tenant). */
  listTenants?(): Awaitable<(string | undefined)[]>
  /**
   * The connected clients of every process sharing the backend (a cluster), sorted by client id.
   * Without it the HTTP API lists the clients of its own process.
   */
  listClients?(query: ClientQuery): Awaitable<Page<ClusterClient>>
  /** One connected client anywhere in the cluster, or undefined. */
  findClient?(tenant: string | undefined, clientId: string): Awaitable<ClusterClient | undefined>
  /**
   * Closes the connection of a client wherever in the cluster it is connected (MQTT 5: DISCONNECT
   * with `reasonCode`, default 0x98). Answers false when no such client is connected.
   */
  disconnectClient?(tenant: string | undefined, clientId: string, reasonCode?: number, reasonString?: string): Awaitable<boolean>
  /**
   * How many clients of `tenant` are connected to every process sharing the backend (a cluster), or
   * undefined when it cannot tell. `$SYS` uses it for `clients/disconnected` (stored sessions minus
   * connected clients); without it, a process subtracts its own connections.
   */
  connectedCount?(tenant: string | undefined): Awaitable<number | undefined>
}

/** Applies offset/limit/search to a sorted array of summaries. */
export function pageOf(all: SessionSummary[], query: SessionQuery): Page<SessionSummary> {
  const search = query.search
  const matching = search === undefined || search === '' ? all : all.filter((s) => s.clientId.includes(search))
  matching.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
  const offset = query.offset ?? 0
  const limit = query.limit ?? 100
  return { items: matching.slice(offset, offset + limit), total: matching.length }
}

// Declared with the other errors of the contract (lib/backend/errors.ts); kept importable from here.
export { NotInspectableError } from './errors.js'
