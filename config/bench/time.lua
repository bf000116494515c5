-- wrk for GET /api/v1/time, the baseline to compare heartbeats with (same server, same run):
--   wrk -t2 -c32 -d30s --latency http://127.0.0.1:8031/api/v1/time                                  (saturation)
--   wrk -t2 -c100 -d30s --latency -s config/bench/time.lua http://127.0.0.1:8031/api/v1/time -- 100  (paced)
-- The argument is the mean pause in ms before each request of a connection, drawn as in heartbeat.lua.

local pause = 0
local index = 0

function setup(thread)
  thread:set("index", index)
  index = index + 1
end

function init(args)
  pause = tonumber(args[1] or "0") or 0
  math.randomseed(os.time() + wrk.thread:get("index"))
end

-- Drawn as heartbeat.lua's delay() draws it (see there why).
function delay()
  if pause == 0 then
    return 0
  end
  return math.floor(pause * (0.75 + 0.5 * math.random()))
end
