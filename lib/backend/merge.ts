import type { QoS } from '../packet/types.js'
import type { StoredSubscription } from '../session/session.js'

/**
 * Merge two subscriptions of one client that match the same message into the one subscription the
 * message is delivered for: a backend calls `ClientHandle.deliver` at most once per client per
 * message [MQTT-3.3.4-2] (MQTT 5 allows one copy per subscription, but one copy is what clients
 * expect and what costs least).
 *
 * - `qos`: the highest of both [MQTT-3.3.4-2].
 * - `subscriptionIdentifiers`: every identifier of both, without repeats [MQTT-3.3.4-3]
 *   [MQTT-3.3.4-5]; absent when neither has one.
 * - `noLocal`: only when both say so (a subscription without it still wants the client's own
 *   messages). Backends that know the publisher skip No Local subscriptions before merging.
 * - `retainAsPublished`: when either says so.
 * - `topicFilter` and `retainHandling`: those of the subscription with the higher QoS (of `a` on a tie);
 *   neither matters for a delivery.
 *
 * Pure: returns a new object and changes neither argument.
 */
export function mergeSubscriptions(a: StoredSubscription, b: StoredSubscription): StoredSubscription {
  const first = b.qos > a.qos ? b : a
  const merged: StoredSubscription = {
    topicFilter: first.topicFilter,
    qos: (a.qos > b.qos ? a.qos : b.qos) as QoS
  }
  if (a.noLocal === true && b.noLocal === true) merged.noLocal = true
  if (a.retainAsPublished === true || b.retainAsPublished === true) merged.retainAsPublished = true
  if (first.retainHandling !== undefined) merged.retainHandling = first.retainHandling
  const ids = mergeIdentifiers(a.subscriptionIdentifiers, b.subscriptionIdentifiers)
  if (ids !== undefined) merged.subscriptionIdentifiers = ids
  return merged
}

/** The union of two identifier lists, in order of first appearance; undefined when both are empty. */
function mergeIdentifiers(a: number[] | undefined, b: number[] | undefined): number[] | undefined {
  if (a === undefined || a.length === 0) return b === undefined || b.length === 0 ? undefined : b.slice()
  if (b === undefined || b.length === 0) return a.slice()
  const out = a.slice()
  for (const id of b) if (!out.includes(id)) out.push(id)
  return out
}
