-- wrk load for POST /api/v1/redemptions: a unique Idempotency-Key per request, rotating over members,
-- API keys (the throttle is per key: 6000/min by default) and perks.
--
--   .venv/bin/python manage.py redeem_bench_setup          # writes .tally/redeem-bench.txt
--   wrk -t2 -c64 -d30s --latency -s config/bench/redeem.lua http://127.0.0.1:8021
--
-- REDEEM_DELAY_MS=<ms> makes each connection wait about that long before each request: with -c N, about
-- N * 1000 / (ms + latency) requests a second, a steady offered load rather than as fast as the
-- server answers (wrk alone measures saturation, where latency is queueing: connections / rate).
--
-- Run it from the checkout, or set REDEEM_BENCH to the file. The file has one `perk <id>`, `key <api key>`
-- or `member <email>` per line. At the end the script prints how many answers of each status it got:
-- anything but 201 is worth a look.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   perks, keys, members = {}, {}, {}
   local path = os.getenv("REDEEM_BENCH") or ".tally/redeem-bench.txt"
   for line in io.lines(path) do
      local kind, value = line:match("^(%S+)%s+(%S+)")
      if kind == "perk" then table.insert(perks, value)
      elseif kind == "key" then table.insert(keys, value)
      elseif kind == "member" then table.insert(members, value) end
   end
   assert(#perks > 0 and #keys > 0 and #members > 0, "no perk, key or member in " .. path)
   math.randomseed(os.time() * 1000 + id)
   run = string.format("%x%04x", os.time(), math.random(0, 65535))
   statuses = {}
   -- Each thread starts at its own place among the members, so that threads rarely hit one member.
   offset = (id - 1) * math.floor(#members / 16)
end

local pause = tonumber(os.getenv("REDEEM_DELAY_MS") or "")

if pause then
   -- Each pause drawn between 0.75 and 1.25 times REDEEM_DELAY_MS: the connections drift apart, as
   -- independent tills do, instead of all sending in the same instant, every time.
   function delay()
      return math.floor(pause * (0.75 + 0.5 * math.random()))
   end
end

function request()
   counter = counter + 1
   local member = members[((offset + counter * 7) % #members) + 1]
   local perk = perks[(counter % #perks) + 1]
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Api-Key " .. keys[((counter + id) % #keys) + 1],
      ["Idempotency-Key"] = string.format("bench-%s-%d-%d", run, id, counter),
   }
   local body = string.format('{"member": {"email": "%s"}, "perk": %s}', member, perk)
   return wrk.format("POST", "/api/v1/redemptions", headers, body)
end

local shown = 0

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status ~= 201 and shown < 3 then  -- the first few unexpected answers of each thread, to see why
      shown = shown + 1
      io.write(string.format("%d %s\n", status, body))
   end
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      local counts = thread:get("statuses")
      for status, n in pairs(counts) do totals[status] = (totals[status] or 0) + n end
   end
   local parts = {}
   for status, n in pairs(totals) do table.insert(parts, string.format("%s: %d", status, n)) end
   table.sort(parts)
   io.write("statuses  " .. table.concat(parts, ", ") .. "\n")
end
