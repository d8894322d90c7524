-- The job queue's length, and how many of its first ARGV[1] jobs (the
-- soonest due) are named with the prefix ARGV[2].
-- KEYS[1]: the jobs sorted set.
local total = redis.call('ZCARD', KEYS[1])
local prefix = ARGV[2]
local matching = 0
for _, job in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  if string.sub(job, 1, #prefix) == prefix then
    matching = matching + 1
  end
end
return {total, matching}
