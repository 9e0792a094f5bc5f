import type { BackendCounts, Page, SessionDetails, SessionQuery, SessionSummary } from '../inspection.js'
import type { StoredSubscription } from '../../session/session.js'
import { PRUNE_INDEX } from './admin-scripts.js'
import { fromJson } from './codec.js'
import type { TenantKeys } from './keys.js'
import { SessionSuffix } from './keys.js'
import type { RedisLink } from './redis-link.js'

/** Keys per SCAN step, and members per ZADD, of the index's first fill. */
const SCAN_COUNT = 1000

/**
 * Makes sure the tenant's session index (`TenantKeys.sessionIndex`, kept by the scripts) also holds
 * the sessions stored before the index existed: once per tenant and cluster, a SCAN over the session
 * hashes (`<root>:<tenant>:s:{<client id>}`) adds them, then `sessionIndexReady` is set. `ready`
 * remembers the tenants this process saw ready. For the management API only — never on the data path.
 */
export async function ensureSessionIndex(link: RedisLink, keys: TenantKeys, ready: Set<string>): Promise<void> {
  if (ready.has(keys.prefix)) return
  if ((await link.send<number>(['EXISTS', keys.sessionIndexReady])) === 0) {
    const head = `${keys.prefix}s:{`
    let cursor = '0'
    do {
      const [next, found] = await link.sendText<[string, string[]]>(['SCAN', cursor, 'MATCH', `${head}*}`, 'COUNT', String(SCAN_COUNT), 'TYPE', 'hash'])
      cursor = next
      const members: string[] = []
      for (const key of found) if (key.startsWith(head) && key.endsWith('}')) members.push('0', key.slice(head.length, -1))
      if (members.length > 0) await link.send(['ZADD', keys.sessionIndex, ...members])
    } while (cursor !== '0')
    await link.send(['SET', keys.sessionIndexReady, '1'])
  }
  ready.add(keys.prefix)
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

/**
 * `BackendInspection.listSessions` for the Redis backend: every session of the tenant in the
 * cluster, from the tenant's session index (client ids in byte order): a page is one ZRANGE by rank
 * plus one round of reads per session; a search reads the index's members (not the keyspace).
 */
export async function listKeyvSessions(
  link: RedisLink,
  keys: TenantKeys,
  tenant: string | undefined,
  query: SessionQuery,
  ready: Set<string>
): Promise<Page<SessionSummary>> {
  await ensureSessionIndex(link, keys, ready)
  const search = query.search ?? ''
  const offset = query.offset ?? 0
  const limit = query.limit ?? 100
  let ids: string[]
  let total: number
  if (search === '') {
    const [count, page] = await Promise.all([
      link.send<number>(['ZCARD', keys.sessionIndex]),
      link.sendText<string[]>(['ZRANGE', keys.sessionIndex, String(offset), String(offset + limit - 1)])
    ])
    ids = page
    total = count
  } else {
    const matching = (await link.sendText<string[]>(['ZRANGE', keys.sessionIndex, '0', '-1'])).filter((id) => id.includes(search))
    ids = matching.slice(offset, offset + limit)
    total = matching.length
  }
  const found = await Promise.all(ids.map((id) => summary(link, keys, tenant, id)))
  const items: SessionSummary[] = []
  found.forEach((s, i) => {
    if (s !== undefined) items.push(s)
    // A member without a session (left by the index's first fill): removed unless it came back.
    else void link.script(PRUNE_INDEX, [keys.session(ids[i] as string)], [keys.prefix, ids[i] as string]).catch(() => undefined)
  })
  return { items, total }
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
 * sessions (ZCARD of the session index), retained messages (ZCARD of the retained index) and
 * subscriptions (the sum of the per-filter counts). Queues and inflight would need a read per
 * session: left out.
 */
export async function keyvCounts(link: RedisLink, keys: TenantKeys, ready: Set<string>): Promise<BackendCounts> {
  await ensureSessionIndex(link, keys, ready)
  const [sessions, retained, perFilter] = await Promise.all([
    link.send<number>(['ZCARD', keys.sessionIndex]),
    link.send<number>(['ZCARD', keys.retainedIndex]),
    link.sendText<string[]>(['HVALS', keys.filterCounts])
  ])
  let subscriptions = 0
  for (const n of perFilter) subscriptions += Number(n)
  return { sessions, retained, subscriptions }
}
