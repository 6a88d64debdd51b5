-- bench/pace.lua - a fixed request rate for wrk, which has no rate option
-- (wrk2's -R). Usage: wrk -t1 -c32 -s bench/pace.lua URL -- RATE THREADS
-- Each wrk thread sends its share (RATE/THREADS per second) on a fixed
-- schedule shared by its connections: a connection whose response came
-- back waits for the next free slot (delay(), whole milliseconds in wrk, so
-- the schedule, not the rounding, sets the rate). A backlog older than
-- 100 ms is forgotten rather than sent as a burst, so when the server
-- cannot keep up the achieved rate is lower than RATE: check wrk's count.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = nil
local next_at = nil

function init(args)
  local rate = tonumber(args[1]) or 20000
  local threads = tonumber(args[2]) or 1
  interval = 1000 * threads / rate
end

function delay()
  local t = now_ms()
  if next_at == nil or next_at < t - 100 then
    next_at = t
  end
  next_at = next_at + interval
  local d = next_at - t
  if d < 0 then
    return 0
  end
  return d
end
