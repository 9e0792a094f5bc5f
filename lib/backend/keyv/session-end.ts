import type { ClientHandle } from '../backend.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { sessionId } from './keys.js'
import type { LocalEntry } from './local-state.js'
import type { LocalRouting } from './local-routing.js'
import type { NodeContext } from './node-context.js'
import { BackendUnavailableError } from './redis-link.js'
import type { RedisLink } from './redis-link.js'
import { TERMINATE } from './scripts.js'
import type { SharedSubscriptions } from './shared-subscriptions.js'

const NEVER_EXPIRES = 0xffff_ffff

/**
 * How a session ends on one node when its connection does: detached here, its shared-subscription
 * messages passed on (a session that ends with the connection), then marked away or deleted in
 * Redis (the TERMINATE script, fenced). Sessions whose connection ended while Redis was away are
 * kept and ended once it is back (`retry`). Internal to `KeyvBackend`.
 */
export class SessionEnd {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #shares: SharedSubscriptions
  /** Sessions whose connection ended while Redis was away: ended in Redis once it is back. */
  readonly #unfinished = new Set<LocalEntry>()

  constructor(node: NodeContext, routing: LocalRouting, shares: SharedSubscriptions) {
    this.#node = node
    this.#routing = routing
    this.#shares = shares
  }

  /** `Backend.terminate`: the connection of `client` ended. */
  async terminate(client: ClientHandle): Promise<void> {
    const node = this.#node
    const tenant = node.tenants.get(node.tenantId(client.tenant))
    if (tenant === undefined) return
    const entry = this.#routing.get(sessionId(tenant.keys.tenant, client.clientId))
    // A connection that lost its session to a takeover has nothing left to end.
    if (entry === undefined || entry.client !== client) return
    const wasShared = [...entry.filters].some((f) => f.startsWith('$share/'))
    this.#routing.detach(entry)
    // The session ends: the shared-subscription messages it did not acknowledge go to another
    // member (MQTT 5.0 4.8.2). A persistent session keeps them (inflight records, offline queue).
    if (entry.session.expiryInterval === 0) {
      await this.#shares.passOn(entry, wasShared).catch((error: unknown) => {
        node.log('warn', `passing the shared messages of ${client.clientId} on failed: ${error instanceof Error ? error.message : String(error)}`)
      })
    }
    this.#shares.settle(entry)
    try {
      await this.#end(entry)
    } catch (error) {
      // Redis is away: end the session in Redis once it is back (else it would stay "online" here).
      if (error instanceof BackendUnavailableError && !node.closed) this.#unfinished.add(entry)
      throw error
    }
  }

  /** Redis is back: ends the sessions whose connection ended while it was away. */
  retry(): void {
    const unfinished = [...this.#unfinished]
    this.#unfinished.clear()
    for (const entry of unfinished) {
      this.#end(entry).catch((error: unknown) => {
        if (error instanceof BackendUnavailableError) this.#unfinished.add(entry)
      })
    }
  }

  /**
   * The backend closes with connections still open (the engine normally ends them first): their
   * sessions end here, since a node that left the registry is never reaped.
   */
  async endAll(): Promise<void> {
    const open = this.#routing.all()
    for (const entry of open) entry.live = false
    await Promise.allSettled(open.map((entry) => this.#end(entry, true)))
  }

  /** Marks the session of a gone connection away (or deletes it), fenced. */
  async #end(entry: LocalEntry, closing = false): Promise<void> {
    const node = this.#node
    const link = closing ? (node.link as RedisLink) : await node.use()
    const session = entry.session
    const expiry = session.expiryInterval
    const expiresAt = expiry === 0 || expiry >= NEVER_EXPIRES ? '0' : String(Date.now() + expiry * 1000)
    const keys = entry.tenant.keys
    const clientId = entry.client.clientId
    try {
      await link.script(
        TERMINATE,
        [session.key],
        [
          node.nodeId,
          session.epoch,
          String(expiry),
          expiresAt,
          keys.prefix,
          clientId,
          node.nodeKeys.routeLog,
          keys.tenant,
          node.nodeKeys.sessionsPrefix,
          sessionId(keys.tenant, clientId)
        ]
      )
    } catch (error) {
      if (!(error instanceof SessionTakenOverError)) throw error
    }
  }
}
