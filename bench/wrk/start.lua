-- POST /v1/verifications for a new number every time (thread t uses
-- +1<area>(6+t)xxxxxx, so no number meets the resend cooldown). args:
-- threads, API key, area code (415 when absent; scenarios sharing one Redis
-- use different ones).
local headers, i, prefix
function init(args)
  headers = api_headers(args[2])
  i = 0
  prefix = "+1" .. (args[3] or "415") .. (6 + tid)
end

function request()
  i = i + 1
  return wrk.format("POST", "/v1/verifications", headers,
    string.format('{"to":"%s%06d","channel":"sms"}', prefix, i % 1000000))
end
