-- An identity's index of its live factors: a sorted set of factor ids, each
-- scored by when its enrolment is abandoned (+inf once verified). Kept for
-- as long as its latest entry lasts.
local function keep_index(index, now)
  local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
  if not last[2] then
    return
  end
  if last[2] == 'inf' then
    redis.call('PERSIST', index)
  else
    redis.call('PEXPIRE', index, math.max(tonumber(last[2]) - now, 1))
  end
end
