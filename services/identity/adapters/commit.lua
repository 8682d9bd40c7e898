-- Commit one batch of identity resolutions atomically, or refuse if anything the batch
-- read has changed since (compare-and-set).
-- KEYS: version counter, stats hash, then: index buckets to check, customers to check,
--       index buckets to write, customers to write, customers to delete, outboxes to
--       write (counts in ARGV[1..6]).
-- ARGV: nc, cc, nw, cw, cd, no, outbox ttl, identifiers delta, customers delta,
--       (identifier, expected entry or '' for absent) pairs, (customer id, expected
--       version) pairs, (identifier, entry) pairs, (customer id, "version|doc") pairs,
--       customer ids to delete, outboxes.
local nc, cc, nw, cw, cd, no = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                               tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local k, a = 3, 10
for _ = 1, nc do
  if (redis.call('HGET', KEYS[k], ARGV[a]) or '') ~= ARGV[a + 1] then return {-1, ARGV[a]} end
  k, a = k + 1, a + 2
end
for _ = 1, cc do
  local record = redis.call('HGET', KEYS[k], ARGV[a])
  local version = record and string.match(record, '^(%d+)|') or '0'
  if version ~= ARGV[a + 1] then return {-1, ARGV[a]} end
  k, a = k + 1, a + 2
end
for _ = 1, nw do
  redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
  k, a = k + 1, a + 2
end
for _ = 1, cw do
  redis.call('HSET', KEYS[k], ARGV[a], ARGV[a + 1])
  k, a = k + 1, a + 2
end
for _ = 1, cd do
  redis.call('HDEL', KEYS[k], ARGV[a])
  k, a = k + 1, a + 1
end
for _ = 1, no do
  redis.call('SET', KEYS[k], ARGV[a], 'EX', ARGV[7])
  k, a = k + 1, a + 1
end
if ARGV[8] ~= '0' then redis.call('HINCRBY', KEYS[2], 'identifiers', ARGV[8]) end
if ARGV[9] ~= '0' then redis.call('HINCRBY', KEYS[2], 'customers', ARGV[9]) end
return {redis.call('INCR', KEYS[1]), ''}
