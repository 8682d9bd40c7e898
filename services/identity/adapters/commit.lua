-- Commit one batch of identity resolutions atomically, or refuse if anything the batch
-- read has changed since (compare-and-set).
-- KEYS[1] graph version counter, KEYS[2] stats hash.
-- ARGV[1] one JSON document:
--   expect:          (a string; optional) the graph version every value the batch
--                    used is from. Still the version: nothing it read has changed, so
--                    nothing is checked. Not: refused with {-2, version now}, and the
--                    caller sends the checks below instead.
--   check_index:     [[bucket, identifier, expected entry or ""], ...]
--   check_customers: [[bucket, customer id, expected version], ...]
--   index:           [[bucket, identifier, entry], ...]
--   customers:       [[bucket, customer id, i], ...]  ARGV[i]: "version|document"
--   removed:         [[bucket, customer id], ...]
--   outboxes:        [[key, i], ...]   ARGV[i]: the payload, written with TTL `ttl`
--   identifiers, new_customers: counter deltas
-- Documents and payloads follow as arguments of their own: inside the JSON they were
-- escaped strings, ~3/4 of its bytes, which the worker packed and Redis decoded.
local b = cjson.decode(ARGV[1])
if b.expect then
  local now = redis.call('GET', KEYS[1]) or '0'
  if now ~= b.expect then return {-2, now} end
else
  for _, c in ipairs(b.check_index) do
    if (redis.call('HGET', c[1], c[2]) or '') ~= c[3] then return {-1, c[2]} end
  end
  for _, c in ipairs(b.check_customers) do
    local record = redis.call('HGET', c[1], c[2])
    local version = record and string.match(record, '^(%d+)|') or '0'
    if version ~= c[3] then return {-1, c[2]} end
  end
end
for _, w in ipairs(b.index) do redis.call('HSET', w[1], w[2], w[3]) end
for _, w in ipairs(b.customers) do redis.call('HSET', w[1], w[2], ARGV[w[3]]) end
for _, d in ipairs(b.removed) do redis.call('HDEL', d[1], d[2]) end
for _, o in ipairs(b.outboxes) do redis.call('SET', o[1], ARGV[o[2]], 'EX', b.ttl) end
if b.identifiers ~= 0 then redis.call('HINCRBY', KEYS[2], 'identifiers', b.identifiers) end
if b.new_customers ~= 0 then redis.call('HINCRBY', KEYS[2], 'customers', b.new_customers) end
return {redis.call('INCR', KEYS[1]), ''}
