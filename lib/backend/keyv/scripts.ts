/**
 * The Lua scripts of the Redis backend. Every script that changes a session first checks that the
 * caller still owns it: the session hash's `node` and `epoch` must equal the caller's (fencing);
 * otherwise it fails with `FENCED`, which the link turns into `SessionTakenOverError`.
 *
 * Scripts build some key names from the tenant prefix they are given (the subscription index of a
 * filter, another node's inbox). That is fine on one Redis server (standalone, the only client the
 * backend accepts today; a Sentinel-managed master would be the same for the scripts); Redis Cluster
 * would need those writes split out of the scripts (see docs/redis-backend.md).
 *
 * Session hash fields: `node` (owner node id, '' when away), `epoch` (incremented by each setup),
 * `online` ('1'/'0'), `persist` ('1' when the session outlives its connection), `expiry` (seconds),
 * `exp` (ms since the epoch when an away session expires, '0' for never or while online), `oseq`
 * (order counter of outgoing records).
 *
 * The scripts that touch no session (retained store, filter snapshot, publish) are in
 * routing-scripts.ts.
 */

import { REAP_SCRIPTS } from './reap-scripts.js'
import { LOAD_FILTERS, PUBLISH_BATCH, STORE_RETAINED } from './routing-scripts.js'

/** Helpers shared by the scripts (prepended to each; admin-scripts.ts uses them too). */
export const LIB = `
local function fenced(s, node, epoch)
  local v = redis.call('HMGET', s, 'node', 'epoch')
  return v[1] ~= node or v[2] ~= epoch
end
local function wildcard(f)
  return string.find(f, '[+#]') ~= nil
end
local function shared(f)
  return string.sub(f, 1, 7) == '$share/'
end
local function index(tp, sid, f, json, persist, log, tenant)
  local n = redis.call('HINCRBY', tp .. 'fc', f, 1)
  if persist == '1' then redis.call('HSET', tp .. 'ps:' .. f, sid, json) end
  if shared(f) then redis.pcall('XGROUP', 'CREATE', tp .. 'sh:' .. f, 'g', '0', 'MKSTREAM') end
  if n == 1 and (wildcard(f) or shared(f)) then
    -- A new wildcard or shared filter bumps the tenant's version: a publish script told an older
    -- version by a node that has not read this entry yet says so (see PUBLISH_BATCH).
    local v = redis.call('INCR', tp .. 'wv')
    redis.call('XADD', log, 'MAXLEN', '~', '100000', '*', 't', tenant, 'f', f, 'c', '1', 'v', tostring(v))
  end
  return n
end
local function unindex(tp, sid, f, log, tenant)
  local n = redis.call('HINCRBY', tp .. 'fc', f, -1)
  redis.call('HDEL', tp .. 'ps:' .. f, sid)
  if n <= 0 then
    redis.call('HDEL', tp .. 'fc', f)
    if shared(f) then redis.call('DEL', tp .. 'sh:' .. f) end
    if wildcard(f) or shared(f) then
      redis.call('XADD', log, 'MAXLEN', '~', '100000', '*', 't', tenant, 'f', f, 'c', '0')
    end
  end
end
local function wipe(tp, s, sid, log, tenant)
  local subs = redis.call('HKEYS', s .. ':subs')
  for _, f in ipairs(subs) do unindex(tp, sid, f, log, tenant) end
  redis.call('DEL', s .. ':subs', s .. ':q', s .. ':qt', s .. ':out', s .. ':ord', s .. ':in', s .. ':will')
  redis.call('HDEL', s, 'oseq')
end
`

/**
 * TAKEOVER: KEYS = session. ARGV = node, clean, now, persist, expiry, tenant prefix, client id,
 * route log, tenant, inbox prefix, node sessions prefix, session id (`sessionId`), node registry,
 * this node's reap claim key, old wills prefix.
 * Refused (`RELEASED`, nothing written) when this node is not in the registry or a reaper claimed
 * it: it was released (or is being released) while silent, and a session it registered now would
 * be in no session set a reaper reads (see reap-scripts.ts).
 * Wipes the stored session when `clean`, when it expired while away, or when it is online and not
 * persistent (expiry 0: it ends with the connection this takes over [MQTT-3.1.2-6]
 * [MQTT-3.2.2-3]); increments the epoch, records this node as owner (also in the node's session
 * set, for the reaper) and sends a `kick` to the previous owner's inbox.
 * The stored will of a connection taken over on another node moves to that node's old wills
 * (`NodeKeys.oldWills`: deleted by that node when it reads the kick, taken by its reaper if it died).
 * A delayed will of the session is left alone (only an accepted connection cancels it: SETTLE_WILL).
 * Returns {previous node, epoch, present, previous persist, 1 when a delayed will is scheduled}.
 */
export const TAKEOVER = `${LIB}
if not redis.call('ZSCORE', ARGV[13], ARGV[1]) or redis.call('EXISTS', ARGV[14]) == 1 then
  return redis.error_reply('RELEASED this node was released by the cluster (silent for too long)')
end
local s = KEYS[1]
local cur = redis.call('HMGET', s, 'node', 'online', 'exp', 'persist', 'epoch', 'expiry')
local exists = cur[5] ~= false
local old = cur[1] or ''
-- The will of the connection taken over on another node belongs to that connection: that node's
-- engine publishes it, and deletes this copy when it reads the kick; if that node died first, its
-- reaper finds the copy here (see reap-scripts.ts).
if old ~= '' and old ~= ARGV[1] then
  local w = redis.call('GET', s .. ':will')
  if w then
    redis.call('HSET', ARGV[15] .. old, ARGV[12], (cur[6] or '0') .. ':' .. w)
    redis.call('DEL', s .. ':will')
  end
end
local wasPersist = cur[4] or '0'
local expired = exists and cur[2] ~= '1' and cur[3] and tonumber(cur[3]) > 0 and tonumber(cur[3]) <= tonumber(ARGV[3])
local ending = exists and cur[2] == '1' and wasPersist ~= '1'
local present = 0
if exists and (ARGV[2] == '1' or expired or ending) then
  wipe(ARGV[6], s, ARGV[7], ARGV[8], ARGV[9])
  wasPersist = ARGV[4]
elseif exists then
  present = 1
end
local epoch = redis.call('HINCRBY', s, 'epoch', 1)
redis.call('ZADD', ARGV[6] .. 'sessions', 0, ARGV[7])
redis.call('HSET', s, 'node', ARGV[1], 'online', '1', 'exp', '0', 'persist', ARGV[4], 'expiry', ARGV[5])
redis.call('ZREM', ARGV[6] .. 'expiry', ARGV[7])
-- Queue entries taken by an earlier connection and never settled go back to the head, in order.
-- That connection may have sent them (its node crashed before saving the outgoing record): the
-- tag's high bit marks them, and they are sent again with DUP=1 [MQTT-3.3.1-1].
local taken = redis.call('LRANGE', s .. ':qt', 0, -1)
for i = #taken, 1, -1 do
  local it = taken[i]
  local tag = string.byte(it, 1)
  if tag < 128 then it = string.char(tag + 128) .. string.sub(it, 2) end
  redis.call('LPUSH', s .. ':q', it)
end
redis.call('DEL', s .. ':qt')
-- A delayed will of a released session stays: the connection cancels it once accepted (SETTLE_WILL).
local dwill = 0
if redis.call('ZSCORE', ARGV[6] .. 'wills', ARGV[7]) then dwill = 1 end
local member = ARGV[12]
redis.call('SADD', ARGV[11] .. ARGV[1], member)
if old ~= '' and old ~= ARGV[1] then
  redis.call('SREM', ARGV[11] .. old, member)
  redis.call('XADD', ARGV[10] .. old, 'MAXLEN', '~', '10000', '*', 'type', 'kick', 't', ARGV[9], 'c', ARGV[7], 'e', tostring(epoch), 'n', ARGV[1])
end
return {old, epoch, present, wasPersist, dwill}
`

/**
 * REINDEX: KEYS = session. ARGV = node, epoch, tenant prefix, client id, persist. Adds or removes the
 * session's entries in the persistent-subscription index after its persistence changed.
 */
export const REINDEX = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
local subs = redis.call('HGETALL', s .. ':subs')
for i = 1, #subs, 2 do
  if ARGV[5] == '1' then redis.call('HSET', ARGV[3] .. 'ps:' .. subs[i], ARGV[4], subs[i + 1])
  else redis.call('HDEL', ARGV[3] .. 'ps:' .. subs[i], ARGV[4]) end
end
return #subs / 2
`

/**
 * TERMINATE: KEYS = session. ARGV = node, epoch, expiry seconds, expires at (ms, '0' = never),
 * tenant prefix, client id, route log, tenant, node sessions prefix, session id. Expiry 0: deletes the session
 * and its index entries. Otherwise marks it away (node '', online 0) and records when it expires.
 */
export const TERMINATE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
redis.call('SREM', ARGV[9] .. ARGV[1], ARGV[10])
if tonumber(ARGV[3]) == 0 then
  wipe(ARGV[5], s, ARGV[6], ARGV[7], ARGV[8])
  redis.call('DEL', s)
  redis.call('ZREM', ARGV[5] .. 'expiry', ARGV[6])
  redis.call('ZREM', ARGV[5] .. 'sessions', ARGV[6])
  return 0
end
redis.call('HSET', s, 'node', '', 'online', '0', 'exp', ARGV[4], 'expiry', ARGV[3])
if ARGV[4] ~= '0' then redis.call('ZADD', ARGV[5] .. 'expiry', ARGV[4], ARGV[6]) end
return 1
`

/**
 * EXPIRE: KEYS = session. ARGV = now, tenant prefix, client id, route log, tenant. Deletes an away
 * session whose expiry time passed (re-checked here, so exactly one node acts). Returns 1 if deleted.
 */
export const EXPIRE = `${LIB}
local s = KEYS[1]
local v = redis.call('HMGET', s, 'online', 'exp')
local away = v[1] == '0' and v[2] and tonumber(v[2]) > 0
-- Not due yet: keep it in the expiry set.
if away and tonumber(v[2]) > tonumber(ARGV[1]) then return 0 end
redis.call('ZREM', ARGV[2] .. 'expiry', ARGV[3])
-- Back online, gone, or never expiring: nothing to do.
if not away then return 0 end
wipe(ARGV[2], s, ARGV[3], ARGV[4], ARGV[5])
redis.call('DEL', s)
redis.call('ZREM', ARGV[2] .. 'sessions', ARGV[3])
return 1
`

/**
 * SUBSCRIBE: KEYS = session. ARGV = node, epoch, filter, subscription JSON, tenant prefix, client id,
 * route log, tenant. Stores the subscription and indexes it. Returns 1 when it is new, 0 when it
 * replaced one.
 */
export const SUBSCRIBE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
local persist = redis.call('HGET', s, 'persist')
local isNew = redis.call('HSET', s .. ':subs', ARGV[3], ARGV[4])
if isNew == 1 then index(ARGV[5], ARGV[6], ARGV[3], ARGV[4], persist, ARGV[7], ARGV[8])
elseif persist == '1' then redis.call('HSET', ARGV[5] .. 'ps:' .. ARGV[3], ARGV[6], ARGV[4]) end
return isNew
`

/**
 * UNSUBSCRIBE: KEYS = session. ARGV = node, epoch, filter, tenant prefix, client id, route log,
 * tenant. Returns 1 when the subscription existed.
 */
export const UNSUBSCRIBE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
local n = redis.call('HDEL', s .. ':subs', ARGV[3])
if n == 1 then unindex(ARGV[4], ARGV[5], ARGV[3], ARGV[6], ARGV[7]) end
return n
`

/**
 * ENQUEUE: KEYS = session. ARGV = encoded item (first byte: delivered QoS), max length, caller node,
 * inbox prefix, tenant, client id, now, max bytes. Not fenced: anyone may add to a queue. Refuses
 * when the session is gone, not persistent or expired. When full — `max length` items, or the
 * queued items' encoded bytes plus the new one's above `max bytes` (a single item is always
 * accepted into an empty queue) — evicts the oldest QoS 0 items until it fits, else refuses.
 * The session field `qb` counts queued bytes from above: it grows with each item queued and is
 * recounted from the list (LRANGE, as the eviction needs anyway) only when it says full, so the
 * scripts that take items out need not maintain it. Wakes the owner node (when online and not the
 * caller). Returns {result, owner, evicted}: 1 queued, 2 queued after evicting, 0 refused (full),
 * -1 no such persistent session, -2 expired.
 */
export const ENQUEUE = `
local s = KEYS[1]
local v = redis.call('HMGET', s, 'node', 'persist', 'online', 'exp', 'qb')
if v[2] ~= '1' then return {-1, '', 0} end
if v[3] ~= '1' and v[4] and tonumber(v[4]) > 0 and tonumber(v[4]) < tonumber(ARGV[7]) then return {-2, '', 0} end
local q = s .. ':q'
local size = #ARGV[1]
local maxn = tonumber(ARGV[2])
local maxb = tonumber(ARGV[8])
local n = redis.call('LLEN', q)
local qb = tonumber(v[5] or '0')
if n == 0 then qb = 0 end
local r = 1
local evicted = 0
if n >= maxn or (n > 0 and qb + size > maxb) then
  local items = redis.call('LRANGE', q, 0, -1)
  qb = 0
  for _, it in ipairs(items) do qb = qb + #it end
  local i = 1
  while n >= maxn or (n > 0 and qb + size > maxb) do
    local victim = nil
    while i <= #items do
      local it = items[i]
      i = i + 1
      if string.byte(it, 1) % 128 == 0 then victim = it; break end
    end
    if not victim then
      redis.call('HSET', s, 'qb', qb)
      return {0, '', evicted}
    end
    redis.call('LREM', q, 1, victim)
    n = n - 1
    qb = qb - #victim
    evicted = evicted + 1
    r = 2
  end
end
redis.call('RPUSH', q, ARGV[1])
redis.call('HSET', s, 'qb', qb + size)
local owner = ''
if v[3] == '1' and v[1] then owner = v[1] end
if owner ~= '' and owner ~= ARGV[3] then
  redis.call('XADD', ARGV[4] .. owner, 'MAXLEN', '~', '10000', '*', 'type', 'wake', 't', ARGV[5], 'c', ARGV[6])
end
return {r, owner, evicted}
`

/**
 * TAKE: KEYS = session. ARGV = node, epoch, count (0 = all), keep ('1': the items move to the
 * taken list `:qt` until settled by SAVE_OUT, DONE, REQUEUE or UNTAKE; a later TAKEOVER puts
 * unsettled ones back at the head of the queue). Pops up to `count` queued items.
 */
export const TAKE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
local n = tonumber(ARGV[3])
local q = s .. ':q'
local items = redis.call('LRANGE', q, 0, n - 1)
if n <= 0 then redis.call('DEL', q) else redis.call('LTRIM', q, n, -1) end
if ARGV[4] == '1' then
  for _, it in ipairs(items) do redis.call('RPUSH', s .. ':qt', it) end
end
return items
`

/**
 * REQUEUE: KEYS = session. ARGV = node, epoch, items… Puts taken items back at the head, in order
 * (and out of the taken list).
 */
export const REQUEUE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
for i = #ARGV, 3, -1 do
  redis.call('LREM', s .. ':qt', 1, ARGV[i])
  redis.call('LPUSH', s .. ':q', ARGV[i])
end
return #ARGV - 2
`

/** DONE: KEYS = session. ARGV = node, epoch, items… Settles taken items (delivered at QoS 0, dropped, expired). */
export const DONE = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
for i = 3, #ARGV do redis.call('LREM', s .. ':qt', 1, ARGV[i]) end
return #ARGV - 2
`

/**
 * UNTAKE: KEYS = session. ARGV = item. A taken item the connection could not send (the engine
 * queues it back at its end): moved from the taken list to the tail of the queue. When it is no
 * longer taken (a takeover already put it back), nothing is done. Not fenced, like ENQUEUE.
 */
export const UNTAKE = `
local s = KEYS[1]
if redis.call('LREM', s .. ':qt', 1, ARGV[1]) == 1 then redis.call('RPUSH', s .. ':q', ARGV[1]) end
return 1
`

/**
 * SAVE_OUT: KEYS = session. ARGV = node, epoch, packet id, encoded record, taken queue item
 * (optional). A new packet id gets the next order number; a replaced record keeps its place. The
 * queue item the record was made from leaves the taken list in the same step: a crash loses
 * neither, and never both exist.
 */
export const SAVE_OUT = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
if ARGV[5] then redis.call('LREM', s .. ':qt', 1, ARGV[5]) end
if not redis.call('ZSCORE', s .. ':ord', ARGV[3]) then
  redis.call('ZADD', s .. ':ord', redis.call('HINCRBY', s, 'oseq', 1), ARGV[3])
end
redis.call('HSET', s .. ':out', ARGV[3], ARGV[4])
return 1
`

/**
 * FENCED: KEYS = session. ARGV = node, epoch, then commands, each as its argument count followed by
 * its arguments. Runs them in order after the fencing check; returns the last reply.
 */
export const FENCED = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
local i = 3
local r = 0
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  r = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return r
`

/** RESET: KEYS = session. ARGV = node, epoch, tenant prefix, client id, route log, tenant. */
export const RESET = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
wipe(ARGV[3], s, ARGV[4], ARGV[5], ARGV[6])
return 1
`

/**
 * ORPHAN: KEYS = session. ARGV = dead node, now, tenant prefix, client id, route log, tenant.
 * The reaper's step for one session of a node that stopped heart-beating: if the dead node still
 * owns it, a persistent session becomes away (its expiry starts now), any other is deleted. The
 * stored will is taken (read and deleted here, so exactly one caller ever gets it).
 * Returns {1 made away | 0 deleted | -1 another node owns it meanwhile, will or '', expiry}.
 */
export const ORPHAN = `${LIB}
local s = KEYS[1]
local v = redis.call('HMGET', s, 'node', 'persist', 'expiry')
if v[1] ~= ARGV[1] then return {-1, '', '0'} end
local will = redis.call('GET', s .. ':will') or ''
redis.call('DEL', s .. ':will')
local expiry = tonumber(v[3] or '0') or 0
if v[2] ~= '1' or expiry == 0 then
  wipe(ARGV[3], s, ARGV[4], ARGV[5], ARGV[6])
  redis.call('DEL', s)
  redis.call('ZREM', ARGV[3] .. 'sessions', ARGV[4])
  return {0, will, '0'}
end
local exp = '0'
if expiry < 4294967295 then
  exp = string.format('%.0f', tonumber(ARGV[2]) + expiry * 1000)
  redis.call('ZADD', ARGV[3] .. 'expiry', exp, ARGV[4])
end
redis.call('HSET', s, 'node', '', 'online', '0', 'exp', exp)
redis.call('HINCRBY', s, 'epoch', 1)
return {1, will, v[3]}
`

/**
 * DELAY_WILL: KEYS = session. ARGV = encoded will, due time (ms), tenant prefix, client id.
 * Keeps the will of a released session until it is due (Will Delay Interval), unless the session
 * is back online meanwhile. Returns 1 when scheduled.
 */
export const DELAY_WILL = `
local s = KEYS[1]
if redis.call('HGET', s, 'online') == '1' then return 0 end
redis.call('SET', s .. ':dwill', ARGV[1])
redis.call('ZADD', ARGV[3] .. 'wills', ARGV[2], ARGV[4])
return 1
`

/**
 * SCHEDULE_WILL: KEYS = session. ARGV = node, epoch, encoded will, due time (ms), tenant prefix,
 * client id. The engine's delayed will of a connection that ends (fenced: a connection that lost
 * the session schedules nothing). Cancelled by the next TAKEOVER of the session.
 */
export const SCHEDULE_WILL = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
redis.call('SET', s .. ':dwill', ARGV[3])
redis.call('ZADD', ARGV[5] .. 'wills', ARGV[4], ARGV[6])
return 1
`

/**
 * WILL_DUE: KEYS = session. ARGV = tenant prefix, client id, now. Takes a delayed will that is
 * due (removed from the schedule here: exactly one node gets it). While the session is online (a
 * CONNECT between its setup and CONNACK) the will stays scheduled: accepted, that connection
 * cancels it (SETTLE_WILL); refused, it ends and the will goes out at the next sweep.
 * Returns the encoded will, or '' when there is none to publish.
 */
export const WILL_DUE = `
local s = KEYS[1]
local due = redis.call('ZSCORE', ARGV[1] .. 'wills', ARGV[2])
if not due or tonumber(due) > tonumber(ARGV[3]) then return '' end
if redis.call('HGET', s, 'online') == '1' then return '' end
redis.call('ZREM', ARGV[1] .. 'wills', ARGV[2])
local will = redis.call('GET', s .. ':dwill') or ''
redis.call('DEL', s .. ':dwill')
return will
`

/**
 * SETTLE_WILL: KEYS = session. ARGV = node, epoch, tenant prefix, client id. A connection to the
 * session was accepted: its delayed will is taken off the schedule [MQTT-3.1.3-9] (fenced: a
 * connection that lost the session settles nothing). Returns the encoded will ('' when none), which
 * the caller publishes when the connection's Clean Start ended the session.
 */
export const SETTLE_WILL = `${LIB}
local s = KEYS[1]
if fenced(s, ARGV[1], ARGV[2]) then return redis.error_reply('FENCED session owned by another connection') end
redis.call('ZREM', ARGV[3] .. 'wills', ARGV[4])
local will = redis.call('GET', s .. ':dwill') or ''
redis.call('DEL', s .. ':dwill')
return will
`

/** Every script, loaded by the link at start and after each reconnect. */
export const ALL_SCRIPTS: readonly string[] = [
  TAKEOVER,
  REINDEX,
  TERMINATE,
  EXPIRE,
  SUBSCRIBE,
  UNSUBSCRIBE,
  ENQUEUE,
  TAKE,
  REQUEUE,
  DONE,
  UNTAKE,
  SAVE_OUT,
  FENCED,
  RESET,
  STORE_RETAINED,
  LOAD_FILTERS,
  ORPHAN,
  DELAY_WILL,
  SCHEDULE_WILL,
  WILL_DUE,
  SETTLE_WILL,
  PUBLISH_BATCH,
  ...REAP_SCRIPTS
]
