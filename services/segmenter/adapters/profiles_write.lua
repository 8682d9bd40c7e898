-- Write a flush's profile views in one call (one command on the client, however many
-- customers): ARGV = prefix, then per customer: id, op, fields, where fields is one JSON
-- array [name1, value1, ..., namen, valuen] of strings (one argument: the client packs 3
-- arguments per customer instead of ~45, and cjson reads the array in C)
--   op "f": set these fields (the rest of the view stays)
--   op "v": the whole view (every field is sent each time)
--   op "a": absorbed: the view is deleted, then these fields (the pointer) written
local prefix = ARGV[1]
local written = 0
for i = 2, #ARGV, 3 do
  local key = prefix .. ARGV[i]
  if ARGV[i + 1] == "a" then
    redis.call("DEL", key)
  end
  local flat = cjson.decode(ARGV[i + 2])
  if #flat > 0 then
    redis.call("HSET", key, unpack(flat))
  end
  written = written + 1
end
return written
