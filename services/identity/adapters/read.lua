-- Read many hash fields in one call, with the graph version they are from, and optionally
-- string keys that share a prefix.
-- KEYS[1] the graph version counter.
-- ARGV[1] the version the caller's remembered values are from ("" for none);
-- ARGV[2] JSON [[bucket, field], ...] read always; ARGV[3] JSON [[bucket, field], ...] that
-- the caller remembers: read only when the graph is no longer at ARGV[1] (someone wrote);
-- ARGV[4] a key prefix, ARGV[5] JSON [suffix, ...] (both optional).
-- Returns {version, the fields' values, the remembered fields' values (only when the
-- version is not ARGV[1]), the keys' values}; false = absent.
local version = redis.call('GET', KEYS[1]) or '0'
local out = {tonumber(version)}
local n = 1
for _, pair in ipairs(cjson.decode(ARGV[2])) do
  n = n + 1
  out[n] = redis.call('HGET', pair[1], pair[2]) or false
end
if version ~= ARGV[1] then
  for _, pair in ipairs(cjson.decode(ARGV[3])) do
    n = n + 1
    out[n] = redis.call('HGET', pair[1], pair[2]) or false
  end
end
if ARGV[4] then
  local keys = {}
  for j, suffix in ipairs(cjson.decode(ARGV[5])) do keys[j] = ARGV[4] .. suffix end
  -- as a rule none is pending: one EXISTS for them all, and a GET only if some are
  local pending = #keys > 0 and redis.call('EXISTS', unpack(keys)) or 0
  for j, key in ipairs(keys) do
    out[n + j] = pending > 0 and redis.call('GET', key) or false
  end
end
return out
