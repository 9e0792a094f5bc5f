import { ReasonCode } from '../../packet/reason-codes.js'
import { decodeWill } from './codec.js'
import type { LocalRouting } from './local-routing.js'
import type { LocalEntry } from './local-state.js'
import { expireSessions, reapDeadNodes, takeDueWills } from './maintenance.js'
import type { NodeContext } from './node-context.js'
import type { RedisLink } from './redis-link.js'
import type { SharedSubscriptions } from './shared-subscriptions.js'
import { SESSIONS_LOST } from './takeover.js'
import type { Wills } from './wills.js'

/**
 * One node's membership of the cluster: its heartbeat in the node registry (and its Keyv liveness
 * record), and the periodic duties every live node shares: reaping dead nodes (their sessions,
 * routes and wills), expiring away sessions, publishing due delayed wills and claiming a dead node's
 * pending shared-subscription entries. Internal to `KeyvBackend`.
 */
export class Membership {
  readonly #node: NodeContext
  readonly #routing: LocalRouting
  readonly #shares: SharedSubscriptions
  readonly #wills: Wills
  #timer: ReturnType<typeof setInterval> | undefined = undefined
  /** The first heartbeat registered this node. */
  #registered = false
  /** No reaping before (ms): set after each outage, when every node was silent for a while. */
  #reapAfter = 0
  /** An out-of-turn heartbeat (`beatSoon`) is running. */
  #beating = false

  constructor(node: NodeContext, routing: LocalRouting, shares: SharedSubscriptions, wills: Wills) {
    this.#node = node
    this.#routing = routing
    this.#shares = shares
    this.#wills = wills
  }

  /** Starts the periodic duties (every heartbeat interval; the timer does not hold the process). */
  start(): void {
    this.#timer = setInterval(() => void this.#tick(), this.#node.heartbeatMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Redis is back after an outage: every node was silent, so no reaping until they had time to beat. */
  holdReaping(): void {
    this.#reapAfter = Date.now() + this.#node.deadAfterMs
  }

  /**
   * A heartbeat now, out of turn (one at a time): a setup found this node released by the cluster,
   * so it registers again (closing the connections of before) without waiting for the interval.
   */
  beatSoon(): void {
    const node = this.#node
    if (this.#beating || node.closed || node.link === undefined || !node.link.available) return
    this.#beating = true
    this.heartbeat()
      .catch(() => undefined)
      .finally(() => {
        this.#beating = false
      })
  }

  /** Records this node as alive now; notices when the cluster released it meanwhile. */
  async heartbeat(): Promise<void> {
    const node = this.#node
    const link = node.link as RedisLink
    const now = Date.now()
    const added = await link.send<number>(['ZADD', node.nodeKeys.nodes, String(now), node.nodeId])
    // Registered before and no longer: released by the cluster (or Redis lost its data).
    if (added === 1 && this.#registered && !node.closed) {
      // The connections of before the release (a setup answered after this beat is a new session).
      const entries = this.#routing.all()
      const reaped = await link.send<number>(['DEL', node.nodeKeys.releasedMark(node.nodeId)])
      if (!node.closed) this.#released(entries, reaped === 1)
    }
    this.#registered = true
    // Only after the link answered: @keyv/redis would silently reopen a client someone closed.
    await node.keyv.set(node.nodeKeys.nodeRecord(node.nodeId), { nodeId: node.nodeId, pid: process.pid, seen: now }, node.heartbeatMs * 5)
  }

  async #tick(): Promise<void> {
    const node = this.#node
    const link = node.link
    if (node.closed || link === undefined || !link.available) return
    try {
      await this.heartbeat()
      const now = Date.now()
      // After an outage every node was silent: reap only once the others had time to come back.
      const reaped = now >= this.#reapAfter ? await reapDeadNodes(link, node.nodeKeys, node.root, node.nodeId, node.deadAfterMs, now) : []
      for (const { node: dead, sessions, wills } of reaped) {
        node.stats.nodesReaped++
        node.log('warn', `node ${dead} stopped heart-beating: ${sessions} session(s) released, ${wills.length} will(s)`)
        for (const w of wills) await this.#wills.release(w.tenant, w.clientId, w.will, w.expiry, now, w.takenOver === true)
      }
      const tenants = Array.from(node.tenants.values(), (tenant) => tenant.keys)
      node.stats.sessionsExpired += await expireSessions(link, node.nodeKeys, tenants, now)
      for (const due of await takeDueWills(link, tenants, now)) await this.#wills.publish(due.keys.tenant, due.clientId, decodeWill(due.will))
      await this.#shares.claimDead(link, now)
    } catch {
      // Reported once through the availability events.
    }
  }

  /**
   * This node was released while it was alive: it stayed silent for 3 heartbeats (a long pause, or
   * cut off from Redis) and another node's reaper released its sessions, routes and stream
   * (`reaped`), or Redis restarted without its data. Its connections have no session any more: they
   * are closed (with a reason string) so that their clients connect again and set a session up
   * anew. After a reaping their wills were published (or scheduled) by the reaper, which took them
   * from the sessions: closed with 0x00, which publishes none again [MQTT-3.1.2-10] (once, not
   * twice); after a loss of data nobody had them: closed with 0x80, and the engine publishes them.
   */
  #released(entries: LocalEntry[], reaped: boolean): void {
    const node = this.#node
    node.stats.nodeReleased++
    const cause = reaped ? 'silent for 3 heartbeats, reaped by another node' : 'Redis lost its data'
    node.log('warn', `node ${node.nodeId} was released by the cluster (${cause}): closing its ${entries.length} connection(s)`)
    const code = reaped ? ReasonCode.NormalDisconnection : ReasonCode.UnspecifiedError
    for (const entry of entries) {
      // Taken over meanwhile (here, or by a kick): no longer this node's to close.
      if (this.#routing.of(entry.client) !== entry) continue
      this.#routing.evict(entry)
      if (entry.client.connected) entry.client.close(code, SESSIONS_LOST)
    }
  }
}
