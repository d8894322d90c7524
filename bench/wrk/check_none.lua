-- POST /v1/verifications/check by number, for numbers that never had a
-- verification (+14155xxxxxx; the preloads and starts use other ranges): the
-- 404 path. args: threads, API key.
local headers, i, base
function init(args)
  headers = api_headers(args[2])
  i = 0
  base = tid * 500000
end

function request()
  i = i + 1
  return wrk.format("POST", "/v1/verifications/check", headers,
    string.format('{"to":"+14155%06d","code":"123456"}', (base + i) % 1000000))
end
