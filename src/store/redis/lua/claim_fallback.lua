-- Claims the next step of a verification's automatic fallback (mirrors
-- Verification::claim_fallback and FallbackChannels) and counts it as a send.
-- The `fallback` field lists the channels the fallback sent on, in order
-- ("sms,voice"); '0' (or none) is none yet, and '1', written by versions
-- with only the SMS→voice fallback, is "voice".
-- KEYS[1]  the record
-- ARGV     1 now, 2 max sends, 3 retention_ms, 4 FALLBACK_CHANNELS ("sms,voice"),
--          5 the channel whose message failed ('' for a missing receipt)
-- Returns  {'claimed', sealed, view, channel} | {'skip', reason} | {'not_found'}
local f = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'sends', 'fallback', 'sealed',
  'deliveries', 'channel')
if not f[1] then
  return {'not_found'}
end
local now = tonumber(ARGV[1])
if f[1] ~= 'pending' then
  return {'skip', 'not_pending'}
end
if now >= tonumber(f[2]) then
  close(KEYS[1], false, ARGV[3], 'status', 'expired')
  return {'skip', 'not_pending'}
end

local function split(list)
  local out = {}
  for c in string.gmatch(list or '', '[^,]+') do
    out[#out + 1] = c
  end
  return out
end
local function has(list, c)
  for _, x in ipairs(list) do
    if x == c then
      return true
    end
  end
  return false
end

local taken = {}
if f[4] == '1' then
  taken = {'voice'}
elseif f[4] and f[4] ~= '0' then
  taken = split(f[4])
end
-- The chain of a verification sent on its channel: WhatsApp's is the whole
-- list, SMS's the list without sms, a call's nothing.
local channel = f[7]
local chain = {}
if channel == 'whatsapp' or channel == 'sms' then
  for _, c in ipairs(split(ARGV[4])) do
    if not (channel == 'sms' and c == 'sms') then
      chain[#chain + 1] = c
    end
  end
end
local step = nil
if ARGV[5] == '' then
  for _, c in ipairs(chain) do
    if not has(taken, c) then
      step = c
      break
    end
  end
elseif ARGV[5] == channel then
  step = chain[1]
else
  for i, c in ipairs(chain) do
    if c == ARGV[5] then
      step = chain[i + 1]
      break
    end
  end
end
if step == nil or has(taken, step) then
  return {'skip', 'already_used'}
end
local deliveries = cjson.decode(f[6] or '[]')
for _, d in ipairs(deliveries) do
  if d.channel == step then
    return {'skip', 'already_used'}
  end
end
for _, d in ipairs(deliveries) do
  if d.channel ~= 'voice' and (d.status == 'delivered' or d.status == 'read') then
    return {'skip', 'delivered'}
  end
end
if tonumber(f[3]) >= tonumber(ARGV[2]) then
  return {'skip', 'send_limit'}
end
taken[#taken + 1] = step
redis.call('HSET', KEYS[1], 'fallback', table.concat(taken, ','), 'sends', tonumber(f[3]) + 1,
  'last_sent_at', ARGV[1])
return {'claimed', f[5] or '', view(KEYS[1]), step}
