"""Lua for the notification state machine; each script handles a whole batch of ids.

A script runs atomically, so a batch call is exactly the same as its single calls
made one after another, in order, with nothing in between: batching changes the
number of round trips, never the state machine.
"""

from __future__ import annotations

# KEYS: schedule, then one state key per id, then profile hashes to read.
# ARGV: now, lease, ttl, origin, n, then (id, request) n times.
# Reply: five slots per id (verdict, attempt, failed|final state, reported, outcome),
# then one HGETALL array per profile key.
CLAIM_BATCH = """
local schedule = KEYS[1]
local now, lease, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local origin, n = ARGV[4], tonumber(ARGV[5])
local function claim(key, id, req)
  local state = redis.call('HGET', key, 'state')
  if not state then
    redis.call('HSET', key, 'state', 'pending', 'attempt', 1, 'lease', now + lease,
               'req', req, 'failed', '')
    redis.call('EXPIRE', key, ttl)
    return {'claimed', '1', ''}
  end
  local attempt = tonumber(redis.call('HGET', key, 'attempt') or '0')
  local failed = redis.call('HGET', key, 'failed') or ''
  if state == 'pending' then
    local held = tonumber(redis.call('HGET', key, 'lease') or '0')
    if held > now then
      redis.call('ZADD', schedule, held, id)
      return {'in_flight', tostring(attempt), ''}
    end
    redis.call('HSET', key, 'attempt', attempt + 1, 'lease', now + lease)
    return {'reclaimed', tostring(attempt + 1), failed}
  end
  if state == 'retrying' then
    local due = tonumber(redis.call('HGET', key, 'due') or '0')
    if origin == 'retry' and due <= now then
      redis.call('HSET', key, 'state', 'pending', 'attempt', attempt + 1, 'lease', now + lease)
      return {'claimed', tostring(attempt + 1), failed}
    end
    redis.call('ZADD', schedule, due, id)
    return {'scheduled', tostring(attempt), ''}
  end
  if origin == 'retry' then redis.call('ZREM', schedule, id) end
  return {'final', tostring(attempt), state, redis.call('HGET', key, 'reported') or '0',
          redis.call('HGET', key, 'outcome') or ''}
end
local reply = {}
for i = 1, n do
  local one = claim(KEYS[i + 1], ARGV[4 + 2 * i], ARGV[5 + 2 * i])
  for j = 1, 5 do reply[#reply + 1] = one[j] or '' end
end
for k = n + 2, #KEYS do reply[#reply + 1] = redis.call('HGETALL', KEYS[k]) end
return reply
"""

# KEYS: schedule, n state keys, then n customer profile hashes. ARGV: ttl, now, window,
# then (state, outcome, id, marketing) per id: a marketing send is added to the profile's
# recent marketing sends (the safety cap's count), those older than window dropped.
# Reply: per id, the time of a delivery receipt that came while it was in flight (a
# 'sent' with one becomes 'delivered' at once), else ''.
FINISH_BATCH = """
local ttl, now, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local n = (#KEYS - 1) / 2
local receipts = {}
for i = 1, n do
  local key, at = KEYS[1 + i], 4 + (i - 1) * 4
  local state = ARGV[at]
  local receipt = redis.call('HGET', key, 'receipt_at') or ''
  if state == 'sent' and receipt ~= '' then
    state = 'delivered'
    redis.call('HSET', key, 'receipt_reported', '0')
  end
  redis.call('HSET', key, 'state', state, 'outcome', ARGV[at + 1], 'reported', '0')
  redis.call('HDEL', key, 'req')
  redis.call('EXPIRE', key, ttl)
  redis.call('ZREM', KEYS[1], ARGV[at + 2])
  if ARGV[at + 3] == '1' and (state == 'sent' or state == 'delivered') then
    local profile = KEYS[1 + n + i]
    local old = redis.call('HGET', profile, 'mk_sent') or ''
    local kept = {}
    for t in string.gmatch(string.match(old, '\t(.*)$') or '', '[^,]+') do
      if tonumber(t) > now - window then kept[#kept + 1] = t end
    end
    kept[#kept + 1] = ARGV[2]
    while #kept > 50 do table.remove(kept, 1) end
    redis.call('HSET', profile, 'mk_sent', '0\t' .. table.concat(kept, ','))
  end
  receipts[#receipts + 1] = (state == 'delivered') and receipt or ''
end
return receipts
"""

# KEYS: state keys whose outcomes Kafka has acknowledged (the hash may have expired).
MARK_REPORTED = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 'reported', '1')
    if redis.call('HGET', KEYS[i], 'state') == 'delivered' then
      redis.call('HSET', KEYS[i], 'receipt_reported', '1')
    end
  end
end
return #KEYS
"""

# A delivery receipt. KEYS: state key, schedule. ARGV: receipt time (epoch s), id.
# Reply {verdict, x}: 'delivered' + the stored 'sent' outcome (now delivered; also when
# its delivered outcome was not yet acknowledged by Kafka), 'arrived' + the request (a
# send that timed out did arrive: its retry is called off, it is delivered), 'early'
# (still in flight: kept for its finish), 'ignored' + the state (unknown id, failed,
# suppressed, already reported).
CONFIRM = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'retrying' then
  local req = redis.call('HGET', KEYS[1], 'req')
  redis.call('HSET', KEYS[1], 'state', 'delivered', 'receipt_at', ARGV[1],
             'receipt_reported', '0')
  redis.call('ZREM', KEYS[2], ARGV[2])
  return {'arrived', req, redis.call('HGET', KEYS[1], 'attempt') or '1'}
end
if state == 'sent' then
  redis.call('HSET', KEYS[1], 'state', 'delivered', 'receipt_at', ARGV[1],
             'receipt_reported', '0')
  return {'delivered', redis.call('HGET', KEYS[1], 'outcome')}
end
if state == 'delivered' and redis.call('HGET', KEYS[1], 'receipt_reported') == '0' then
  local outcome = redis.call('HGET', KEYS[1], 'outcome') or ''
  if outcome == '' then  -- 'arrived' before a crash, its outcome not yet stored
    return {'arrived', redis.call('HGET', KEYS[1], 'req'),
            redis.call('HGET', KEYS[1], 'attempt') or '1'}
  end
  return {'delivered', outcome}
end
if state == 'pending' then
  redis.call('HSET', KEYS[1], 'receipt_at', ARGV[1])
  return {'early', ''}
end
return {'ignored', state or 'unknown'}
"""

# A claim made earlier in the batch, about to be used: extend its lease only if it is
# still ours (same attempt, still pending) and re-read the profile. {0} = lost it.
# KEYS: state key, profile hash. ARGV: attempt, new lease end.
REFRESH = """
if redis.call('HGET', KEYS[1], 'state') == 'pending'
   and redis.call('HGET', KEYS[1], 'attempt') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lease', ARGV[2])
  return {1, redis.call('HGETALL', KEYS[2])}
end
return {0}
"""

# KEYS: state key, schedule. ARGV: due, failed channels, id, refund ('1': the send was
# not tried, so the claim's attempt is given back).
RESCHEDULE = """
redis.call('HSET', KEYS[1], 'state', 'retrying', 'due', ARGV[1], 'failed', ARGV[2])
if ARGV[4] == '1' then redis.call('HINCRBY', KEYS[1], 'attempt', -1) end
redis.call('ZADD', KEYS[2], tonumber(ARGV[1]), ARGV[3])
return 1
"""

POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
end
return ids
"""
