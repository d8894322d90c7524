-- POST to the voice answer URL as Plivo does: each request carries its own
-- V3 signature and nonce, signed beforehand by `load sign` (a nonce is
-- accepted once; a replay would be a 403, which RESULT counts as non2xx).
-- args: threads, signed lines file (`path nonce signature`), body file.
local paths, nonces, signatures, n, i, body
function init(args)
  local lines
  lines, n = my_lines(args[2], tonumber(args[1]))
  paths, nonces, signatures = {}, {}, {}
  for k = 1, n do
    paths[k], nonces[k], signatures[k] = lines[k]:match("^(%S+) (%S+) (%S+)$")
  end
  local f = assert(io.open(args[3], "rb"))
  body = f:read("*a")
  f:close()
  i = 0
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("POST", paths[i], {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Plivo-Signature-V3"] = signatures[i],
    ["X-Plivo-Signature-V3-Nonce"] = nonces[i],
  }, body)
end
