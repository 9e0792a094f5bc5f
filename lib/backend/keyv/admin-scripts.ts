import { LIB } from './scripts.js'

/**
 * ADMIN_DELETE: KEYS = session. ARGV = owner node ('' when away), epoch, tenant prefix, client id,
 * route log, tenant, node sessions prefix, session id. An operator deletes a session: fenced on the
 * owner and epoch the caller read (a connection that took the session over meanwhile wins and the
 * caller reads again), then the session, its subscriptions with their index entries, its queues,
 * its will and delayed will, its expiry and its place in the owner's session set go.
 */
export const ADMIN_DELETE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
wipe(ARGV[3], s, ARGV[4], ARGV[5], ARGV[6])
redis.call('DEL', s, s .. ':dwill')
redis.call('ZREM', ARGV[3] .. 'expiry', ARGV[4])
redis.call('ZREM', ARGV[3] .. 'wills', ARGV[4])
redis.call('ZREM', ARGV[3] .. 'sessions', ARGV[4])
if ARGV[1] ~= '' then redis.call('SREM', ARGV[7] .. ARGV[1], ARGV[8]) end
return 1
`

/**
 * PRUNE_INDEX: KEYS = session. ARGV = tenant prefix, client id. Removes the client id from the
 * tenant's session index unless the session exists (a member left by the index's first fill).
 */
export const PRUNE_INDEX = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
return redis.call('ZREM', ARGV[1] .. 'sessions', ARGV[2])
`

/** The scripts of the operators' requests, loaded with the others. */
export const ADMIN_SCRIPTS: readonly string[] = [ADMIN_DELETE, PRUNE_INDEX]
