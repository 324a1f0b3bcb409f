-- The spec's mixed load at a fixed offered rate; per-class latency and status counts written to a file.
-- LOAD_OUT=OUT_FILE wrk -t T -c C -d Ds -s bench/load.lua URL -- DATA_FILE SCHEDULE mix|bare FIRSTS C
-- SCHEDULE is "seconds:rate,seconds:rate,...": offered req/s over all C connections, phase after phase.
--
-- DATA_FILE lines: "R <path>" a catalog read, "T <bearer token>" a customer, "B <checkout JSON body>".
-- Each connection waits about C * 1000 / rate ms (uniform 0.5x..1.5x) after an answer before its next
-- request, so C connections offer `rate` requests per second while answers come faster than that.
-- Requests per 100: 65 guest reads, 25 signed-in reads (a fifth of them the customer's own orders, class
-- "orders"; the rest class "customer"),
-- 5 order creations and 5 payments (each created order is paid by the next request its wrk thread sends).
-- wrk opens every connection at the start and would let it idle until its first request; gunicorn's
-- gthread hands a new connection straight to a thread, which waits up to 5 s for its request (a sync
-- worker waits longer), so each connection's first request (the first FIRSTS of a thread) goes out at
-- once and is counted apart, as class "first": a burst of C requests at the start, which the first phase
-- (a warm-up) absorbs; the connections then stay open (keep-alive) through every later phase.
-- With "bare" every request is GET / (bench/bare.py behind bench.load:bare, which echoes X-Request-ID).
-- Latency is from handing the request to wrk to its answer, matched by the X-Request-ID the app echoes.
-- bench/clock.lua, found beside this script (wrk loads it by path, so its chunk name is "@<path>").
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local now_us = require("clock").now_us

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  threads[#threads + 1] = thread
end

-- Each thread writes "Q class milliseconds" per request and "A class status microseconds" per answer to OUT.<thread>
-- (wrk's thread:get cannot copy tables out of a thread); done() writes wrk's own summary to OUT.
local reads, tokens, checkout, bare, phases, started = {}, {}, nil, false, {}, 0
local pending, payq, out, counter, firsts, first_delays, second_delays = {}, {}, nil, 0, 0, 0, 0

function init(args)
  for line in io.lines(args[1]) do
    local kind, value = line:sub(1, 1), line:sub(3)
    if kind == "R" then reads[#reads + 1] = value
    elseif kind == "T" then tokens[#tokens + 1] = value
    elseif kind == "B" then checkout = value end
  end
  local ends = 0
  for seconds, rate in args[2]:gmatch("(%d+):(%d+)") do
    ends = ends + tonumber(seconds) * 1000
    phases[#phases + 1] = { ends, tonumber(rate) }
  end
  started = now_us() / 1000
  bare = args[3] == "bare"
  firsts, first_delays, second_delays = tonumber(args[4]), tonumber(args[4]), tonumber(args[4])
  connections = tonumber(args[5])
  out = io.open(os.getenv("LOAD_OUT") .. "." .. tid, "w")
  out:setvbuf("full", 65536)
  math.randomseed(os.time() * 1000 + tid)
end

local function interval()
  local elapsed = now_us() / 1000 - started
  for _, phase in ipairs(phases) do
    if elapsed < phase[1] then return connections * 1000 / phase[2] end
  end
  return connections * 1000 / phases[#phases][2]
end

function delay()
  if first_delays > 0 then -- a connection's first request goes out at once (see below)
    first_delays = first_delays - 1
    return 0
  end
  if second_delays > 0 then -- then spread evenly over one interval, so the offered rate is steady at once
    second_delays = second_delays - 1
    return math.floor(interval() * math.random())
  end
  return math.floor(interval() * (0.5 + math.random()))
end

function request()
  counter = counter + 1
  local rid = "load-" .. tid .. "-" .. counter
  local cls, method, path, body, token = nil, "GET", nil, nil, nil
  local headers = { ["X-Request-ID"] = rid }
  if bare then
    cls, path = "bare", "/"
  elseif #payq > 0 then
    local order = table.remove(payq, 1)
    cls, method, path, token = "pay", "POST", "/api/v1/orders/" .. order[1] .. "/pay", order[2]
    body = '{"paymentMethod": "sandbox_success"}'
  else
    local r = math.random(95)
    if r <= 65 then
      cls, path = "guest", reads[math.random(#reads)]
    elseif r <= 90 then
      cls, token = "customer", tokens[math.random(#tokens)]
      if math.random(5) == 1 then cls, path = "orders", "/api/v1/orders?limit=10" else path = reads[math.random(#reads)] end
    else
      cls, method, path, token, body = "order", "POST", "/api/v1/orders", tokens[math.random(#tokens)], checkout
    end
  end
  if token then headers["Authorization"] = "Bearer " .. token end
  if body then headers["Content-Type"] = "application/json" end
  local recorded = cls
  if firsts > 0 then recorded, firsts = "first", firsts - 1 end
  pending[rid] = { recorded, now_us(), token, cls }
  out:write("Q ", recorded, " ", math.floor(pending[rid][2] / 1000), "\n")
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  local rid = headers["X-Request-ID"] or headers["x-request-id"]
  local p = rid and pending[rid]
  if not p then return end
  pending[rid] = nil
  local cls = p[1]
  out:write("A ", cls, " ", status, " ", math.floor(now_us() - p[2]), " ", math.floor(p[2] / 1000), "\n")
  if p[4] == "order" and status == 201 then
    local id = body:match('"id": *"([0-9a-f-]+)", *"items"')
    if id then payq[#payq + 1] = { id, p[3] } end
  end
end

function done(summary, latency, requests)
  local file = io.open(os.getenv("LOAD_OUT"), "w")
  local e = summary.errors
  file:write(string.format("S %d %d %d %d %d %d %d\n", summary.requests, summary.duration, e.connect, e.read,
    e.write, e.status, e.timeout))
  file:close()
end
