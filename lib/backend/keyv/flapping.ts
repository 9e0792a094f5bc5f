import type { ClientHandle, FlappingRule, FlappingVerdict } from '../backend.js'
import type { NodeContext } from './node-context.js'

/** Suffixes of the flapping keys of a client id, appended to `TenantKeys.session(clientId)` (they outlive the session). */
export const FlappingSuffix = {
  /** STRING with a TTL: the client id is banned while it exists. */
  ban: ':ban',
  /** STRING (counter) with a TTL of the window: authenticated connections since the window began. */
  count: ':flap'
} as const

/**
 * FLAP: KEYS = ban, count. ARGV = max count, window (ms), ban time (ms). Counts one connection of a
 * client id cluster-wide. Returns {0 admitted | 1 banned already | 2 banned now, ban ms left}. The
 * window starts with the first connection counted (as the engine's own detection does); a ban
 * ends the window, and counting starts afresh after it.
 */
export const FLAP = `
local left = redis.call('PTTL', KEYS[1])
if left > 0 then return {1, left} end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
if n <= tonumber(ARGV[1]) then return {0, 0} end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return {2, tonumber(ARGV[3])}
`

/** `KeyvBackend.countFlapping`: one connection of `client` counted in Redis, shared by every node. */
export async function countFlapping(node: NodeContext, client: ClientHandle, rule: FlappingRule): Promise<FlappingVerdict> {
  const link = await node.use()
  const session = (await node.tenant(client.tenant)).keys.session(client.clientId)
  const [state, left] = await link.script<[number, number]>(
    FLAP,
    [session + FlappingSuffix.ban, session + FlappingSuffix.count],
    [String(rule.maxCount), String(Math.max(1, Math.round(rule.window))), String(Math.max(1, Math.round(rule.banTime)))]
  )
  return { banMs: state === 0 ? 0 : Number(left), started: state === 2 }
}
