-- Ends a pending verification as canceled or failed.
-- KEYS[1]  the record
-- ARGV     1 final status, 2 now, 3 retention_ms
-- Returns  {result, view}; result is done | not_pending | not_found
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at')
if not f[1] then
  return {'not_found'}
end
if f[1] ~= 'pending' then
  return {'not_pending', view(KEYS[1])}
end
local retention = tonumber(ARGV[3])
if tonumber(ARGV[2]) >= tonumber(f[2]) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  close(KEYS[1], false, retention)
  return {'not_pending', view(KEYS[1])}
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
close(KEYS[1], false, retention)
return {'done', view(KEYS[1])}
