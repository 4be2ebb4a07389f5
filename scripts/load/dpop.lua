-- DPoP requests, each proof sent once: FILE holds a DPoP-bound token on its first line and
-- unique proofs after it (examples/tokens --dpop-out). Thread t of T sends `Authorization:
-- DPoP <token>` with proofs t, t+T, t+2T, ... (DPoP header), so together the threads send
-- every proof at most once. Requests are built once, in init.
--
--   wrk -t2 -c32 -d2s --latency -s scripts/load/dpop.lua URL -- FILE 2
--
-- The second argument must equal wrk's -t. tollgate refuses a proof it has seen (a replay),
-- so a proof is never sent twice: when a thread has sent all its proofs it stops, and the
-- few requests its connections still ask for go to /healthz instead (counted as overrun).
-- Such a run is exhausted: its rate is not valid (the thread idled), and the DPOP line says
-- so. wrk's status_errors counts every answer >= 400 (a refused proof is a 401 or a 503).
--
--   DPOP proofs=N sent=N overrun=N exhausted=0|1

package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local report = require("report")

local threads = {}
local next_id = 1
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   threads[#threads + 1] = thread
end

function init(args)
   local path = assert(args[1], "usage: -- FILE THREADS")
   local count = assert(tonumber(args[2]), "usage: -- FILE THREADS")
   local lines = io.lines(path)
   local token = assert(lines(), "no token in " .. path)
   requests = {}
   local n = 0
   for proof in lines do
      if n % count == id - 1 then
         requests[#requests + 1] = wrk.format(nil, nil, { ["Authorization"] = "DPoP " .. token, ["DPoP"] = proof })
      end
      n = n + 1
   end
   assert(#requests > 0, "no proofs for thread " .. id .. " in " .. path)
   share = #requests
   index = 0
   overrun = 0
   guard = wrk.format("GET", "/healthz")
end

function request()
   if index < share then
      index = index + 1
      return requests[index]
   end
   -- Out of proofs: never resend one. Stop this thread; until the loop ends, ask for
   -- something that is not a check.
   overrun = overrun + 1
   if overrun == 1 then
      wrk.thread:stop()
   end
   return guard
end

function done(summary, latency, requests)
   report.done(summary, latency, requests)
   local proofs, sent, over, exhausted = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      proofs = proofs + thread:get("share")
      sent = sent + thread:get("index")
      over = over + thread:get("overrun")
      if thread:get("index") >= thread:get("share") then
         exhausted = 1
      end
   end
   io.write(string.format("DPOP proofs=%d sent=%d overrun=%d exhausted=%d\n", proofs, sent, over, exhausted))
end
