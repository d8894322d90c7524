-- Shared by every script (prepended at compile time).
-- A verification is one hash; FIELDS is the public view, in the order the
-- Rust side reads it. The digest and sealed code are never returned.
local FIELDS = {'to', 'channel', 'locale', 'status', 'created_at', 'expires_at',
  'attempts', 'max_attempts', 'sends', 'last_sent_at', 'deliveries', 'fallback'}

local function view(rk)
  return redis.call('HMGET', rk, unpack(FIELDS))
end

-- A verification that reached a final status forgets its code material and
-- stays readable for the retention period.
local function close(rk, pointer, retention)
  redis.call('HDEL', rk, 'digest', 'sealed')
  redis.call('PEXPIRE', rk, retention)
  if pointer then
    redis.call('PEXPIRE', pointer, retention)
  end
end
