-- Apply one resolution to the identity graph atomically, or refuse if anything it was
-- computed from has changed since it was read (compare-and-set).
-- KEYS: version counter, stats hash, outbox key, then node checks, customer checks,
--       node writes, customer writes, customer deletes (counts in ARGV[1..5]).
-- ARGV: counts(5), outbox ttl, outbox payload, nodes delta, customers delta,
--       expected node values ('' = absent), expected customer versions ('0' = absent),
--       node values, (customer version, customer doc) pairs.
local nc, cc, nw, cw, cd = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
                           tonumber(ARGV[4]), tonumber(ARGV[5])
local k, a = 4, 10
for _ = 1, nc do
  if (redis.call('GET', KEYS[k]) or '') ~= ARGV[a] then return {-1, KEYS[k]} end
  k, a = k + 1, a + 1
end
for _ = 1, cc do
  if (redis.call('HGET', KEYS[k], 'v') or '0') ~= ARGV[a] then return {-1, KEYS[k]} end
  k, a = k + 1, a + 1
end
for _ = 1, nw do
  redis.call('SET', KEYS[k], ARGV[a])
  k, a = k + 1, a + 1
end
for _ = 1, cw do
  redis.call('HSET', KEYS[k], 'v', ARGV[a], 'd', ARGV[a + 1])
  k, a = k + 1, a + 2
end
for _ = 1, cd do
  redis.call('DEL', KEYS[k])
  k = k + 1
end
if ARGV[6] ~= '0' then redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[6]) end
if ARGV[8] ~= '0' then redis.call('HINCRBY', KEYS[2], 'identifiers', ARGV[8]) end
if ARGV[9] ~= '0' then redis.call('HINCRBY', KEYS[2], 'customers', ARGV[9]) end
return {redis.call('INCR', KEYS[1]), ''}
