-- Opens a verification for a number, or re-sends the one already open.
-- KEYS[1]  the number's pointer to its latest verification
-- ARGV     1 record key prefix ("…:{tag}:v:"), 2 now, 3 new id, 4 to (E.164),
--          5 channel, 6 locale, 7 expires_at, 8 max_attempts, 9 digest,
--          10 sealed, 11 cooldown_ms, 12 max_sends, 13 retention_ms
-- Returns  {outcome, id, extra, view}; outcome is created | resend (extra: the
--          sealed code) | cooldown (extra: ms to wait) | send_limit
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[13])
local current = redis.call('GET', KEYS[1])
if current then
  local rk = ARGV[1] .. current
  local f = redis.call('HMGET', rk, 'status', 'expires_at', 'sends', 'last_sent_at', 'sealed', 'to')
  if f[1] == 'pending' and f[6] == ARGV[4] then
    if now < tonumber(f[2]) then
      local ready = tonumber(f[4]) + tonumber(ARGV[11])
      if now < ready then
        return {'cooldown', current, tostring(ready - now), view(rk)}
      end
      if tonumber(f[3]) >= tonumber(ARGV[12]) then
        return {'send_limit', current, '', view(rk)}
      end
      redis.call('HSET', rk, 'sends', tonumber(f[3]) + 1, 'last_sent_at', ARGV[2], 'channel', ARGV[5])
      return {'resend', current, f[5], view(rk)}
    end
    redis.call('HSET', rk, 'status', 'expired')
    close(rk, false, retention)
  end
end
local rk = ARGV[1] .. ARGV[3]
redis.call('HSET', rk,
  'to', ARGV[4], 'channel', ARGV[5], 'locale', ARGV[6], 'status', 'pending',
  'created_at', ARGV[2], 'expires_at', ARGV[7], 'attempts', 0,
  'max_attempts', ARGV[8], 'sends', 1, 'last_sent_at', ARGV[2],
  'deliveries', '[]', 'fallback', 0, 'digest', ARGV[9], 'sealed', ARGV[10])
local ttl = tonumber(ARGV[7]) - now + retention
redis.call('PEXPIRE', rk, ttl)
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
return {'created', ARGV[3], '', view(rk)}
