-- A signed answer request in one round trip: takes its nonce (refused when
-- already seen), then resolves the call's reference as resolve_call.lua does.
-- Both keys carry the call's hash tag: one Cluster slot.
-- KEYS[1]  the nonce key, KEYS[2] the call reference key
-- ARGV     1 how long the nonce is remembered (ms), 2 record key prefix
-- Returns  {'replayed'}, {'unknown'}, or {'found', then what resolve returns}
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return {'replayed'}
end
local found = resolve(KEYS[2], ARGV[2])
if not found then
  return {'unknown'}
end
table.insert(found, 1, 'found')
return found
