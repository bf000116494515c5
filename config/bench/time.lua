-- wrk for GET /api/v1/time, the baseline to compare heartbeats with (same server, same run):
--   wrk -t2 -c32 -d30s --latency http://127.0.0.1:8031/api/v1/time                                  (saturation)
--   wrk -t2 -c100 -d30s --latency -s config/bench/time.lua http://127.0.0.1:8031/api/v1/time -- 100  (paced)
-- The argument is the pause in ms before each request of a connection, as in heartbeat.lua.

local pause = 0

function init(args)
  pause = tonumber(args[1] or "0") or 0
end

function delay()
  return pause
end
