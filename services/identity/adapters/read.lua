-- Read many hash fields in one call, and optionally string keys that share a prefix.
-- ARGV[1]: JSON [[bucket, field], ...]; ARGV[2]: a key prefix, ARGV[3]: JSON [suffix, ...]
-- (both optional). Returns the fields' values, then the keys' values; false = absent.
local out = {}
local n = 0
for i, pair in ipairs(cjson.decode(ARGV[1])) do
  n = i
  out[i] = redis.call('HGET', pair[1], pair[2]) or false
end
if ARGV[2] then
  for j, suffix in ipairs(cjson.decode(ARGV[3])) do
    out[n + j] = redis.call('GET', ARGV[2] .. suffix) or false
  end
end
return out
