-- wrk script for benches/load/presence_api.sh: batch reads of the presence API over keep-alive
-- connections.
--
--   wrk ... -H "Authorization: Basic ..." -s presence_api.lua URL -- batch ASSOCIATES SIZE
--
-- Each request is GET /presence/v1/users?ids=... with SIZE distinct associate ids drawn at
-- random from 1..ASSOCIATES. The requests are formatted once, in init, and replayed in a
-- cycle; the seed is fixed, so every server gets the same requests in the same order.

local COUNT = 256

local requests = {}
local next_request = 0

function init(args)
  local mode = args[1] or "batch"
  local associates = tonumber(args[2] or "10000")
  local size = tonumber(args[3] or "1000")
  if mode ~= "batch" then
    error("mode must be batch, not " .. mode)
  end
  math.randomseed(20261203)
  for i = 1, COUNT do
    local ids, seen = {}, {}
    while #ids < size do
      local id = math.random(1, associates)
      if not seen[id] then
        seen[id] = true
        ids[#ids + 1] = tostring(id)
      end
    end
    requests[i] = wrk.format("GET", "/presence/v1/users?ids=" .. table.concat(ids, ","))
  end
end

function request()
  next_request = next_request % COUNT + 1
  return requests[next_request]
end
