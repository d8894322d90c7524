-- Records a delivery or moves it forward; never backwards (see Delivery::supersedes).
-- A report whose id matches nothing takes over the first delivery of its
-- channel recorded without an id (see Delivery::adopts).
-- KEYS[1]  the record; KEYS[2] (a single node only) the job schedule
-- ARGV     1 delivery JSON (with its "rank"), 2 provider id, 3 rank,
--          4 sequence ('' when none), 5 status, 6 channel,
--          7 the prefix of ids that are not Plivo's (LOCAL_ID_PREFIX);
--          with KEYS[2]: 8 when the job comes due (ms), 9 the job
-- Returns  {result, view}; result is applied | stale | not_found
-- The job (a send's fallback) is scheduled whatever the record says, as
-- JobStore::schedule would: it finds out when it runs.
if KEYS[2] then
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[9])
end
-- One read of the record's view (FIELDS), its deliveries among them, which
-- the answer then returns as updated rather than reading it again.
local v = redis.call('HMGET', KEYS[1], unpack(FIELDS))
if not v[4] then
  return {'not_found'}
end
-- The first delivery (a new verification's send, the usual case) joins an
-- empty list as it came: the loops below would find nothing in it, so the
-- JSON is neither decoded nor encoded again.
if not v[11] or v[11] == '[]' then
  v[11] = '[' .. ARGV[1] .. ']'
  redis.call('HSET', KEYS[1], 'deliveries', v[11])
  return {'applied', packed(v, 0)}
end
local list = cjson.decode(v[11])
local incoming = cjson.decode(ARGV[1])
local rank = tonumber(ARGV[3])
local sequence = tonumber(ARGV[4])
local found = false
local at = nil
for i, d in ipairs(list) do
  if d.provider_id == ARGV[2] then
    at = i
    break
  end
end
local function is_local(id)
  return string.sub(id, 1, #ARGV[7]) == ARGV[7]
end
if at == nil and not is_local(ARGV[2]) then
  for i, d in ipairs(list) do
    if is_local(d.provider_id) and d.channel == ARGV[6] then
      at = i
      break
    end
  end
end
for i, d in ipairs(list) do
  if i == at then
    found = true
    local old_rank = tonumber(d.rank) or 0
    local old_sequence = tonumber(d.sequence)
    local newer = rank > old_rank or (rank == old_rank and d.status ~= ARGV[5]
      and sequence ~= nil and old_sequence ~= nil and sequence > old_sequence)
    if not newer then
      return {'stale', packed(v, 0)}
    end
    if d.created_at ~= nil then
      incoming.created_at = d.created_at
    end
    -- A receipt without its Type is of the message it names.
    incoming.channel = d.channel
    list[i] = incoming
  end
end
if not found then
  list[#list + 1] = incoming
end
v[11] = cjson.encode(list)
redis.call('HSET', KEYS[1], 'deliveries', v[11])
return {'applied', packed(v, 0)}
