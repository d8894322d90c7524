-- A start's gate in one step (see `Gate`): the number's wrong codes, then the
-- pause flag, then, when neither refuses, the rate-limit counters hit in
-- order as hit_in_order.lua hits them. Only on a single node: the keys are
-- in slots of their own.
-- KEYS     1 the number's wrong codes in the lockout window, 2 in the day,
--          then the flag when ARGV[3] is 1, then the counters in order
-- ARGV     1 the lockout window's count that locks, 2 the day's, 3 1 when
--          there is a flag, then for each counter its keep (ms) and limit
-- Returns  {lockout count, day count, 1 when the flag is raised, the
--          counts of the counters hit...}
local lockout = tonumber(redis.call('GET', KEYS[1]) or '0')
local day = tonumber(redis.call('GET', KEYS[2]) or '0')
if lockout >= tonumber(ARGV[1]) or day >= tonumber(ARGV[2]) then
  return {lockout, day, 0}
end
local first = 3
if ARGV[3] == '1' then
  first = 4
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return {lockout, day, 1}
  end
end
local reply = {lockout, day, 0}
for _, n in ipairs(hit_in_order(first, 4)) do
  reply[#reply + 1] = n
end
return reply
