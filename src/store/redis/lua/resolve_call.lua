-- Resolves a voice call's reference to its verification, with the sealed code
-- while the verification can still be read out.
-- KEYS[1]  the call reference key
-- ARGV     1 record key prefix
-- Returns  {id, sealed or '', view}, or {} when unknown
local id = redis.call('GET', KEYS[1])
if not id then
  return {}
end
local rk = ARGV[1] .. id
local sealed = redis.call('HGET', rk, 'sealed')
if redis.call('EXISTS', rk) == 0 then
  return {}
end
return {id, sealed or '', view(rk)}
