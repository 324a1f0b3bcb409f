-- The monotonic clock of the wrk scripts (bench/load.lua, bench/orders.lua), through LuaJIT's ffi: wrk's own
-- clock is not exposed to scripts and os.clock() is CPU time. Loaded with require("clock"): each script puts
-- its own folder on package.path first, so wrk finds this file whatever the working directory.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local clock = {}

function clock.now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

function clock.now_ms()
  return clock.now_us() / 1000
end

return clock
