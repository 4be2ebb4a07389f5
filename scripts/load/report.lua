-- Shared by hot.lua and rotate.lua: one machine-readable line at the end of a wrk run,
-- so scripts/load.sh never has to parse wrk's unit-suffixed table.
--
--   RESULT requests=N duration_us=N rps=N p50_us=N p90_us=N p99_us=N max_us=N status_errors=N socket_errors=N

local report = {}

function report.done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d status_errors=%d socket_errors=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      e.status, e.connect + e.read + e.write + e.timeout))
end

return report
