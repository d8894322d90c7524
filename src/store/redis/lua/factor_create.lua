-- Keeps a new factor unless its identity already has as many live factors
-- as it may (its abandoned enrolments are dropped from the index first).
-- KEYS[1]  the factor's record, KEYS[2] its identity's index
-- ARGV     1 the factor's id, 2 now (ms), 3 the most live factors an
--          identity may have, 4 how long an unverified factor lives (ms;
--          '' for a verified one), 5.. the record's field and value pairs
-- Returns  1 when kept, 0 when the identity is full (nothing written)
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local score = 'inf'
if ARGV[4] ~= '' then
  local ttl = tonumber(ARGV[4])
  -- Gone unless verified in time (the first right code persists it).
  redis.call('PEXPIRE', KEYS[1], ttl)
  score = string.format('%d', now + ttl)
end
redis.call('ZADD', KEYS[2], score, ARGV[1])
keep_index(KEYS[2], now)
return 1
