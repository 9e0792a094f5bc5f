/**
 * The one place Redis key names of the Redis backend are built. Every key starts with the root
 * prefix (default `mq`): node-level structures under `<root>:_:`, tenant data under
 * `<root>:<tenant>:`. See docs/redis-backend.md for the schema.
 */

import { validateTenant } from '../../tenancy/tenant-id.js'

export { validateTenant }

/** Root prefixes: the same alphabet plus upper case and `.`. */
const ROOT_PREFIX = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/

/** Throws a TypeError unless `prefix` is a valid root prefix. */
export function validateRootPrefix(prefix: string): string {
  if (!ROOT_PREFIX.test(prefix)) {
    throw new TypeError(`invalid key prefix ${JSON.stringify(prefix)}: expected ${ROOT_PREFIX.source}`)
  }
  return prefix
}

/**
 * The id of a session across the cluster, `<tenant>|<client id>` (a tenant id has no `|`, so the
 * first `|` splits it). The one place it is built: it is the member of a node's session set
 * (`NodeKeys.sessions`, which the TAKEOVER and TERMINATE scripts receive it for and the reaper
 * reads back with `parseSessionId`) and the key of a node's own connections and takeover kicks.
 */
export function sessionId(tenant: string, clientId: string): string {
  return `${tenant}|${clientId}`
}

/** The tenant and client id of a `sessionId`. */
export function parseSessionId(id: string): { tenant: string; clientId: string } {
  const bar = id.indexOf('|')
  return { tenant: id.slice(0, bar), clientId: id.slice(bar + 1) }
}

/** Keys of the node level (shared by every tenant). */
export class NodeKeys {
  /** `<root>:_:` */
  readonly base: string
  /** Prefix of the node message streams; node `n` reads the live messages routed to it from `busPrefix + n`. */
  readonly busPrefix: string
  /** STREAM: changes of the wildcard filter set (`t`, `f`, `c` = 0 or 1). */
  readonly routeLog: string
  /** ZSET: node id → last heartbeat (ms). */
  readonly nodes: string
  /** Prefix of node inboxes; the inbox of node `n` is `inboxPrefix + n`. */
  readonly inboxPrefix: string
  /** Prefix of the SETs of sessions each node owns (`sessionId`s), for the reaper. */
  readonly sessionsPrefix: string
  /** Prefix of the HASHes of the wills of each node's connections that other nodes took over (`oldWills`). */
  readonly oldWillsPrefix: string
  /** HASH: the tenant directory, tenant id → generation (see tenant-listing.ts). */
  readonly tenants: string

  constructor(root: string) {
    this.base = `${validateRootPrefix(root)}:_:`
    this.busPrefix = `${this.base}bus:`
    this.routeLog = `${this.base}rt`
    this.nodes = `${this.base}nodes`
    this.inboxPrefix = `${this.base}inbox:`
    this.sessionsPrefix = `${this.base}sessions:`
    this.oldWillsPrefix = `${this.base}owills:`
    this.tenants = `${this.base}tenants`
  }

  /** STREAM: kicks, wakes and kick acknowledgements addressed to node `node`. */
  inbox(node: string): string {
    return this.inboxPrefix + node
  }

  /** STREAM: the live messages routed to node `node` (`t` tenant, `m` encoded message). */
  bus(node: string): string {
    return this.busPrefix + node
  }

  /** SET: the route keys (`TenantKeys.nodeRoutes`) in which node `node` has its field. */
  routes(node: string): string {
    return `${this.base}routes:${node}`
  }

  /** SET: the sessions node `node` owns (`sessionId`s). */
  sessions(node: string): string {
    return this.sessionsPrefix + node
  }

  /**
   * HASH: `sessionId` → `<session expiry s>:<encoded will>`, the will of each connection of node
   * `node` that a connection on another node took over, moved there by TAKEOVER: deleted by `node`
   * when it reads the kick (its engine publishes that will itself), published by the reaper when
   * `node` died before.
   */
  oldWills(node: string): string {
    return this.oldWillsPrefix + node
  }

  /**
   * STRING, PX 24 h: set by the reaper that released node `node` (REAP_DONE), deleted by `node` when
   * it finds it was released while alive: the wills of its connections went out with the reaping.
   */
  releasedMark(node: string): string {
    return `${this.base}released:${node}`
  }

  /** STRING: claim of the reaper that handles dead node `node`. */
  reapClaim(node: string): string {
    return `${this.base}reap:${node}`
  }

  /**
   * HASH: `sessionId` → JSON description of each client connected to node `node` (the cluster's
   * client list; its TTL is renewed with the node's heartbeat, see client-registry.ts).
   */
  clients(node: string): string {
    return `${this.base}clients:${node}`
  }

  /** Keyv key of the node's liveness record (with a TTL). */
  nodeRecord(node: string): string {
    return `${this.base}node:${node}`
  }
}

/** Keys of one tenant. */
export class TenantKeys {
  readonly tenant: string
  /** `<root>:<tenant>:`, the prefix of every key of the tenant (Lua scripts build keys from it). */
  readonly prefix: string
  /** HASH: topic filter → number of subscriptions (all sessions). */
  readonly filterCounts: string
  /** STRING: counter bumped with each new wildcard filter (its route log entry carries the value). */
  readonly wildcardVersion: string
  /** HASH: topic → encoded retained message. */
  readonly retained: string
  /** ZSET (score 0): retained topics, for ZRANGEBYLEX on a filter's literal prefix. */
  readonly retainedIndex: string
  /** ZSET: away persistent session → expiry time (ms). */
  readonly expiry: string
  /** ZSET: released session → when its delayed will is due (ms); the will is at `<session>:dwill`. */
  readonly wills: string
  /**
   * ZSET (score 0): the client id of every stored session, for listings (ZRANGE by rank, in byte
   * order) and counts (ZCARD). Added by TAKEOVER, removed by every script that deletes a session.
   */
  readonly sessionIndex: string
  /** STRING: set once `sessionIndex` holds the sessions stored before it existed (see inspect.ts). */
  readonly sessionIndexReady: string

  constructor(root: string, tenant: string) {
    this.tenant = validateTenant(tenant)
    this.prefix = `${validateRootPrefix(root)}:${tenant}:`
    this.filterCounts = `${this.prefix}fc`
    this.wildcardVersion = `${this.prefix}wv`
    this.retained = `${this.prefix}ret`
    this.retainedIndex = `${this.prefix}ret:idx`
    this.expiry = `${this.prefix}expiry`
    this.wills = `${this.prefix}wills`
    this.sessionIndex = `${this.prefix}sessions`
    this.sessionIndexReady = `${this.prefix}sessions:ok`
  }

  /** HASH of session `clientId`: node, epoch, online, persist, expiry, exp. */
  session(clientId: string): string {
    return `${this.prefix}s:{${clientId}}`
  }

  /**
   * STREAM of one MQTT 5 shared subscription `$share/{group}/{filter}` (the whole filter is part of
   * the key), read by the consumer group `SHARE_GROUP`: each entry goes to one member cluster-wide.
   */
  shareStream(sharedFilter: string): string {
    return `${this.prefix}sh:${sharedFilter}`
  }

  /**
   * HASH: node id → '1' for each node with a live subscription to `filter` (the route table of
   * routed fan-out; maintained by each node for itself, see `NodeRoutes`).
   */
  nodeRoutes(filter: string): string {
    return `${this.prefix}nr:${filter}`
  }

  /** HASH: session id → subscription JSON, for one filter, persistent sessions only. */
  persistentSubscribers(filter: string): string {
    return `${this.prefix}ps:${filter}`
  }
}

/** The Redis consumer group name of every shared-subscription stream. */
export const SHARE_GROUP = 'g'

/** Suffixes of the keys of one session, appended to `TenantKeys.session(clientId)`. */
export const SessionSuffix = {
  subscriptions: ':subs',
  queue: ':q',
  taken: ':qt',
  outgoing: ':out',
  outgoingOrder: ':ord',
  incoming: ':in',
  will: ':will'
} as const
