-- Delete keys that share a prefix, put together here (the client encodes one argument,
-- not one per key). ARGV[1]: the prefix, ARGV[2]: JSON [suffix, ...]. Returns how many.
local n = 0
for _, suffix in ipairs(cjson.decode(ARGV[2])) do
  n = n + redis.call('DEL', ARGV[1] .. suffix)
end
return n
