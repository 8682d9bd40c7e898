-- Read many hash fields in one call. ARGV[1]: JSON [[bucket, field], ...]; false = absent.
local out = {}
for i, pair in ipairs(cjson.decode(ARGV[1])) do
  out[i] = redis.call('HGET', pair[1], pair[2]) or false
end
return out
