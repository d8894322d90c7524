-- Plivo's 2fa-python-demo, for the side-by-side (BENCHMARKS.md says how to
-- run it): GET /checkcode/<number>/<code>, each thread walking its share of
-- the numbers whose codes load.sh preloaded into the demo's Redis. args:
-- threads, numbers file, code. The demo answers a right code 200 (and deletes
-- it) and a wrong one 404, which RESULT counts as non2xx.
local numbers, n, i, code
function init(args)
  numbers, n = my_lines(args[2], tonumber(args[1]))
  code = args[3]
  i = 0
end

function request()
  i = i + 1
  if i > n then i = 1 end
  return wrk.format("GET", "/checkcode/" .. numbers[i] .. "/" .. code)
end
