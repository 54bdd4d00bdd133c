#!/usr/bin/env bash
# Instruction counts of one benchmark server's request path (valgrind callgrind: counts
# instructions, not seconds, so the result does not depend on machine load).
#
#   scripts/profile.sh ours_memory read     # or: count, new; any benchmarks binary
#
# Builds the server in release, runs it under callgrind, warms up with 300 requests,
# zeroes the counters, sends N (default 2000) keep-alive requests and prints the
# user-space instructions per request. The profile is left in $OUT (callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:?server binary, e.g. ours_memory}
SCENARIO=${2:-read}
N=${N:-2000}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build -q --release -p benchmarks --bin "$BIN"
PORT=$PORT valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "${CARGO_TARGET_DIR:-target}/release/$BIN" >"$OUT/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/read" && break; sleep 0.2; done
# `new` sends no cookie, as bench.sh's `new` does. Otherwise every contender gets a
# Cookie header of the same size: parsing it costs actix-http real work, which must not
# be billed to the session layer.
path=/$SCENARIO
cookie=(-H "Cookie: connect.sid=s%3A$(printf 'x%.0s' $(seq 32)).$(printf 'y%.0s' $(seq 43))")
if [ "$SCENARIO" = new ]; then
  path=/count
  cookie=()
else
  set_cookie=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/count" | sed -n 's/^set-cookie: \([^;]*\).*/\1/ip' | head -1)
  [ -n "$set_cookie" ] && cookie=(-H "Cookie: $set_cookie")
fi
curl -s -o /dev/null "${cookie[@]}" "http://127.0.0.1:$PORT$path?[1-300]"
callgrind_control -z "$server" >/dev/null
curl -s -o /dev/null "${cookie[@]}" "http://127.0.0.1:$PORT$path?[1-$N]"
callgrind_control -d "$server" >/dev/null
total=$(callgrind_annotate "$OUT"/callgrind.out.* 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
echo "$BIN $SCENARIO: $((total / N)) instructions per request (profile: $OUT)"
