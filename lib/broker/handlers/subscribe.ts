import { MqttError, ProtocolError } from '../../packet/errors.js'
import { ReasonCode, SUBACK_FAILURE } from '../../packet/reason-codes.js'
import { checkTopicFilter, SHARED_PREFIX } from '../../packet/topic.js'
import type { QoS, SubscribePacket } from '../../packet/types.js'
import type { SubscribeResult } from '../../backend/backend.js'
import type { StoredSubscription } from '../../session/session.js'
import { isPromise } from '../../util/awaitable.js'
import type { Awaitable } from '../../util/awaitable.js'
import { topicLimitProblem } from '../limits.js'
import type { HandlerContext } from './context.js'

/**
 * SUBSCRIBE. Each filter is validated (an invalid one gets 0x80 at 3.1.1 [MQTT-3.9.3-2], its reason
 * code at 5.0: 0x8F, 0x9E, 0xA2), granted at most the broker's Maximum QoS, and handed to the
 * backend. SUBACK lists one code per filter in order [MQTT-3.9.3-1]; then the retained messages of
 * each granted filter are sent [MQTT-3.3.1-6], per Retain Handling (never for shared subscriptions).
 */
export function handleSubscribe(ctx: HandlerContext, packet: SubscribePacket): Awaitable<void> {
  const options = ctx.options
  const v5 = ctx.client.protocolLevel === 5
  const identifier = v5 ? packet.properties?.subscriptionIdentifiers?.[0] : undefined
  if (identifier !== undefined && !options.subscriptionIdentifiersAvailable) {
    ctx.fail(new MqttError(ReasonCode.SubscriptionIdentifiersNotSupported, 'subscription identifiers not supported'))
    return
  }
  const entries = packet.subscriptions
  const codes: number[] = new Array<number>(entries.length)
  const accepted: StoredSubscription[] = []
  const positions: number[] = []
  let needsExisting = false
  const filterOptions = { shared: options.sharedSubscriptionAvailable, wildcards: options.wildcardSubscriptionAvailable }
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    const invalid = checkTopicFilter(entry.topicFilter, filterOptions)
    if (invalid !== undefined) {
      codes[i] = v5 ? invalid.reasonCode : SUBACK_FAILURE
      continue
    }
    if (topicLimitProblem(entry.topicFilter, options.maxTopicLength, options.maxTopicLevels) !== undefined) {
      // A limit of the broker (maxTopicLength, maxTopicLevels): 0x8F Topic Filter invalid.
      ctx.stats.topicLimitHits++
      codes[i] = v5 ? ReasonCode.TopicFilterInvalid : SUBACK_FAILURE
      continue
    }
    const shared = entry.topicFilter.startsWith(SHARED_PREFIX)
    if (shared && entry.noLocal === true) {
      // [MQTT-3.8.3-4] No Local on a shared subscription is a protocol error.
      ctx.fail(new ProtocolError('No Local on a shared subscription'))
      return
    }
    const subscription: StoredSubscription = {
      topicFilter: entry.topicFilter,
      qos: (entry.qos < options.maximumQoS ? entry.qos : options.maximumQoS) as QoS
    }
    if (v5) {
      if (entry.noLocal === true) subscription.noLocal = true
      if (entry.retainAsPublished === true) subscription.retainAsPublished = true
      if (entry.retainHandling !== undefined && entry.retainHandling !== 0) {
        subscription.retainHandling = entry.retainHandling
        if (entry.retainHandling === 1) needsExisting = true
      }
      if (identifier !== undefined) subscription.subscriptionIdentifiers = [identifier]
    }
    accepted.push(subscription)
    positions.push(i)
  }
  const job: SubscribeJob = { ctx, packetId: packet.packetId, codes, accepted, positions, existing: undefined, needsExisting }
  if (accepted.length > 0 && ctx.backend.authorizeSubscribe !== undefined) return authorize(job, 0)
  return proceed(job)
}

/** Ask the backend's optional `authorizeSubscribe` about each entry, in order, from `from`. */
function authorize(job: SubscribeJob, from: number): Awaitable<void> {
  const { ctx } = job
  const backend = ctx.backend
  for (let k = from; k < job.accepted.length; k++) {
    const verdict = backend.authorizeSubscribe!(ctx.client, job.accepted[k]!)
    if (isPromise(verdict)) {
      return verdict.then((v) => {
        if (refused(job, k, v)) return authorize(job, k)
        return authorize(job, k + 1)
      })
    }
    if (refused(job, k, verdict)) k--
  }
  return proceed(job)
}

/** Record a refusal of entry `k` (SUBACK code; the entry leaves the accepted list). */
function refused(job: SubscribeJob, k: number, verdict: boolean | number): boolean {
  const code = verdict === true ? 0 : verdict === false ? ReasonCode.NotAuthorized : verdict
  if (code < SUBACK_FAILURE) return false
  job.codes[job.positions[k]!] = job.ctx.client.protocolLevel === 5 ? code : SUBACK_FAILURE
  job.accepted.splice(k, 1)
  job.positions.splice(k, 1)
  return true
}

function proceed(job: SubscribeJob): Awaitable<void> {
  const { ctx, accepted } = job
  if (accepted.length === 0) return finish(job, [])
  if (job.needsExisting || ctx.options.maxSubscriptionsPerClient > 0) {
    const listed = ctx.session.listSubscriptions()
    if (isPromise(listed)) return listed.then((list) => subscribe(job, list))
    return subscribe(job, listed)
  }
  return subscribe(job, undefined)
}

interface SubscribeJob {
  ctx: HandlerContext
  packetId: number
  codes: number[]
  accepted: StoredSubscription[]
  positions: number[]
  /** Filters the session had before this SUBSCRIBE (only read for Retain Handling 1). */
  existing: Set<string> | undefined
  /** Some entry has Retain Handling 1: list the session's subscriptions first. */
  needsExisting: boolean
}

function subscribe(job: SubscribeJob, existing: StoredSubscription[] | undefined): Awaitable<void> {
  if (existing !== undefined) job.existing = new Set(existing.map((s) => s.topicFilter))
  const ctx = job.ctx
  const max = ctx.options.maxSubscriptionsPerClient
  if (max > 0 && job.existing !== undefined) {
    // maxSubscriptionsPerClient: new filters beyond it get 0x97 Quota exceeded (replacing one is free).
    let count = job.existing.size
    for (let k = 0; k < job.accepted.length; k++) {
      if (job.existing.has(job.accepted[k]!.topicFilter)) continue
      if (count < max) {
        count++
        continue
      }
      ctx.stats.subscriptionLimitHits++
      refused(job, k, ReasonCode.QuotaExceeded)
      k--
    }
    if (job.accepted.length === 0) return finish(job, [])
  }
  const results = ctx.backend.subscribe(ctx.client, job.accepted)
  if (isPromise(results)) return results.then((granted) => finish(job, granted))
  return finish(job, results)
}

function finish(job: SubscribeJob, granted: SubscribeResult[]): Awaitable<void> {
  const { ctx, codes, accepted, positions } = job
  const v5 = ctx.client.protocolLevel === 5
  const retained: StoredSubscription[] = []
  for (let k = 0; k < accepted.length; k++) {
    const code = granted[k] ?? ReasonCode.UnspecifiedError
    const i = positions[k]!
    if (code >= SUBACK_FAILURE) {
      codes[i] = v5 ? code : SUBACK_FAILURE
      continue
    }
    codes[i] = code
    let subscription = accepted[k]!
    if (code !== subscription.qos) subscription = { ...subscription, qos: code as QoS }
    accepted[k] = subscription
    if (wantsRetained(subscription, job.existing)) retained.push(subscription)
  }
  ctx.send({ type: 'suback', packetId: job.packetId, reasonCodes: codes })
  if (ctx.events.observed) ctx.events.emit({ type: 'subscribed', client: ctx.client, subscriptions: accepted, granted: codes })
  return sendRetained(ctx, retained, 0)
}

/** Retain Handling: 0 always, 1 only for a new subscription, 2 never; never for shared ones. */
function wantsRetained(subscription: StoredSubscription, existing: Set<string> | undefined): boolean {
  if (subscription.topicFilter.startsWith(SHARED_PREFIX)) return false // MQTT 5.0 4.8.2: no retained messages for shared subscriptions
  const handling = subscription.retainHandling ?? 0
  if (handling === 2) return false
  if (handling === 1) return existing === undefined || !existing.has(subscription.topicFilter)
  return true
}

function sendRetained(ctx: HandlerContext, subscriptions: StoredSubscription[], from: number): Awaitable<void> {
  for (let i = from; i < subscriptions.length; i++) {
    const queued = ctx.backend.queueRetained(ctx.client, subscriptions[i]!)
    if (isPromise(queued)) return queued.then(() => sendRetained(ctx, subscriptions, i + 1))
  }
}
