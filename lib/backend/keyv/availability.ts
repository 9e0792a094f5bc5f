import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type { LocalRouting } from './local-routing.js'
import type { Membership } from './membership.js'
import type { NodeContext } from './node-context.js'
import type { KeyvBackendEvent } from './options.js'
import type { LinkEvent, RedisLink } from './redis-link.js'
import type { SessionEnd } from './session-end.js'

/**
 * What one node does when Redis goes away and comes back (the link reports each once per outage):
 * one log line and one event each way; when it is back, a pause before reaping (every node was
 * silent), a reload of the filter snapshots and of this node's routes (Redis may have restarted
 * empty), and the sessions whose connection ended meanwhile are ended. Operations meanwhile reject
 * at once with `BackendUnavailableError` (`NodeContext.use`). Internal to `KeyvBackend`.
 */
export class Availability {
  /** Redis availability events (hot; completes on `complete`). */
  readonly events$: Observable<KeyvBackendEvent>
  readonly #events = new Subject<KeyvBackendEvent>()
  readonly #node: NodeContext
  readonly #membership: Membership
  readonly #routing: LocalRouting
  readonly #ends: SessionEnd

  constructor(node: NodeContext, membership: Membership, routing: LocalRouting, ends: SessionEnd) {
    this.#node = node
    this.#membership = membership
    this.#routing = routing
    this.#ends = ends
    this.events$ = this.#events.asObservable()
  }

  /** The link's report: Redis became unavailable, or available again. */
  onLinkEvent(event: LinkEvent): void {
    const node = this.#node
    if (node.closed) return
    if (event.type === 'unavailable') {
      const reason = event.error instanceof Error ? event.error.message : String(event.error)
      node.log('error', `Redis unavailable (node ${node.nodeId}): ${reason}; publishes and new sessions are refused until it is back`)
    } else {
      node.log('info', `Redis available again (node ${node.nodeId})`)
      this.#membership.holdReaping()
      // Redis may have restarted without persistence: reload the filter snapshots.
      for (const tenant of node.tenants.values()) tenant.unload()
      void this.#membership.heartbeat().catch(() => undefined)
      // Removals that failed while Redis was away; all of it if Redis restarted empty.
      void this.#routing.routes.resync(node.link as RedisLink).catch(() => undefined)
      // Sessions whose connection ended while Redis was away.
      this.#ends.retry()
    }
    this.#events.next(event)
  }

  /** The backend closed: the stream completes. */
  complete(): void {
    this.#events.complete()
  }
}
