-- One request, sent over and over: `GET <url>` with `Authorization: Bearer <first token
-- of FILE>`, or with no Authorization at all when no FILE is given.
--
--   wrk -t2 -c32 -d10s --latency -s scripts/load/hot.lua URL -- FILE   # hot token
--   wrk -t2 -c32 -d10s --latency -s scripts/load/hot.lua URL           # no credentials

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

function init(args)
   local path = args[1]
   if path then
      local file = assert(io.open(path, "r"))
      local token = assert(file:read("*l"), "no token in " .. path)
      file:close()
      wrk.headers["Authorization"] = "Bearer " .. token
   end
   -- No request() function: wrk builds the request once, after init.
end

-- PACE_MS=N in the environment: each connection waits N ms before each request, a fixed
-- offered load below what either server can take (32 connections at 1 ms: about 30,000
-- req/s), so that neither server's CPU per request includes a saturated run's extra
-- scheduling (docs/performance.md, "Straight to the check, fewer allocations").
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace and pace > 0 then
   function delay()
      return pace
   end
end

done = report.done
