#!/usr/bin/env bash
# CPU time per request, by process: one benchmark server (user and system time), and
# the PostgreSQL and Redis processes behind it, read from /proc over one wrk run laid
# out as bench.sh lays it out (the server on CPU 0; wrk, Redis and PostgreSQL on CPU 1).
# It tells which side bounds a contender's throughput, which req/s alone does not.
#
#   scripts/cpu.sh ours_postgres read      # any benchmarks binary; read, count or new
#
# Starts its own Redis and PostgreSQL (as bench.sh does) and stops them at the end.
# Environment: DURATION [5] seconds measured, after 2 s of warm-up. For Redis it also
# prints the commands per request (INFO commandstats over the measured run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${1:?server binary, e.g. ours_postgres}
SCENARIO=${2:-read}
DURATION=${DURATION:-5}
PORT=$((20000 + RANDOM % 20000))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

WORK=$(mktemp -d)
STOP_HOOKS=()
SERVER_PID=""
cleanup() {
  set +e
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  for f in "${STOP_HOOKS[@]:-}"; do [ -n "$f" ] && "$f"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
source scripts/redis.sh
source scripts/postgres.sh

cargo build -q --release -p benchmarks --bin "$BIN"
start_redis >/dev/null
start_postgres >/dev/null
taskset -a -p -c 1 "$(cat "$REDIS_DIR/standalone/redis.pid")" >/dev/null
taskset -a -p -c 1 "$(head -1 "$PG_DATA_DIR/postmaster.pid")" >/dev/null

env PORT="$PORT" taskset -c 0 "$CARGO_TARGET_DIR/release/$BIN" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$PORT/read" && break; sleep 0.1; done
path=/$SCENARIO
header=()
if [ "$SCENARIO" = new ]; then
  path=/count
else
  cookie=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/count" | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1)
  [ -n "$cookie" ] && header=(-H "Cookie: $cookie")
fi

# ticks PID...: "user system" clock ticks of every thread of those processes.
ticks() {
  local user=0 system=0 u s
  for pid in "$@"; do
    for stat in /proc/"$pid"/task/*/stat; do
      read -r u s < <(awk '{print $14, $15}' "$stat" 2>/dev/null || echo "0 0")
      user=$((user + u)) system=$((system + s))
    done
  done
  echo "$user $system"
}
wrk=(taskset -c 1 wrk -t 1 -c 32 "${header[@]}" "http://127.0.0.1:$PORT$path")
"${wrk[@]}" -d 2s >/dev/null
# After the warm-up, so that the server's PostgreSQL backends exist.
redis_pids=$(cat "$REDIS_DIR/standalone/redis.pid")
postmaster=$(head -1 "$PG_DATA_DIR/postmaster.pid")
pg_pids="$postmaster $(pgrep -d ' ' -P "$postmaster" || true)"
redis-cli -u "$REDIS_URL" CONFIG RESETSTAT >/dev/null
read -r su0 ss0 < <(ticks "$SERVER_PID")
read -r pu0 ps0 < <(ticks $pg_pids)
read -r ru0 rs0 < <(ticks $redis_pids)
out=$("${wrk[@]}" -d "${DURATION}s")
read -r su1 ss1 < <(ticks "$SERVER_PID")
read -r pu1 ps1 < <(ticks $pg_pids)
read -r ru1 rs1 < <(ticks $redis_pids)

requests=$(echo "$out" | awk '/requests in/ {print $1}')
per() { awk -v d=$(($2 - $1)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.2f", d * 1e6 / hz / n}'; }
echo "$BIN $SCENARIO: $(echo "$out" | awk '/Requests\/sec/ {print $2}') req/s; CPU µs per request:" \
  "server $(per "$su0" "$su1") user + $(per "$ss0" "$ss1") system," \
  "postgres $(per "$pu0" "$pu1") + $(per "$ps0" "$ps1")," \
  "redis $(per "$ru0" "$ru1") + $(per "$rs0" "$rs1")"
# Redis commands per request, by command (none for the other stores).
redis-cli -u "$REDIS_URL" INFO commandstats | tr -d '\r' |
  awk -F'[_:=,]' -v n="$requests" '/^cmdstat_/ && $4 / n >= 0.01 {
    printf "  redis %s: %.2f calls, %.2f µs each\n", $2, $4 / n, $10 }'
