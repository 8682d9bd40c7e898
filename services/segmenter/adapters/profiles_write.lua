-- Write a flush's profile views in one call (one command on the client, however many
-- customers): ARGV = prefix, then per customer: id, op, n, field1, value1, ... fieldn, valuen
--   op "f": set these n fields (the rest of the view stays)
--   op "v": the whole view: these n fields (every field is sent each time)
--   op "a": absorbed: the view is deleted, then these n fields (the pointer) written
local prefix = ARGV[1]
local i = 2
local written = 0
while i <= #ARGV do
  local key = prefix .. ARGV[i]
  local op = ARGV[i + 1]
  local n = tonumber(ARGV[i + 2])
  if op == "a" then
    redis.call("DEL", key)
  end
  if n > 0 then
    redis.call("HSET", key, unpack(ARGV, i + 3, i + 2 + 2 * n))
  end
  written = written + 1
  i = i + 3 + 2 * n
end
return written
