-- Opens a verification for a number, or re-sends the one already open, and
-- counts the send against the number's budget; a start refused by the
-- cooldown or the send limit sends nothing and counts nothing.
-- KEYS[1]  the number's pointer to its latest verification
-- ARGV     1 record key prefix ("…:{tag}:v:"), 2 now, 3 new id, 4 to,
--          5 channel, 6 locale, 7 expires_at, 8 max_attempts, 9 digest,
--          10 sealed, 11 cooldown_ms, 12 max_sends, 13 retention_ms,
--          14 the number's hash, 15 counter prefix ("…:{tag}:rl:"),
--          16 sends allowed per window, 17 the window (ms), 18 the
--          application ('' for the default, which records none), 19 1 for
--          a gated start (below)
-- Returns  {outcome, id, extra, view}; outcome is created | resend (extra: the
--          sealed code) | cooldown (extra: ms to wait) | send_limit |
--          number_limited ({outcome, '', ms to wait}) | gated ({outcome,
--          the gate's reply})
--
-- A gated start (only on a single node: the gate's keys are in slots of
-- their own) first passes its gate, window.lua's `gate` from KEYS[2] and
-- ARGV[20]; a refusal starts nothing. The argument after the gate's is how
-- many counters a created verification feeds: window.lua's
-- `add_and_read_previous` from the key and argument after, whose reply is
-- the created outcome's fifth item.
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[13])
local hash = ARGV[14]

local feed_k, feed_a
if ARGV[19] == '1' then
  local reply, refused, k, a = gate(2, 20)
  if refused then
    return {'gated', reply}
  end
  feed_k, feed_a = k, a
end

-- Counts this send; the wait in ms when the budget is spent, else nil.
local function spend()
  local sent, ends = count(ARGV[15], 'number', hash, tonumber(ARGV[17]), now)
  if sent > tonumber(ARGV[16]) then
    return math.max(ends - now, 1)
  end
  return nil
end

local current = redis.call('GET', KEYS[1])
if current then
  local rk = ARGV[1] .. current
  local f = redis.call('HMGET', rk, 'status', 'expires_at', 'sends', 'last_sent_at', 'sealed', 'nh')
  -- A record written before records kept their number's hash is the
  -- number's by its pointer alone.
  if f[1] == 'pending' and (not f[6] or f[6] == hash) then
    if now < tonumber(f[2]) then
      local ready = tonumber(f[4]) + tonumber(ARGV[11])
      if now < ready then
        return {'cooldown', current, string.format('%d', ready - now), view(rk)}
      end
      if tonumber(f[3]) >= tonumber(ARGV[12]) then
        return {'send_limit', current, '', view(rk)}
      end
      local wait = spend()
      if wait then
        return {'number_limited', '', string.format('%d', wait)}
      end
      redis.call('HSET', rk, 'sends', string.format('%d', tonumber(f[3]) + 1), 'last_sent_at', ARGV[2], 'channel', ARGV[5])
      return {'resend', current, f[5], view(rk)}
    end
    close(rk, false, ARGV[13], 'status', 'expired')
  end
end
local wait = spend()
if wait then
  return {'number_limited', '', string.format('%d', wait)}
end
local rk = ARGV[1] .. ARGV[3]
-- The new record's view (FIELDS' order; the default application records
-- none): written as it is, with the fields no view shows, and returned
-- without reading it back.
local v = {ARGV[4], ARGV[5], ARGV[6], 'pending', ARGV[2], ARGV[7], '0', ARGV[8], '1',
  ARGV[2], '[]', '0', false}
if ARGV[18] ~= '' then
  v[13] = ARGV[18]
end
local record = {'digest', ARGV[9], 'sealed', ARGV[10], 'nh', hash}
for i = 1, #FIELDS do
  if v[i] then
    record[#record + 1] = FIELDS[i]
    record[#record + 1] = v[i]
  end
end
redis.call('HSET', rk, unpack(record))
local ttl = string.format('%d', tonumber(ARGV[7]) - now + retention)
redis.call('PEXPIRE', rk, ttl)
redis.call('SET', KEYS[1], ARGV[3], 'PX', ttl)
local fed = {}
if feed_k then
  fed = add_and_read_previous(feed_k, feed_a + 1, tonumber(ARGV[feed_a]))
end
return {'created', ARGV[3], '', packed(v, 0), fed}
