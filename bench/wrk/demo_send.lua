-- Plivo's 2fa-python-demo, for the side-by-side: GET /verify/<number> (a code
-- by SMS through the Plivo SDK, pointed at the fake Plivo), a new number every
-- time, as start.lua does. args: threads, area code.
local i, prefix
function init(args)
  i = 0
  prefix = "+1" .. (args[2] or "917") .. (6 + tid)
end

function request()
  i = i + 1
  return wrk.format("GET", string.format("/verify/%s%06d", prefix, i % 1000000))
end
