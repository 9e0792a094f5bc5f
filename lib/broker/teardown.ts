import type { ClientHandle } from '../backend/backend.js'
import type { QueuedMessage, Session, StoredWill } from '../session/session.js'
import { willMessage } from '../session/will.js'
import { isPromise } from '../util/awaitable.js'
import type { Awaitable } from '../util/awaitable.js'
import type { Backend } from '../backend/backend.js'
import type { BrokerClient, EventHub } from './events.js'
import type { Logger } from './logger.js'
import type { ResolvedOptions } from './options.js'

/** What the teardown of a connection needs of the broker. */
export interface TeardownCore {
  readonly backend: Backend
  readonly options: ResolvedOptions
  readonly log: Logger
  readonly events: EventHub
  /** Publish `will` at `dueAt` unless a new connection of the client cancels it first. */
  delayWill(tenant: string | undefined, clientId: string, will: StoredWill, dueAt: number): void
}

/** What a connection leaves behind when it ends. */
export interface Leftovers {
  /** The will to publish, if the connection ended without a DISCONNECT that discarded it. */
  will: StoredWill | undefined
  /**
   * CONNACK accepted the connection. A will belongs to an accepted connection only: one that ends
   * before (refused by a step after the session setup, lost or timed out during CONNECT) publishes
   * none, and the will it stored in the session is withdrawn.
   */
  accepted: boolean
  /** Another connection took the session over: leave the session alone, do not terminate. */
  takenOver: boolean
  /** QoS 1/2 deliveries that never left the outgoing queue: kept in the session's offline queue. */
  queued: QueuedMessage[]
}

// The one will builder, shared with the backends that publish wills themselves (lib/session/will.ts).
export { willMessage }

/**
 * Publish a will: stored as retained first when its RETAIN flag is set (and retained messages are
 * available), then routed like any message. The publisher is the broker (`client` undefined).
 */
export async function publishWill(core: TeardownCore, will: StoredWill, clientId: string, tenant?: string): Promise<void> {
  const message = willMessage(will, clientId, tenant, core.options.clock.now())
  if (message.retain && core.options.retainAvailable) {
    const stored = core.backend.storeRetained(undefined, message)
    if (isPromise(stored)) await stored
  }
  if (core.events.observed) core.events.emit({ type: 'published', client: undefined, message })
  const routed = core.backend.publish(undefined, message)
  if (isPromise(routed)) await routed
  core.log.debug('will published', { clientId, tenant, topic: will.topic })
}

/**
 * The end of a connection that had a session: park undelivered QoS 1/2 messages in a persistent
 * session's offline queue, publish the will (unless discarded by DISCONNECT [MQTT-3.1.2-10]), and
 * tell the backend (`terminate`) unless the session was taken over. Never rejects: failures are
 * logged. Ends with the `client.ended` event, failure or not.
 *
 * The leftovers are queued synchronously, before anything is awaited: messages routed to the
 * session after the close must queue behind them to keep order [MQTT-4.6.0-6], and on takeover the
 * new connection (whose `setup` closed this one) drains the same session's queue right after, so
 * nothing that was waiting here is lost. A clean start discards them with the session.
 */
export async function finishConnection(
  core: TeardownCore,
  client: ClientHandle & BrokerClient,
  session: Session,
  leftovers: Leftovers
): Promise<void> {
  try {
    if (leftovers.queued.length > 0) {
      const pending: Promise<boolean>[] = []
      const persistent = session.expiryInterval > 0
      for (const item of leftovers.queued) {
        // A session that ends keeps only shared-subscription messages: its backend hands them to
        // another member of the group when it terminates the session (MQTT 5.0 4.8.2).
        if (!persistent && !item.subscription.topicFilter.startsWith('$share/')) continue
        const queued = session.enqueue(item)
        if (isPromise(queued)) pending.push(queued)
      }
      if (pending.length > 0) await Promise.all(pending)
    }
    // Let the code that closed the connection (possibly inside a backend call) return first.
    await Promise.resolve()
    const will = leftovers.will
    if (will !== undefined && !leftovers.accepted) {
      // A will is stored "if the Connect request is accepted" [MQTT-3.1.2-8]: none here; drop its copy.
      if (!leftovers.takenOver) {
        const cleared = session.clearWill()
        if (isPromise(cleared)) await cleared
      }
    } else if (will !== undefined) {
      // MQTT 5 Will Delay Interval: published at the earlier of the delay and the end of the
      // session (MQTT 5.0 3.1.3.2.2); a new connection to the session within it cancels it
      // [MQTT-3.1.3-9], which a takeover is.
      const delay = Math.min(will.properties?.willDelayInterval ?? 0, session.expiryInterval)
      if (delay > 0) {
        if (!leftovers.takenOver) {
          const dueAt = core.options.clock.now() + delay * 1000
          // A distributed backend keeps it itself, so that a reconnect on any process cancels it.
          const backend = core.backend
          let kept: Awaitable<boolean> = false
          if (backend.delayWill !== undefined) kept = backend.delayWill(client, will, dueAt)
          if (isPromise(kept)) kept = await kept
          if (!kept) core.delayWill(client.tenant, client.clientId, will, dueAt)
        }
      } else {
        await publishWill(core, will, client.clientId, client.tenant)
        if (!leftovers.takenOver) {
          const cleared = session.clearWill()
          if (isPromise(cleared)) await cleared
        }
      }
    }
    if (!leftovers.takenOver) {
      const terminated = core.backend.terminate(client)
      if (isPromise(terminated)) await terminated
    }
  } catch (error) {
    core.log.error('connection teardown failed', { clientId: client.clientId, tenant: client.tenant, listener: client.listener, error })
  }
  if (core.events.observed) core.events.emit({ type: 'client.ended', client })
}
