-- Deletes a factor its application asks to, returning what it was.
-- KEYS[1]  the factor's record
-- ARGV     1 the application asking ('' for any)
-- Returns  the record's FACTOR_FIELDS, or {} when there is none to delete
local f = redis.call('HMGET', KEYS[1], 'app', 'status', 'created_at', 'digits', 'secret', 'profile', 'last_step')
if not f[2] or not owned(f[1], ARGV[1]) then
  return {}
end
redis.call('DEL', KEYS[1])
return f
