-- wrk script for benches/load/nodes.sh: presence.lua's requests, its cycle begun at an offset.
--
--   wrk ... -H "Authorization: Basic ..." -s nodes.lua URL -- MODE ASSOCIATES OFFSET
--
-- presence.lua draws its associates from a fixed seed, so two wrk processes running it at once
-- send the same associates in the same order: two nodes would then set the same rows at the
-- same moment and wait on each other's row locks, which help-desk users spread over many
-- associates do not. nodes.sh starts the second node's cycle half-way round (OFFSET 32768 of
-- presence.lua's 65 536 requests), which keeps the two apart. Everything else, the RESULT line
-- included, is presence.lua's.

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "presence.lua")

local presence_init = init

function init(args)
  presence_init(args)
  for _ = 1, tonumber(args[3] or "0") do
    request()
  end
end
