-- Loaded by scripts/bench.sh for every wrk run. Without a Cookie header (scenario `new`)
-- every request starts a new session; with one (`read`, `count`) all requests share it.
-- At the end prints one machine-readable line:
--   RESULT <requests/s> <p99 latency µs> <socket errors> <non-2xx responses>
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d\n", summary.requests / secs,
    latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))
end
