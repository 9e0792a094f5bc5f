import { TenantKeys, parseSessionId } from './keys.js'
import type { NodeKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { forgetNodeRoutes } from './node-routes.js'
import { REAP_CLAIM, REAP_DONE } from './reap-scripts.js'
import { EXPIRE, ORPHAN, WILL_DUE } from './scripts.js'

/** The stored will of a session that a dead node owned, taken by the reaper (exactly once). */
export interface ReleasedWill {
  tenant: string
  clientId: string
  /** The encoded will (`encodeWill`). */
  will: Buffer
  /** The session's expiry interval in seconds (0: the session was deleted). */
  expiry: number
  /**
   * The will of a connection another node took over before the reaper ran: published only when
   * it is not delayed (the earlier of its Will Delay Interval and the session expiry is 0); the new
   * connection cancelled a delayed one [MQTT-3.1.3-9], as the engine does on a takeover.
   */
  takenOver?: true
}

/** A dead node whose sessions were released. */
export interface ReapedNode {
  node: string
  sessions: number
  /** The wills of its sessions, for the caller to publish (or schedule, when delayed). */
  wills: ReleasedWill[]
}

/**
 * Nodes silent for longer than `deadAfterMs` are dead. For each, the first live node that claims it
 * (REAP_CLAIM: `SET reap:<node> NX` while the node is still silent, with its session set read in
 * the same step; TAKEOVER refuses a claimed or unregistered node) releases its sessions with the
 * ORPHAN script (persistent ones become away, their expiry starting now; others are deleted with
 * their subscriptions), removes its routes, and in one step (REAP_DONE) its message stream, inbox,
 * session set, registration and claim, taking the wills of its connections that other nodes took
 * over meanwhile. Returns the nodes this call released, with the wills to publish.
 */
export async function reapDeadNodes(
  link: RedisLink,
  nodeKeys: NodeKeys,
  root: string,
  me: string,
  deadAfterMs: number,
  now: number
): Promise<ReapedNode[]> {
  const cutoff = now - deadAfterMs
  const dead = await link.sendText<string[]>(['ZRANGEBYSCORE', nodeKeys.nodes, '-inf', String(cutoff), 'LIMIT', '0', '10'])
  const reaped: ReapedNode[] = []
  for (const node of dead) {
    if (node === me) continue
    // Claimed only if still silent; its session set is read in the same step (see reap-scripts.ts).
    const members = await link.script<Buffer[] | null>(
      REAP_CLAIM,
      [nodeKeys.nodes, nodeKeys.reapClaim(node), nodeKeys.sessions(node)],
      [node, String(cutoff), me, '60000']
    )
    if (members === null) continue
    const wills: ReleasedWill[] = []
    for (const member of members) {
      const { tenant, clientId } = parseSessionId(member.toString())
      const keys = new TenantKeys(root, tenant)
      const [result, will, expiry] = await link.script<[number, Buffer, Buffer]>(
        ORPHAN,
        [keys.session(clientId)],
        [node, String(now), keys.prefix, clientId, nodeKeys.routeLog, keys.tenant]
      )
      if (result >= 0 && will.length > 0) wills.push({ tenant: keys.tenant, clientId, will, expiry: Number(expiry.toString()) })
    }
    await forgetNodeRoutes(link, node, nodeKeys.routes(node))
    const old = await link.script<Buffer[]>(
      REAP_DONE,
      [
        nodeKeys.nodes,
        nodeKeys.reapClaim(node),
        nodeKeys.sessions(node),
        nodeKeys.inbox(node),
        nodeKeys.bus(node),
        nodeKeys.oldWills(node),
        nodeKeys.releasedMark(node)
      ],
      [node, me]
    )
    for (let i = 0; i + 1 < old.length; i += 2) {
      const { tenant, clientId } = parseSessionId((old[i] as Buffer).toString())
      const value = old[i + 1] as Buffer
      const colon = value.indexOf(0x3a)
      wills.push({ tenant, clientId, will: value.subarray(colon + 1), expiry: Number(value.subarray(0, colon).toString()), takenOver: true })
    }
    reaped.push({ node, sessions: members.length, wills })
  }
  return reaped
}

/**
 * Deletes the away sessions of the given tenants whose Session Expiry Interval ran out (up to 100
 * per tenant per call). The EXPIRE script re-checks each, so one node deletes each session.
 * Returns the number deleted.
 */
export async function expireSessions(link: RedisLink, nodeKeys: NodeKeys, tenants: Iterable<TenantKeys>, now: number): Promise<number> {
  let removed = 0
  for (const keys of tenants) {
    const due = await link.sendText<string[]>(['ZRANGEBYSCORE', keys.expiry, '-inf', String(now), 'LIMIT', '0', '100'])
    for (const clientId of due) {
      removed += await link.script<number>(EXPIRE, [keys.session(clientId)], [String(now), keys.prefix, clientId, nodeKeys.routeLog, keys.tenant])
    }
  }
  return removed
}

/** A delayed will that became due. */
export interface DueWill {
  keys: TenantKeys
  clientId: string
  will: Buffer
}

/**
 * Takes the delayed wills of released sessions that are due, in the given tenants (up to 100 per
 * tenant per call). The WILL_DUE script removes each from the schedule, so one node gets each;
 * a session that came back online meanwhile has none.
 */
export async function takeDueWills(link: RedisLink, tenants: Iterable<TenantKeys>, now: number): Promise<DueWill[]> {
  const out: DueWill[] = []
  for (const keys of tenants) {
    const due = await link.sendText<string[]>(['ZRANGEBYSCORE', keys.wills, '-inf', String(now), 'LIMIT', '0', '100'])
    for (const clientId of due) {
      const will = await link.script<Buffer>(WILL_DUE, [keys.session(clientId)], [keys.prefix, clientId, String(now)])
      if (will.length > 0) out.push({ keys, clientId, will })
    }
  }
  return out
}
