-- POST /v1/verifications/check, each thread walking its share of the
-- preloaded verifications, by id or by number. args: threads, file (one id or
-- one E.164 number a line), API key, code, field ("id" or "to"; "id" when
-- absent). With the right code each request approves a fresh verification
-- (one that ran out would answer 404, which RESULT counts as non2xx); with a
-- wrong one each request spends one of a verification's attempts.
local values, n, i, headers, code, field
function init(args)
  values, n = my_lines(args[2], tonumber(args[1]))
  headers = api_headers(args[3])
  code = args[4]
  field = args[5] or "id"
  i = 0
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("POST", "/v1/verifications/check", headers,
    '{"' .. field .. '":"' .. values[i] .. '","code":"' .. code .. '"}')
end
