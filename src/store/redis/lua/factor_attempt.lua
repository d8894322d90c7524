-- Records a typed authenticator code against a factor in one round trip:
-- refuse while the factor is locked or its identity is at the day's
-- ceiling, accept a step later than the last accepted one (a code is never
-- accepted twice), else count a wrong code in a row and in the identity's
-- UTC day, locking the factor after max attempts in a row.
-- KEYS[1]  the factor's record
-- ARGV     1 the application asking ('' for any), 2 stage (verify | check),
--          3 the step the code belongs to ('' for a wrong code), 4 now (ms),
--          5 max attempts in a row, 6 lock (ms), 7 counter prefix
--          ("…:{tag}:rl:"), 8 day window (ms), 9 wrong codes allowed a day,
--          10 the identity index's prefix ("…:{tag}:fi:"), 11 the factor's id
-- Returns  {'approved'} | {'wrong', remaining} | {'locked', retry_ms} |
--          {'ceiling', retry_ms} | {'wrong_stage', status} | {'not_found'}
local rk = KEYS[1]
local f = redis.call('HMGET', rk, 'status', 'app', 'last_step', 'fails', 'locked_until', 'ih')
if not f[1] or not owned(f[2], ARGV[1]) then
  return {'not_found'}
end
local now = tonumber(ARGV[4])
local locked_until = tonumber(f[5] or '0')
if locked_until > now then
  return {'locked', string.format('%d', locked_until - now)}
end
local day = tonumber(ARGV[8])
local index = math.floor(now / day)
local day_key = ARGV[7] .. 'factor-failed:' .. f[6] .. ':' .. string.format('%d', index)
if tonumber(redis.call('GET', day_key) or '0') >= tonumber(ARGV[9]) then
  return {'ceiling', string.format('%d', math.max((index + 1) * day - now, 1))}
end
local wanted = 'verified'
if ARGV[2] == 'verify' then
  wanted = 'unverified'
end
if f[1] ~= wanted then
  return {'wrong_stage', f[1]}
end
if ARGV[3] ~= '' then
  local step = tonumber(ARGV[3])
  if not f[3] or step > tonumber(f[3]) then
    redis.call('HSET', rk, 'last_step', ARGV[3], 'fails', 0, 'status', 'verified')
    -- A verified factor stays until deleted (an unverified one expires).
    redis.call('PERSIST', rk)
    if f[1] == 'unverified' then
      local index = ARGV[10] .. f[6]
      redis.call('ZADD', index, 'inf', ARGV[11])
      keep_index(index, now)
    end
    return {'approved'}
  end
end
count(ARGV[7], 'factor-failed', f[6], day, now)
local fails = tonumber(f[4] or '0') + 1
local max = tonumber(ARGV[5])
if fails >= max then
  local lock = tonumber(ARGV[6])
  redis.call('HSET', rk, 'fails', 0, 'locked_until', string.format('%d', now + lock))
  return {'locked', string.format('%d', math.max(lock, 1))}
end
redis.call('HSET', rk, 'fails', fails)
return {'wrong', string.format('%d', max - fails)}
