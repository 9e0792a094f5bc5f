/**
 * The Lua scripts of the dead-node reaper (maintenance.ts), apart from ORPHAN (scripts.ts), which
 * works on one session.
 *
 * The reaper and a node that stalled in the middle of a session setup race for that node's session
 * set: a TAKEOVER the stalled node runs after the reaper read its set would register a session
 * that no reaper ever reads again (the set and the registration are deleted at the end of the
 * reaping), so its will would never be published and the session would stay online for ever.
 * TAKEOVER therefore refuses a node that is not registered (`P:_:nodes`) or that a reaper has
 * claimed (`P:_:reap:n`), and the claim is taken here, atomically with the check that the node is
 * still silent: a node whose setup reaches Redis before the claim is in the set the reaper reads.
 */

/**
 * REAP_CLAIM: KEYS = node registry (ZSET), reap claim of the node, its session set. ARGV = node,
 * silent since (ms: its last heartbeat must be at or before), claimer, claim lifetime (ms).
 * Claims a silent node for the caller: only while it is registered with a heartbeat that old (a
 * node that beat again meanwhile is not reaped) and nobody else claimed it. Returns false when not
 * claimed, else the node's session set (read in the same step as the claim: every session the
 * node registers before it is in it, and every TAKEOVER after it is refused).
 */
export const REAP_CLAIM = `
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not seen or tonumber(seen) > tonumber(ARGV[2]) then return false end
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return false end
return redis.call('SMEMBERS', KEYS[3])
`

/**
 * REAP_DONE: KEYS = node registry, reap claim, session set, inbox, message stream, old wills,
 * released mark. ARGV = node, claimer. The end of a reaping: the node leaves the registry and its claim goes in one step
 * (so that a TAKEOVER of the node is refused all along: claimed, then unregistered), with its
 * session set, inbox and message stream; the wills of its connections that other nodes took over
 * (moved there by TAKEOVER, never deleted by the node since it did not read the kicks) are taken
 * and returned (`sessionId`, `<expiry>:<will>`, …): after this step no session names the node, so
 * no TAKEOVER adds one. The node registers again at its next heartbeat, if it is alive, and closes
 * the connections it had (`Membership`) without publishing their wills again: the released mark
 * tells it that a reaper took them (rather than Redis losing its data).
 */
export const REAP_DONE = `
local old = redis.call('HGETALL', KEYS[6])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[7], ARGV[2], 'PX', '86400000')
return old
`

/** The reaper's scripts, loaded with the others (`ALL_SCRIPTS`). */
export const REAP_SCRIPTS: readonly string[] = [REAP_CLAIM, REAP_DONE]
