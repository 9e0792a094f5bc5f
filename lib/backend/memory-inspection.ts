/**
 * The read side of `MemoryBackend`'s `BackendInspection` (the management API), over its sessions.
 * Split out of memory-backend.ts; the parts that change state stay there.
 */
import type { SessionEntry } from './memory-routes.js'
import { pageOf } from './inspection.js'
import type { BackendCounts, Page, SessionDetails, SessionQuery, SessionSummary } from './inspection.js'
import { parseSharedSubscription } from '../packet/topic.js'
import type { QueuedMessage } from '../session/session.js'

/** One session as the management API shows it. */
export function sessionSummary(tenant: string | undefined, entry: SessionEntry): SessionSummary {
  const session = entry.session
  const summary: SessionSummary = {
    clientId: session.clientId,
    tenant,
    connected: entry.client !== undefined && entry.client.connected,
    expiryInterval: session.expiryInterval,
    subscriptions: session.listSubscriptions().length,
    queued: session.queueLength,
    inflight: session.outgoingCount
  }
  if (entry.expiresAt !== Number.POSITIVE_INFINITY) summary.expiresAt = entry.expiresAt
  return summary
}

/** A page of the sessions. */
export function listSessionEntries(sessions: ReadonlyMap<string, SessionEntry>, tenant: string | undefined, query: SessionQuery): Page<SessionSummary> {
  const all: SessionSummary[] = []
  for (const entry of sessions.values()) all.push(sessionSummary(tenant, entry))
  return pageOf(all, query)
}

/** One session with its subscriptions, if held. */
export function sessionDetails(sessions: ReadonlyMap<string, SessionEntry>, tenant: string | undefined, clientId: string): SessionDetails | undefined {
  const entry = sessions.get(clientId)
  if (entry === undefined) return undefined
  return { ...sessionSummary(tenant, entry), subscriptionList: entry.session.listSubscriptions() }
}

/** The totals over every session, with `retained` retained messages. */
export function countSessionEntries(sessions: ReadonlyMap<string, SessionEntry>, retained: number): BackendCounts {
  let subscriptions = 0
  let queued = 0
  let inflight = 0
  for (const entry of sessions.values()) {
    const session = entry.session
    subscriptions += session.listSubscriptions().length
    queued += session.queueLength
    inflight += session.outgoingCount
  }
  return { sessions: sessions.size, subscriptions, retained, queued, inflight }
}

/**
 * The undelivered shared-subscription messages of a session that ends: QoS 1 deliveries never
 * acknowledged (oldest first), then its offline queue (which this drains). QoS 2 deliveries that
 * were started are not handed to anyone else (MQTT 5.0 4.8.2).
 */
export function sharedLeftovers(entry: SessionEntry): QueuedMessage[] | undefined {
  const session = entry.session
  let out: QueuedMessage[] | undefined
  if (session.outgoingCount > 0) {
    for (const record of session.listOutgoing()) {
      const subscription = record.kind === 'publish' ? record.subscription : undefined
      if (record.kind !== 'publish' || subscription === undefined || record.message.qos !== 1) continue
      if (parseSharedSubscription(subscription.topicFilter) === undefined) continue
      ;(out ??= []).push({ message: record.message, subscription })
    }
  }
  if (session.queueLength > 0) {
    for (const item of session.drainQueue()) {
      if (parseSharedSubscription(item.subscription.topicFilter) !== undefined) (out ??= []).push(item)
    }
  }
  return out
}
