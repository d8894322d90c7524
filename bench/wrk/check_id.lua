-- POST /v1/verifications/check by id, each thread walking its share of the
-- preloaded verifications. args: threads, ids file, API key, code. With the
-- right code each request approves a fresh verification (one that ran out
-- would answer 404, which RESULT counts as non2xx); with a wrong one each
-- request spends one of a verification's attempts.
local ids, n, i, headers, code
function init(args)
  ids, n = my_lines(args[2], tonumber(args[1]))
  headers = api_headers(args[3])
  code = args[4]
  i = 0
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("POST", "/v1/verifications/check", headers,
    '{"id":"' .. ids[i] .. '","code":"' .. code .. '"}')
end
