/**
 * The Lua scripts of the Redis backend that touch no session: the retained store, the filter
 * snapshot of a tenant and the publish path. The session scripts (fenced) are in scripts.ts, whose
 * `ALL_SCRIPTS` lists these too.
 */

/**
 * STORE_RETAINED: KEYS = retained hash, retained index, byte count. ARGV = topic, encoded message
 * ('' deletes), max messages, max bytes. The byte count (a string key) is the sum of the stored
 * encoded messages' lengths, kept exact by this script (the only writer of the hash); when it is
 * missing (a store written before it existed) it is counted once from the hash. Returns 1 when
 * stored or deleted, 0 when refused: the topic is new and the store holds `max messages`, or the
 * store's bytes would go beyond `max bytes`.
 */
export const STORE_RETAINED = `
local old = redis.call('HSTRLEN', KEYS[1], ARGV[1])
if ARGV[2] == '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECRBY', KEYS[3], old) end
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
local bytes = redis.call('GET', KEYS[3])
if bytes then
  bytes = tonumber(bytes)
else
  bytes = 0
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
    cursor = page[1]
    for i = 2, #page[2], 2 do bytes = bytes + #page[2][i] end
  until cursor == '0'
  redis.call('SET', KEYS[3], bytes)
end
if old == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if bytes - old + #ARGV[2] > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('INCRBY', KEYS[3], #ARGV[2] - old)
return 1
`

/**
 * LOAD_FILTERS: KEYS = filter counts, route log, wildcard version. Returns {last log id, wildcard
 * version, filter, count, …}, atomically, so that a node applies exactly the log entries written
 * after its snapshot.
 */
export const LOAD_FILTERS = `
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then id = last[1][1] end
local out = {id, redis.call('GET', KEYS[3]) or '0'}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do out[#out + 1] = all[i] end
return out
`

/**
 * PUBLISH_BATCH: routes the messages a node published in one event-loop turn, in order, in one
 * call. KEYS = nodes (the registry). ARGV = node stream prefix, stream max length, publishing node,
 * number of items, the items' encoded messages concatenated (RedisLink.batched), then per item:
 * its length (the number of arguments after it), tenant, filter-counts key, tenant prefix, the
 * byte length of its encoded message (cut from the concatenation, in item order), read persistent
 * subscribers ('1'/'0'), the
 * tenant's wildcard version the node's filter mirror is at, filters… (the topic and the matching
 * wildcard filters of that mirror).
 *
 * For each item: the number of matching subscriptions (`fc`); the message goes to each other node
 * that has a live subscription to a matching filter (the route table `nr:<filter>`, whose fields
 * are node ids; the publishing node delivers to its own clients itself), once per node; and, for
 * QoS 1/2, the persistent subscribers of each matching filter (`ps:<filter>`). When the tenant's
 * filter version (`wv`, bumped with each new wildcard or shared filter) is above the mirror's, the
 * mirror may lack a filter that matches: the message then goes to every other live node, which
 * matches it against its own subscriptions, and the reply says so (the caller completes the shared
 * and durable paths once its mirror caught up). No command of it can fail on well-typed keys, so
 * no item is half done.
 *
 * The messages for one node are sent as ONE stream entry per call (field `b`: per message, u16
 * tenant length, tenant, u32 message length, encoded message; in publish order), not one XADD per
 * message. Reads are memoized for the call (the script runs atomically: nothing changes under
 * it): a topic published 100 times in one call costs one HKEYS and one count, not 100.
 * Returns one {count, version if stale else 0, {sid, json, …}…} per item (an empty list for a
 * filter without subscribers).
 */
export const PUBLISH_BATCH = `
local out = {}
local i = 6
local bytes = ARGV[5]
local at = 1
local everyone = nil
-- Per destination node: the frames of its messages, in order.
local frames = {}
local order = {}
local routes = {}
local counts = {}
local versions = {}
local persistent = {}
-- Queues message m of tenant t for node n, once per item (sent), never for the publisher.
local function send(sent, n, frame)
  if n ~= ARGV[3] and not sent[n] then
    sent[n] = true
    local list = frames[n]
    if not list then
      list = {}
      frames[n] = list
      order[#order + 1] = n
    end
    list[#list + 1] = frame
  end
end
for k = 1, tonumber(ARGV[4]) do
  local len = tonumber(ARGV[i])
  local tp = ARGV[i + 3]
  local fc = ARGV[i + 2]
  local t = ARGV[i + 1]
  local ml = tonumber(ARGV[i + 4])
  local m = string.sub(bytes, at, at + ml - 1)
  at = at + ml
  local frame = struct.pack('>I2', #t) .. t .. struct.pack('>I4', #m) .. m
  -- The counts of the filters not read in this call yet, in one HMGET.
  local missing = {}
  for j = i + 7, i + len do
    local key = fc .. '\\0' .. ARGV[j]
    if counts[key] == nil then missing[#missing + 1] = ARGV[j] end
  end
  if #missing > 0 then
    local read = redis.call('HMGET', fc, unpack(missing))
    for f = 1, #missing do counts[fc .. '\\0' .. missing[f]] = read[f] or false end
  end
  local total = 0
  local sent = {}
  local present = {}
  for j = i + 7, i + len do
    local filter = ARGV[j]
    local c = counts[fc .. '\\0' .. filter]
    present[#present + 1] = c
    if c then total = total + tonumber(c) end
    -- Not gated by the count: after a Redis restart that lost the data, nodes re-add their routes.
    local rk = tp .. 'nr:' .. filter
    local nodes = routes[rk]
    if not nodes then
      nodes = redis.call('HKEYS', rk)
      routes[rk] = nodes
    end
    for _, n in ipairs(nodes) do send(sent, n, frame) end
  end
  local wv = versions[tp]
  if not wv then
    wv = tonumber(redis.call('GET', tp .. 'wv') or '0')
    versions[tp] = wv
  end
  local stale = 0
  if wv > tonumber(ARGV[i + 6]) then
    stale = wv
    everyone = everyone or redis.call('ZRANGE', KEYS[1], 0, -1)
    for _, n in ipairs(everyone) do send(sent, n, frame) end
  end
  local r = {total, stale}
  if ARGV[i + 5] == '1' then
    for f = 1, #present do
      if present[f] then
        local pk = tp .. 'ps:' .. ARGV[i + 6 + f]
        local list = persistent[pk]
        if not list then
          list = redis.call('HGETALL', pk)
          persistent[pk] = list
        end
        r[f + 2] = list
      else
        r[f + 2] = {}
      end
    end
  end
  out[k] = r
  i = i + len + 1
end
for _, n in ipairs(order) do
  redis.call('XADD', ARGV[1] .. n, 'MAXLEN', '~', ARGV[2], '*', 'b', table.concat(frames[n]))
end
return out
`
