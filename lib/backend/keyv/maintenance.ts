import { TenantKeys } from './keys.js'
import type { NodeKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { EXPIRE, ORPHAN } from './scripts.js'

/** A dead node whose sessions were released. */
export interface ReapedNode {
  node: string
  sessions: number
}

/**
 * Nodes silent for longer than `deadAfterMs` are dead. For each, the first live node that claims it
 * (`SET reap:<node> NX`) releases its sessions with the ORPHAN script (persistent ones become away,
 * their expiry starting now; others are deleted with their subscriptions) and removes its inbox,
 * session set and registration. Returns the nodes this call released.
 */
export async function reapDeadNodes(
  link: RedisLink,
  nodeKeys: NodeKeys,
  root: string,
  me: string,
  deadAfterMs: number,
  now: number
): Promise<ReapedNode[]> {
  const dead = await link.sendText<string[]>(['ZRANGEBYSCORE', nodeKeys.nodes, '-inf', String(now - deadAfterMs), 'LIMIT', '0', '10'])
  const reaped: ReapedNode[] = []
  for (const node of dead) {
    if (node === me) continue
    const claimed = await link.sendText<string | null>(['SET', nodeKeys.reapClaim(node), me, 'NX', 'PX', '60000'])
    if (claimed === null) continue
    const members = await link.sendText<string[]>(['SMEMBERS', nodeKeys.sessions(node)])
    for (const member of members) {
      // `<tenant>|<client id>`: a tenant id has no `|`.
      const bar = member.indexOf('|')
      const keys = new TenantKeys(root, member.slice(0, bar))
      const clientId = member.slice(bar + 1)
      await link.script(ORPHAN, [keys.session(clientId)], [node, String(now), keys.prefix, clientId, nodeKeys.routeLog, keys.tenant])
    }
    await link.send(['DEL', nodeKeys.sessions(node), nodeKeys.inbox(node)])
    await link.send(['ZREM', nodeKeys.nodes, node])
    reaped.push({ node, sessions: members.length })
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
