-- Rotates over many tokens: thread t of T sends tokens t, t+T, t+2T, ... of FILE (one per
-- line), so together the threads cover every token. Requests are built once, in init.
--
--   wrk -t2 -c32 -d10s --latency -s scripts/load/rotate.lua URL -- FILE 2
--   wrk -t2 -c32 -d120s --latency -s scripts/load/rotate.lua URL -- FILE 2 once
--
-- The second argument must equal wrk's -t. With "once", each thread stops after one pass
-- over its share (every token sent once; a few more may be in flight): that fills a cache.

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

local next_id = 1
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end

function init(args)
   local path = assert(args[1], "usage: -- FILE THREADS [once]")
   local threads = assert(tonumber(args[2]), "usage: -- FILE THREADS [once]")
   local once = args[3] == "once"
   requests = {}
   local n = 0
   for token in io.lines(path) do
      if n % threads == id - 1 then
         requests[#requests + 1] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. token })
      end
      n = n + 1
   end
   assert(#requests > 0, "no tokens for thread " .. id .. " in " .. path)
   index = 0
   share = #requests
   if once then
      answered = 0
      response = function()
         answered = answered + 1
         if answered >= share then
            wrk.thread:stop()
         end
      end
   end
end

function request()
   index = index % share + 1
   return requests[index]
end

done = report.done
