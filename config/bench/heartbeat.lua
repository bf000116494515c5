-- wrk load for POST /api/v1/live/<channel>/heartbeat, by viewers seeded with config/bench/heartbeat_seed.py.
--
-- Saturation (each connection sends its next heartbeat as soon as the answer came):
--   wrk -t2 -c64 -d30s --latency -s config/bench/heartbeat.lua http://127.0.0.1:8031 -- /tmp/heartbeat-viewers.txt 0 2
-- Paced: 100 connections, each pausing about 100 ms before each heartbeat (at most 1,000 heartbeats/s offered):
--   wrk -t2 -c100 -d30s --latency -s config/bench/heartbeat.lua http://127.0.0.1:8031 -- /tmp/heartbeat-viewers.txt 100 2
--
-- Arguments after `--`: the viewers file; the mean pause in ms before each request of a connection (0: none);
-- the number of threads given to -t (wrk does not tell the script). Viewer i belongs to thread
-- i % threads, and each thread cycles through its viewers, so with V viewers and R heartbeats/s every
-- viewer beats every V/R s. Every heartbeat is a good one: playing, visible, the scheduled video at the
-- scheduled position (from os.time(): within a second of the schedule, well inside the tolerance).
--
-- Warm up before measuring (e.g. a 10 s run first): the first heartbeat of each freshly seeded lease
-- checks the member in PostgreSQL, which a steady state does only every 45 s per viewer (and before each
-- minute recorded). Compare with `wrk ... /api/v1/time` on the same server in the same run.

local index = 0

function setup(thread)
  thread:set("index", index)
  index = index + 1
end

local viewers = {}
local video_id, starts_at, duration, path
local pause = 0
local cursor = 1

function init(args)
  local file = assert(io.open(args[1] or "/tmp/heartbeat-viewers.txt", "r"), "cannot open the viewers file")
  pause = tonumber(args[2] or "0") or 0
  local threads = tonumber(args[3] or "1") or 1
  local me = wrk.thread:get("index")
  local channel
  channel, video_id, starts_at, duration = file:read("*l"):match("^(%S+) (%S+) (%d+) (%d+)$")
  starts_at, duration = tonumber(starts_at), tonumber(duration)
  path = "/api/v1/live/" .. channel .. "/heartbeat"
  local line_number = 0
  for line in file:lines() do
    local session, csrf, lease = line:match("^(%S+) (%S+) (%S+)$")
    if session and line_number % threads == me then
      viewers[#viewers + 1] = {
        headers = {
          ["Content-Type"] = "application/json",
          ["Cookie"] = "sessionid=" .. session .. "; csrftoken=" .. csrf,
          ["X-CSRFToken"] = csrf,
        },
        body = '{"lease":"' .. lease .. '","state":"playing","video_id":"' .. video_id .. '","position":',
      }
    end
    line_number = line_number + 1
  end
  file:close()
  assert(#viewers > 0, "this thread got no viewers: seed at least as many viewers as threads")
  math.randomseed(os.time() + me)
  cursor = math.random(#viewers)
end

function request()
  local viewer = viewers[cursor]
  cursor = cursor % #viewers + 1
  local position = (os.time() - starts_at) % duration
  return wrk.format("POST", path, viewer.headers, viewer.body .. position .. ',"visible":true}')
end

-- Each pause is drawn between 0.75 and 1.25 times the mean: the connections drift apart, as independent
-- viewers do, instead of all sending in the same instant, every time (which would measure a burst of
-- `connections` requests at once, not the steady rate). Below 2 s: gunicorn closes a keep-alive
-- connection idle that long.
function delay()
  if pause == 0 then
    return 0
  end
  return math.floor(pause * (0.75 + 0.5 * math.random()))
end
