-- wrk script for benches/load/run.sh: POSTs the presence operations over keep-alive
-- connections.
--
--   wrk ... -H "Authorization: Basic ..." -s presence.lua URL -- MODE ASSOCIATES
--
-- MODE is get (GetUserPresenceStatus for random associate ids), set (SetUserPresenceStatus
-- for random ids, alternating StatusNotAvailable with a message and StatusNormal without), or
-- mix (95 % get, 5 % set, drawn at random). Ids are drawn from 1..ASSOCIATES.
--
-- The requests are formatted once, in init, and replayed in a cycle: formatting one per
-- request in Lua would make wrk, not the server, the bottleneck. The seed is fixed, so the
-- floor and the server get the same requests in the same order.

local GET = "/api/v1/Agents/User/GetUserPresenceStatus"
local SET = "/api/v1/Agents/User/SetUserPresenceStatus"
-- Distinct requests per thread; a power of two above the 10 000 associates of the default run.
local COUNT = 65536

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"

local requests = {}
local next_request = 0

local function get(id)
  return wrk.format("POST", GET, nil, string.format('{"AssociateId":%d}', id))
end

local function set(id, away)
  local presence
  if away then
    presence = '{"Status":"StatusNotAvailable","Message":"Back at 14:00"}'
  else
    presence = '{"Status":"StatusNormal","Message":null}'
  end
  return wrk.format(
    "POST", SET, nil,
    string.format('{"AssociateId":%d,"UserPresenceStatus":%s}', id, presence)
  )
end

function init(args)
  local mode = args[1] or "get"
  local associates = tonumber(args[2] or "10000")
  if mode ~= "get" and mode ~= "set" and mode ~= "mix" then
    error("mode must be get, set or mix, not " .. mode)
  end
  math.randomseed(20240601)
  local sets = 0
  for i = 1, COUNT do
    local id = math.random(1, associates)
    local is_set = mode == "set" or (mode == "mix" and math.random() < 0.05)
    if is_set then
      sets = sets + 1
      requests[i] = set(id, sets % 2 == 1)
    else
      requests[i] = get(id)
    end
  end
end

function request()
  next_request = next_request % COUNT + 1
  return requests[next_request]
end

-- One line for run.sh to read; latencies in microseconds.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f socket_errors=%d non2xx=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect + e.read + e.write + e.timeout, e.status
  ))
end
