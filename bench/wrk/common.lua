-- Shared by every scenario (load.sh puts it first): numbers each thread, so a
-- scenario can split its data between threads, and prints one RESULT line that
-- load.sh reads. Scenario arguments come after wrk's `--`: the thread count
-- first, then the scenario's own.
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end

-- This thread's share of a file's lines (every threads-th line from tid on).
function my_lines(path, threads)
  local mine, n, k = {}, 0, 0
  for line in io.lines(path) do
    if k % threads == tid then
      n = n + 1
      mine[n] = line
    end
    k = k + 1
  end
  return mine, n
end

function api_headers(key)
  return {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
end
