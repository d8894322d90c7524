-- Shared by the scripts that count rate-limit windows (prepended at compile
-- time).
-- Adds n hits to a fixed rate-limit window's counter (0 reads it, and
-- creates nothing), keeping the counter `keep` ms from its first hit.
-- Returns the count after adding. Only these scripts write these keys, always
-- with their expiry in the same script, so a count of n is a key this call
-- created (as prelude.lua's `count` reasons): no PTTL to ask.
-- `keep` and `hits` go to Redis as the strings they came as (see close in
-- prelude.lua: Redis 7.0 prints a Lua number for a command with "%.17g").
local function bump(key, keep, hits)
  local n = tonumber(hits)
  if n == 0 then
    return tonumber(redis.call('GET', key) or '0')
  end
  local c = redis.call('INCRBY', key, hits)
  if c == n then
    redis.call('PEXPIRE', key, keep)
  end
  return c
end

-- Adds one hit to each of `count` counters KEYS[k..] in turn and stops after
-- the first whose count passes its limit (that hit is counted, as every
-- refused hit is). ARGV[a + 2i], ARGV[a + 2i + 1]: the i-th counter's keep
-- (ms) and limit. Returns the counts of the counters hit, in order, and
-- whether the last one passed its limit.
local function hit_in_order(k, a, count)
  local counts = {}
  for i = 0, count - 1 do
    local n = bump(KEYS[k + i], ARGV[a + 2 * i], '1')
    counts[i + 1] = n
    if n > tonumber(ARGV[a + 2 * i + 1]) then
      return counts, true
    end
  end
  return counts, false
end

-- Adds hits to `count` counters and reads each one's previous window,
-- unchanged. KEYS[k + 2i], KEYS[k + 2i + 1]: the i-th counter's window and
-- the one before; ARGV[a]: how long to keep a counter (ms); ARGV[a + 1 + i]:
-- the i-th counter's hits to add. Returns, for each counter, its count after
-- adding and the previous window's.
local function add_and_read_previous(k, a, count)
  local reply = {}
  for i = 0, count - 1 do
    reply[2 * i + 1] = bump(KEYS[k + 2 * i], ARGV[a], ARGV[a + 1 + i])
    reply[2 * i + 2] = tonumber(redis.call('GET', KEYS[k + 2 * i + 1]) or '0')
  end
  return reply
end

-- A start's gate (see `Gate`): the number's wrong codes, then the pause
-- flag, then, when neither refuses, the rate-limit counters hit in order.
-- KEYS[k], KEYS[k + 1]: the number's wrong codes in the lockout window and
-- in the day; then the flag when ARGV[a + 2] is 1; then the counters.
-- ARGV[a], ARGV[a + 1]: the counts that lock; ARGV[a + 3]: how many
-- counters; then each counter's keep (ms) and limit.
-- Returns {lockout count, day count, 1 when the flag is raised, the counts
-- of the counters hit...}, whether the gate refused, and the indexes of the
-- first key and argument after the gate's.
local function gate(k, a)
  local wrong = redis.call('MGET', KEYS[k], KEYS[k + 1])
  local lockout, day = tonumber(wrong[1] or '0'), tonumber(wrong[2] or '0')
  local flagged = ARGV[a + 2] == '1'
  local count = tonumber(ARGV[a + 3])
  local first = k + 2
  if flagged then
    first = k + 3
  end
  local after_k, after_a = first + count, a + 4 + 2 * count
  if lockout >= tonumber(ARGV[a]) or day >= tonumber(ARGV[a + 1]) then
    return {lockout, day, 0}, true, after_k, after_a
  end
  if flagged and redis.call('EXISTS', KEYS[k + 2]) == 1 then
    return {lockout, day, 1}, true, after_k, after_a
  end
  local reply = {lockout, day, 0}
  local counts, refused = hit_in_order(first, a + 4, count)
  for _, n in ipairs(counts) do
    reply[#reply + 1] = n
  end
  return reply, refused, after_k, after_a
end
