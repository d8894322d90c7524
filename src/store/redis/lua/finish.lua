-- Ends a pending verification as canceled, failed, or (when due) expired.
-- KEYS[1]  the record
-- ARGV     1 final status, 2 now, 3 retention_ms, 4 the application it is
--          done for ('' for any)
-- Returns  {result, view}; result is done | not_pending | not_due | not_found
--          (another application's record is not found)
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'app')
if not f[1] or not owned(f[3], ARGV[4]) then
  return {'not_found'}
end
if f[1] ~= 'pending' then
  return {'not_pending', view(KEYS[1])}
end
local due = tonumber(ARGV[2]) >= tonumber(f[2])
if ARGV[1] == 'expired' and not due then
  return {'not_due', view(KEYS[1])}
end
if due then
  close(KEYS[1], false, ARGV[3], 'status', 'expired')
  if ARGV[1] == 'expired' then
    return {'done', view(KEYS[1])}
  end
  return {'not_pending', view(KEYS[1])}
end
close(KEYS[1], false, ARGV[3], 'status', ARGV[1])
return {'done', view(KEYS[1])}
