-- bench/wrk.lua, plus what the last successful POST answered: its count of 2xx answers and the newest
-- answer's "id" and "createdAt", printed as a LAST line (what the client was told was committed).
-- Run from the project folder: wrk ... -s bench/wrk_last.lua URL -- PATHS_FILE AUTHORIZATION JSON_BODY_FILE
dofile("bench/wrk.lua")

-- Globals of each thread's Lua state, so done() can read them with thread:get.
local threads = {}
acknowledged, last_id, last_created, first_refusal = 0, "", "", ""

function setup(thread)
  threads[#threads + 1] = thread
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    local created = body:match('"createdAt"%s*:%s*"([^"]+)"')
    if created and created >= last_created then
      last_created = created
      last_id = body:match('"id"%s*:%s*"([^"]+)"') or ""
    end
    acknowledged = acknowledged + 1
  elseif first_refusal == "" then
    first_refusal = status .. " " .. body:sub(1, 300)
  end
end

local report = done
function done(summary, latency, requests)
  report(summary, latency, requests)
  local total, newest, newest_id = 0, "", ""
  for _, thread in ipairs(threads) do
    if thread:get("first_refusal") ~= "" then
      io.write("first refusal: " .. thread:get("first_refusal") .. "\n")
    end
    total = total + thread:get("acknowledged")
    local created = thread:get("last_created")
    if created > newest then
      newest, newest_id = created, thread:get("last_id")
    end
  end
  io.write(string.format('LAST {"acknowledged": %d, "id": "%s", "createdAt": "%s"}\n', total, newest_id, newest))
end
