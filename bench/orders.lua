-- Checkout and pay, one customer per connection (wrk runs one connection per thread here, so a thread's
-- requests and responses are that connection's): POST /api/v1/orders, read the order's id from the answer,
-- POST /api/v1/orders/{id}/pay, start again.
--
--   wrk -t N -c N -d 20s -s bench/orders.lua URL -- TOKENS_FILE BODY_FILE RATE N
--
-- TOKENS_FILE: one bearer token a line, line n for thread n. BODY_FILE: checkout JSON bodies, one a line; each
-- checkout takes one at random (the catalog's products spread over the customers).
-- RATE: orders per second for the whole run (0 = closed loop, each connection as fast as it is answered);
-- with a rate each connection starts its checkouts on its own fixed schedule (RATE / N per second,
-- phases spread), so the schedule and not the latency sets the offered load as long as a checkout and
-- its payment take less than N / RATE seconds.
-- Prints one line: RESULT {json} with the checkout latencies (from sending to the last byte of the answer).

-- bench/clock.lua, found beside this script (wrk loads it by path, so its chunk name is "@<path>").
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local now_ms = require("clock").now_ms

local threads = {}
local counter = 0

function setup(thread)
  thread:set("number", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

-- per thread (= per connection) state
local bodies, pay_body = {}, nil
local interval, connections, next_start = 0, 1, nil
local pending_pay = nil -- order id waiting for its payment
local sent_at, sent_kind = 0, nil
checkout_ms = {}
checkouts, pays, errors, late = 0, 0, 0, 0

function init(args)
  local line_no, token = 0, nil
  for line in io.lines(args[1]) do
    if line_no == number then token = line end
    line_no = line_no + 1
  end
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
  for line in io.lines(args[2]) do
    if line ~= "" then bodies[#bodies + 1] = line end
  end
  math.randomseed(number * 7919 + os.time())
  pay_body = '{"paymentMethod": "sandbox_success"}'
  local rate = tonumber(args[3]) or 0
  connections = tonumber(args[4]) or 1
  if rate > 0 then
    interval = 1000 * connections / rate
  end
end

function delay()
  if pending_pay or interval == 0 then
    return 0
  end
  local t = now_ms()
  if next_start == nil then -- spread the connections' phases over one interval
    next_start = t + interval * number / connections
  end
  local wait = next_start - t
  next_start = next_start + interval
  if wait < 0 then
    late = late + 1
    return 0
  end
  return math.floor(wait)
end

function request()
  sent_at = now_ms()
  if pending_pay then
    sent_kind = "pay"
    return wrk.format("POST", "/api/v1/orders/" .. pending_pay .. "/pay", nil, pay_body)
  end
  sent_kind = "checkout"
  return wrk.format("POST", "/api/v1/orders", nil, bodies[math.random(#bodies)])
end

-- the "id" member of the top-level object (nested objects have ids too)
local function top_level_id(body)
  local depth, i, n = 0, 1, #body
  while i <= n do
    local c = body:sub(i, i)
    if c == "{" or c == "[" then
      depth = depth + 1
    elseif c == "}" or c == "]" then
      depth = depth - 1
    elseif c == '"' then
      local close = body:find('"', i + 1, true)
      if depth == 1 and body:sub(i, close) == '"id"' then
        return body:match('^%s*:%s*"([^"]+)"', close + 1)
      end
      i = close
    end
    i = i + 1
  end
  return nil
end

function response(status, headers, body)
  if sent_kind == "checkout" then
    checkout_ms[#checkout_ms + 1] = now_ms() - sent_at
    if status == 201 then
      checkouts = checkouts + 1
      pending_pay = top_level_id(body)
    else
      errors = errors + 1
    end
  else
    pending_pay = nil
    if status == 202 then
      pays = pays + 1
    else
      errors = errors + 1
    end
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local k = math.max(1, math.min(#sorted, math.floor(p / 100 * (#sorted - 1) + 0.5) + 1))
  return sorted[k]
end

function done(summary, latency, requests)
  local all, totals = {}, { checkouts = 0, pays = 0, errors = 0, late = 0 }
  for _, thread in ipairs(threads) do
    for _, v in ipairs(thread:get("checkout_ms")) do all[#all + 1] = v end
    for k, _ in pairs(totals) do totals[k] = totals[k] + thread:get(k) end
  end
  table.sort(all)
  io.write(string.format(
    'RESULT {"seconds": %.3f, "requests": %d, "socket_errors": %d, "checkouts": %d, "pays": %d, "errors": %d, '
    .. '"late_starts": %d, "p50": %.2f, "p95": %.2f, "p99": %.2f}\n',
    summary.duration / 1e6, summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    totals.checkouts, totals.pays, totals.errors, totals.late,
    percentile(all, 50), percentile(all, 95), percentile(all, 99)))
end
