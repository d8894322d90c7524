-- Checks a typed code in one round trip: compare digests, count the attempt
-- on the verification and, for a wrong code, against its number in the
-- lockout window and the day (so every wrong code counts, whatever later ends
-- the verification), approve and close on success.
-- KEYS[1]  mode "number": the number's pointer; mode "id": the record itself
-- ARGV     1 mode, 2 record key prefix, 3 now, 4 retention_ms, 5 the number's
--          hash (mode "number"), 6 digest count n, 7 id (mode "id"),
--          8 counter prefix ("…:{tag}:rl:"), 9 lockout window (ms),
--          10 day window (ms), 11 the application the check is for, 12…11+n
--          the typed code's digests under every secret
-- Returns  {result, id, view}; result is approved | wrong | exhausted | expired |
--          not_pending | not_found (another application's record is not found)
local rk = KEYS[1]
local id = ARGV[7]
local pointer = false
if ARGV[1] == 'number' then
  local current = redis.call('GET', KEYS[1])
  if not current then
    return {'not_found'}
  end
  pointer = KEYS[1]
  id = current
  rk = ARGV[2] .. current
end
-- One read of every field the check and its answer need: the digest and the
-- number's hash, then the view (FIELDS), which the check then updates in
-- place rather than reading it again.
local f = redis.call('HMGET', rk, 'digest', 'nh', unpack(FIELDS))
local v = {unpack(f, 3, 2 + #FIELDS)}
local digest, nh = f[1], f[2]
local status, expires_at, attempts, max_attempts, app = v[4], v[6], v[7], v[8], v[13]
-- A record without its number's hash (written by an older version) is the
-- number's by its pointer alone.
if not status or (pointer and nh and nh ~= ARGV[5]) or not owned(app, ARGV[11]) then
  return {'not_found'}
end
local now = tonumber(ARGV[3])
if status ~= 'pending' then
  return {'not_pending', id, packed(v)}
end
if now >= tonumber(expires_at) then
  redis.call('HSET', rk, 'status', 'expired')
  close(rk, pointer, ARGV[4])
  v[4] = 'expired'
  return {'expired', id, packed(v)}
end
-- Digests are keyed HMACs: comparing them leaks nothing about the code.
local last = 11 + tonumber(ARGV[6])
for i = 12, last do
  if ARGV[i] == digest then
    redis.call('HSET', rk, 'status', 'approved')
    close(rk, pointer, ARGV[4])
    v[4] = 'approved'
    return {'approved', id, packed(v)}
  end
end
local hash = nh or (pointer and ARGV[5])
if hash then
  count(ARGV[8], 'lockout', hash, tonumber(ARGV[9]), now)
  count(ARGV[8], 'failed', hash, tonumber(ARGV[10]), now)
end
local max = tonumber(max_attempts)
local tries = math.min(tonumber(attempts) + 1, max)
v[7] = string.format('%d', tries)
if tries >= max then
  redis.call('HSET', rk, 'attempts', v[7], 'status', 'max_attempts_reached')
  close(rk, pointer, ARGV[4])
  v[4] = 'max_attempts_reached'
  return {'exhausted', id, packed(v)}
end
redis.call('HSET', rk, 'attempts', v[7])
return {'wrong', id, packed(v)}
