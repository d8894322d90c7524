-- Claims due jobs atomically: each claimed job is leased (re-scored into the
-- future), so another instance cannot take it, and a claimer that dies leaves
-- it to come due again when the lease ends.
-- KEYS[1]  the jobs sorted set (score: due time in ms)
-- ARGV     1 now, 2 lease end, 3 most jobs to claim
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, job in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], job)
end
return due
