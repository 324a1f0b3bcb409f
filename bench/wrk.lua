-- Spread requests over the paths in a file (one per line); print throughput and percentiles as JSON.
-- wrk ... -s bench/wrk.lua URL -- PATHS_FILE [AUTHORIZATION] [JSON_BODY_FILE]
-- With a body file, every request is a POST of that JSON body (a checkout, say).
local paths = {}
local body = nil

function init(args)
  for line in io.lines(args[1]) do
    paths[#paths + 1] = line
  end
  if args[2] and args[2] ~= "" then
    wrk.headers["Authorization"] = args[2]
  end
  if args[3] and args[3] ~= "" then
    body = io.open(args[3]):read("*a")
    wrk.headers["Content-Type"] = "application/json"
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  if body then
    return wrk.format("POST", paths[math.random(#paths)], nil, body)
  end
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "errors": %d, "p50": %.3f, "p95": %.3f, "p99": %.3f}\n',
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
