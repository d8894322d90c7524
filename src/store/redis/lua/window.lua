-- Shared by hit.lua and hit_in_order.lua (prepended at compile time).
-- Adds n hits to a fixed rate-limit window's counter (0 reads it), keeping
-- the counter `keep` ms from its first hit. Returns the count after adding.
local function bump(key, keep, n)
  local c = redis.call('INCRBY', key, n)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, keep)
  end
  return c
end
