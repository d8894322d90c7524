-- Deletes a factor its application asks to, returning what it was.
-- KEYS[1]  the factor's record
-- ARGV     1 the application asking ('' for any), 2 now (ms), 3 the
--          identity index's prefix ("…:{tag}:fi:"), 4 the factor's id
-- Returns  the record's FACTOR_FIELDS, or {} when there is none to delete
local f = redis.call('HMGET', KEYS[1], 'app', 'status', 'created_at', 'digits', 'secret', 'profile', 'last_step')
if not f[2] or not owned(f[1], ARGV[1]) then
  return {}
end
local ih = redis.call('HGET', KEYS[1], 'ih')
redis.call('DEL', KEYS[1])
if ih then
  local index = ARGV[3] .. ih
  redis.call('ZREM', index, ARGV[4])
  keep_index(index, tonumber(ARGV[2]))
end
return f
