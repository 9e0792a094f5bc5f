import type { BackendCounts, Page, SessionDetails, SessionQuery, SessionSummary } from '../inspection.js'
import type { StoredSubscription } from '../../session/session.js'
import { fromJson } from './codec.js'
import type { TenantKeys } from './keys.js'
import { SessionSuffix } from './keys.js'
import type { RedisLink } from './redis-link.js'

/** Keys per SCAN step. */
const SCAN_COUNT = 1000
/** Most sessions a listing reads (a listing is for operators, not for the data path). */
const MAX_LISTED = 100_000

/**
 * The client ids of every stored session of a tenant, cluster-wide: SCAN over the session hashes
 * (`<root>:<tenant>:s:{<client id>}`). For the management API only — never on the data path.
 */
async function sessionIds(link: RedisLink, keys: TenantKeys): Promise<string[]> {
  const head = `${keys.prefix}s:{`
  const ids: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await link.sendText<[string, string[]]>(['SCAN', cursor, 'MATCH', `${head}*}`, 'COUNT', String(SCAN_COUNT), 'TYPE', 'hash'])
    cursor = next
    for (const key of found) if (key.startsWith(head) && key.endsWith('}')) ids.push(key.slice(head.length, -1))
  } while (cursor !== '0' && ids.length < MAX_LISTED)
  return ids
}

/** One session's summary from its hash, subscription hash, queue lists and outgoing hash. */
async function summary(link: RedisLink, keys: TenantKeys, tenant: string | undefined, clientId: string): Promise<SessionSummary | undefined> {
  const key = keys.session(clientId)
  const [online, expiry, exp] = await link.sendText<(string | null)[]>(['HMGET', key, 'online', 'expiry', 'exp'])
  if (online === null || online === undefined) return undefined
  const [subscriptions, queued, taken, inflight] = await Promise.all([
    link.send<number>(['HLEN', key + SessionSuffix.subscriptions]),
    link.send<number>(['LLEN', key + SessionSuffix.queue]),
    link.send<number>(['LLEN', key + SessionSuffix.taken]),
    link.send<number>(['HLEN', key + SessionSuffix.outgoing])
  ])
  const out: SessionSummary = {
    clientId,
    tenant,
    connected: online === '1',
    expiryInterval: Number(expiry ?? 0),
    subscriptions,
    queued: queued + taken,
    inflight
  }
  const expiresAt = Number(exp ?? 0)
  if (online !== '1' && expiresAt > 0) out.expiresAt = expiresAt
  return out
}

/** `BackendInspection.listSessions` for the Redis backend: every session of the tenant in the cluster. */
export async function listKeyvSessions(link: RedisLink, keys: TenantKeys, tenant: string | undefined, query: SessionQuery): Promise<Page<SessionSummary>> {
  const search = query.search ?? ''
  const ids = (await sessionIds(link, keys)).filter((id) => search === '' || id.includes(search)).sort()
  const offset = query.offset ?? 0
  const limit = query.limit ?? 100
  const items: SessionSummary[] = []
  for (const id of ids.slice(offset, offset + limit)) {
    const s = await summary(link, keys, tenant, id)
    if (s !== undefined) items.push(s)
  }
  return { items, total: ids.length }
}

/** `BackendInspection.inspectSession` for the Redis backend. */
export async function inspectKeyvSession(link: RedisLink, keys: TenantKeys, tenant: string | undefined, clientId: string): Promise<SessionDetails | undefined> {
  const s = await summary(link, keys, tenant, clientId)
  if (s === undefined) return undefined
  const flat = await link.sendText<string[]>(['HGETALL', keys.session(clientId) + SessionSuffix.subscriptions])
  const subscriptionList: StoredSubscription[] = []
  for (let i = 1; i < flat.length; i += 2) subscriptionList.push(fromJson<StoredSubscription>(flat[i] as string))
  subscriptionList.sort((a, b) => (a.topicFilter < b.topicFilter ? -1 : a.topicFilter > b.topicFilter ? 1 : 0))
  return { ...s, subscriptionList }
}

/**
 * `BackendInspection.counts` for the Redis backend: what Redis can count in O(1) or O(filters) —
 * retained messages (ZCARD of the index) and subscriptions (the sum of the per-filter counts).
 * Sessions, queues and inflight would need a SCAN: left out (see `listKeyvSessions`).
 */
export async function keyvCounts(link: RedisLink, keys: TenantKeys): Promise<BackendCounts> {
  const [retained, perFilter] = await Promise.all([
    link.send<number>(['ZCARD', keys.retainedIndex]),
    link.sendText<string[]>(['HVALS', keys.filterCounts])
  ])
  let subscriptions = 0
  for (const n of perFilter) subscriptions += Number(n)
  return { retained, subscriptions }
}
