-- Checks a typed code in one round trip: compare digests, count the attempt
-- on the verification and, for a wrong code, against its number in the
-- lockout window and the day (so every wrong code counts, whatever later ends
-- the verification), approve and close on success.
-- KEYS[1]  mode "number": the number's pointer; mode "id": the record itself
-- ARGV     1 mode, 2 record key prefix, 3 now, 4 retention_ms, 5 the number's
--          hash (mode "number"), 6 id (mode "id"), 7 counter prefix
--          ("…:{tag}:rl:"), 8 lockout window (ms), 9 day window (ms), 10 the
--          application the check is for, 11… the typed code's digests under
--          every secret (one or more: every argument from the 11th)
-- Returns  {result, id, view}; result is approved | wrong | exhausted | expired |
--          not_pending | not_found (another application's record is not found)
local rk = KEYS[1]
local id = ARGV[6]
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
-- number's hash, then the view (FIELDS, from f[3]), which the check then
-- updates in place and answers with (packed from the third value on) rather
-- than reading it again or copying it.
local f = redis.call('HMGET', rk, 'digest', 'nh', unpack(FIELDS))
local digest, nh = f[1], f[2]
local status, expires_at, attempts, max_attempts, app = f[6], f[8], f[9], f[10], f[15]
-- A record without its number's hash (written by an older version) is the
-- number's by its pointer alone.
if not status or (pointer and nh and nh ~= ARGV[5]) or not owned(app, ARGV[10]) then
  return {'not_found'}
end
if status ~= 'pending' then
  return {'not_pending', id, packed(f, 2)}
end
if reached(ARGV[3], expires_at) then
  close(rk, pointer, ARGV[4], 'status', 'expired')
  f[6] = 'expired'
  return {'expired', id, packed(f, 2)}
end
-- Digests are keyed HMACs: comparing them leaks nothing about the code.
for i = 11, #ARGV do
  if ARGV[i] == digest then
    close(rk, pointer, ARGV[4], 'status', 'approved')
    f[6] = 'approved'
    return {'approved', id, packed(f, 2)}
  end
end
local hash = nh or (pointer and ARGV[5])
if hash then
  local now = tonumber(ARGV[3])
  count(ARGV[7], 'lockout', hash, tonumber(ARGV[8]), now)
  count(ARGV[7], 'failed', hash, tonumber(ARGV[9]), now)
end
local max = tonumber(max_attempts)
local tries = math.min(tonumber(attempts) + 1, max)
f[9] = string.format('%d', tries)
if tries >= max then
  close(rk, pointer, ARGV[4], 'status', 'max_attempts_reached', 'attempts', f[9])
  f[6] = 'max_attempts_reached'
  return {'exhausted', id, packed(f, 2)}
end
redis.call('HSET', rk, 'attempts', f[9])
return {'wrong', id, packed(f, 2)}
