-- Claims a verification's one automatic voice fallback (mirrors
-- Verification::claim_fallback) and counts it as a send.
-- KEYS[1]  the record
-- ARGV     1 now, 2 max sends, 3 retention_ms
-- Returns  {'claimed', sealed, view} | {'skip', reason} | {'not_found'}
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'sends', 'fallback', 'sealed', 'deliveries')
if not f[1] then
  return {'not_found'}
end
local now = tonumber(ARGV[1])
if f[1] ~= 'pending' then
  return {'skip', 'not_pending'}
end
if now >= tonumber(f[2]) then
  redis.call('HSET', KEYS[1], 'status', 'expired')
  close(KEYS[1], false, tonumber(ARGV[3]))
  return {'skip', 'not_pending'}
end
if f[4] == '1' then
  return {'skip', 'already_called'}
end
for _, d in ipairs(cjson.decode(f[6] or '[]')) do
  if d.channel == 'voice' then
    return {'skip', 'already_called'}
  end
end
for _, d in ipairs(cjson.decode(f[6] or '[]')) do
  if d.channel == 'sms' and d.status == 'delivered' then
    return {'skip', 'delivered'}
  end
end
if tonumber(f[3]) >= tonumber(ARGV[2]) then
  return {'skip', 'send_limit'}
end
redis.call('HSET', KEYS[1], 'fallback', 1, 'sends', tonumber(f[3]) + 1, 'last_sent_at', ARGV[1])
return {'claimed', f[5] or '', view(KEYS[1])}
