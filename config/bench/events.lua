-- POST /api/v1/events: a purchase with a unique order id per request, rotating over the API keys (one
-- per till: the default throttle is per key) and over the members. Filled in by config/bench/load.py.
local keys = {{keys}}
local tag = {{tag}}
local members = {{members}}
local counter = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

request = function()
  counter = counter + 1
  local key = keys[((counter + id) % #keys) + 1]
  local member = (counter * 7919 + id * 104729) % members
  local body = string.format(
    '{"type":"purchase","member":{"email":"m%d@bench.example"},"order_id":"%s-%d-%d","amount":"7.25","currency":"USD"}',
    member, tag, id, counter)
  return wrk.format("POST", "/api/v1/events", {
    ["Authorization"] = "Api-Key " .. key,
    ["Content-Type"] = "application/json",
  }, body)
end
