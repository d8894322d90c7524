-- Shared by every script (prepended at compile time).
-- A verification is one hash; FIELDS is the public view, in the order the
-- Rust side reads it. The digest and sealed code are never returned.
local FIELDS = {'to', 'channel', 'locale', 'status', 'created_at', 'expires_at',
  'attempts', 'max_attempts', 'sends', 'last_sent_at', 'deliveries', 'fallback', 'app'}

-- A view (the values of FIELDS, false for a field the record lacks) as one
-- string: the fields joined by NUL, '\1' for an absent one (the server
-- writes neither byte in any field: its texts are ids, numbers, words and
-- JSON, which escapes control characters). The server parses one string far
-- faster than an array of them, and Redis, measured, spends less on one
-- concat than on replying an array. Every "view" a script returns is this.
-- The view is the values from v[from + 1] on (`from` values come first, as
-- in the check's one read of more fields); it fills their absent ones in
-- place.
local function packed(v, from)
  for i = from + 1, from + #FIELDS do
    if not v[i] then
      v[i] = '\1'
    end
  end
  return table.concat(v, '\0', from + 1, from + #FIELDS)
end

local function view(rk)
  return packed(redis.call('HMGET', rk, unpack(FIELDS)), 0)
end

-- A verification reaches a final status: `...` are the fields to write (the
-- status first, as field, value pairs), and in the same HSET it forgets its
-- code material (the digest and the sealed code become empty strings; one
-- command where an HSET and an HDEL were two, each command a script runs
-- costing Redis some 8,000 instructions around its own work). It stays
-- readable for the retention period: `retention` is the script's argument as
-- given, a string. (Redis 7.0 prints every Lua number handed to a command
-- with "%.17g"; measured under live starts, that float printing was 5% of
-- Redis's CPU, so numbers go to commands as integer strings.)
local function close(rk, pointer, retention, ...)
  redis.call('HSET', rk, 'digest', '', 'sealed', '', ...)
  redis.call('PEXPIRE', rk, retention)
  if pointer then
    redis.call('PEXPIRE', pointer, retention)
  end
end

-- Whether the time `now` is at or past `at`, both as the scripts get them:
-- milliseconds since the epoch written as decimal integers without leading
-- zeros (the server's arguments, and the times the scripts store). A longer
-- one is the later, and one as long compares digit by digit; no `tonumber`,
-- whose `strtod` cost a check more than the comparison it served.
local function reached(now, at)
  return #now > #at or (#now == #at and now >= at)
end

-- Adds one to one of a number's counters for the fixed window of `window`
-- ms holding `now` (the window's index ends its name, as `window_of` names
-- it in Rust); kept twice the window. Returns the count and when the window
-- ends.
local function count(base, counter, hash, window, now)
  local index = math.floor(now / window)
  local key = base .. counter .. ':' .. hash .. ':' .. string.format('%d', index)
  local c = redis.call('INCR', key)
  -- Only this function writes these keys, always with their expiry in the
  -- same script: a count of 1 is a key this call created.
  if c == 1 then
    redis.call('PEXPIRE', key, string.format('%d', window * 2))
  end
  return c, (index + 1) * window
end

-- Whether a record whose `app` field is `app` belongs to the application
-- `want` ('' for any). A record without one is the default application's:
-- the default writes none, as before there were applications.
local function owned(app, want)
  return want == '' or (app or 'default') == want
end

-- The verification behind a call reference (the key `ck`) as its call sees
-- it (the server's CallView): {id, sealed or '', status, expires_at, locale
-- or '', app or ''}, or nil when unknown. Not the whole view: an answer needs
-- neither the number nor the deliveries.
local function resolve(ck, prefix)
  local id = redis.call('GET', ck)
  if not id then
    return nil
  end
  local f = redis.call('HMGET', prefix .. id, 'sealed', 'status', 'expires_at', 'locale', 'app')
  if not f[2] then
    return nil
  end
  return {id, f[1] or '', f[2], f[3] or '', f[4] or '', f[5] or ''}
end
