-- Shared by the scripts that count rate-limit windows (prepended at compile
-- time).
-- Adds n hits to a fixed rate-limit window's counter (0 reads it), keeping
-- the counter `keep` ms from its first hit. Returns the count after adding.
local function bump(key, keep, n)
  local c = redis.call('INCRBY', key, n)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, keep)
  end
  return c
end

-- Adds one hit to each counter KEYS[first..] in turn and stops after the
-- first whose count passes its limit (that hit is counted, as every refused
-- hit is). ARGV[at + 2i], ARGV[at + 2i + 1]: the i-th counter's keep (ms)
-- and limit. Returns the counts of the counters hit, in order.
local function hit_in_order(first, at)
  local counts = {}
  for i = 0, #KEYS - first do
    local n = bump(KEYS[first + i], ARGV[at + 2 * i], 1)
    counts[i + 1] = n
    if n > tonumber(ARGV[at + 2 * i + 1]) then
      break
    end
  end
  return counts
end
