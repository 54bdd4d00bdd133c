#!/usr/bin/env bash
# The load benchmark (issue 7): every contender in benchmarks/ serves GET /count and
# GET /read; wrk drives each one with the server pinned to CPU 0 and wrk (plus Redis and
# PostgreSQL) pinned to CPU 1. Contenders run in interleaved rounds (A B C A B C ...) and
# every ratio is taken within one round, so a noisy neighbour hits both sides alike.
#
# Scenarios: new   = GET /count without a cookie (every request creates and saves a session)
#            read  = GET /read with one existing session's cookie (unmodified)
#            count = GET /count with one existing session's cookie (modified every time)
#
# Environment (defaults in brackets):
#   DURATION [10]   seconds measured per run      WARMUP [3]  seconds of warm-up per run
#   ROUNDS [3]      interleaved rounds            CONNECTIONS [32]  wrk connections
#   CONTENDERS      space-separated subset of the names below [all]
#   SCENARIOS       [new read count]
#   SCALING [1]     0 skips the memory-store scaling runs
#   PREFILLS        [1000 100000 1000000]         PAYLOADS [100 10000 100000] (bytes)
#   OUT             results directory [target/bench/<timestamp>]
#   BENCH_PORT      [18080]
#   REDIS_SERVER    [redis] the Redis contenders' server: redis (Debian's Redis 7.0) or
#                   valkey (Valkey 8.1, built by scripts/valkey.sh: it has SET ... IFEQ)
# A smoke run: DURATION=2 WARMUP=1 ROUNDS=1 scripts/bench.sh   (about five minutes)
#
# Writes $OUT/raw.tsv, $OUT/scaling.tsv and $OUT/report.md (also printed), and stops
# everything it started.
#
# Quiet or busy: before every run the script measures, for one second, how much CPU the
# machine spends while none of its servers is under load (other builds, tests, editors).
# The report gives the worst of those readings and the ceiling's spread across rounds,
# and calls the run QUIET only when the first stays under QUIET_CPU percent [5] and the
# second under QUIET_SPREAD [1.10]. Only quiet runs go into BENCHMARKS.md: a busy
# machine squeezes every ratio toward 1.
#
# Neither reading sees a virtual machine's host taking the CPUs away for seconds at a
# time, which hits one contender's run and not the next. So the script times a fixed
# loop on each CPU (the best of three, so that a blip of a few milliseconds does not
# count): five times at the start, whose median is that CPU's reference, and before and
# after every run. A run around which either CPU's loop took more than HOST_LIMIT [1.15]
# times its reference is measured again, up to HOST_RETRIES [2] more times, each after a
# pause of HOST_PAUSE [20] seconds, and the last measurement counts. raw.tsv keeps the
# times and the tries. The whole run is BUSY when a run is still slowed after its last
# try, or when, at the end, a counted run's loop took more than HOST_LIMIT times the
# median over all counted runs (a host slow at the start makes the reference lenient).
# (On a quiet host the loop stays within about 1.1 of its median; slowed runs read 1.2
# to 1.4.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
SCENARIOS=${SCENARIOS:-new read count}
SCALING=${SCALING:-1}
PREFILLS=${PREFILLS:-1000 100000 1000000}
PAYLOADS=${PAYLOADS:-100 10000 100000}
BENCH_PORT=${BENCH_PORT:-18080}
OUT=${OUT:-$CARGO_TARGET_DIR/bench/$(date +%Y%m%d-%H%M%S)}
QUIET_CPU=${QUIET_CPU:-5}
QUIET_SPREAD=${QUIET_SPREAD:-1.10}
HOST_LIMIT=${HOST_LIMIT:-1.15}
HOST_RETRIES=${HOST_RETRIES:-2}
HOST_PAUSE=${HOST_PAUSE:-20}
SERVER_CPU=0
LOAD_CPU=1

# name | store | our counterpart | command (run from the repo root)
BIN=$CARGO_TARGET_DIR/release
ALL_CONTENDERS=(
  "ceiling|memory|ours-memory|$BIN/ceiling"
  "ours-memory|memory||$BIN/ours_memory"
  "tower-memory|memory|ours-memory|$BIN/tower_memory"
  "actix-cookie|cookie|ours-memory|$BIN/actix_session_cookie"
  "express-memory|memory|ours-memory|env STORE=memory node benchmarks/node/server.js"
  "ours-redis|redis||$BIN/ours_redis"
  "ours-redis-cache|redis|ours-redis|env CLIENT_CACHE=10000 $BIN/ours_redis"
  "ours-redis-lww|redis|ours-redis|env WRITE_POLICY=last-writer-wins $BIN/ours_redis"
  "actix-redis|redis|ours-redis|$BIN/actix_session_redis"
  "tower-redis|redis|ours-redis|$BIN/tower_redis"
  "express-redis|redis|ours-redis|env STORE=redis node benchmarks/node/server.js"
  "ours-postgres|postgres||$BIN/ours_postgres"
  "tower-postgres|postgres|ours-postgres|$BIN/tower_postgres"
  "express-postgres|postgres|ours-postgres|env STORE=postgres node benchmarks/node/server.js"
)

WORK=$(mktemp -d)
STOP_HOOKS=()
SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() {
  set +e
  stop_server
  for f in "${STOP_HOOKS[@]:-}"; do [ -n "$f" ] && "$f"; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

source scripts/redis.sh
source scripts/postgres.sh

if [ "$(nproc)" -lt 2 ]; then
  echo "bench.sh needs two CPUs (one for the server, one for wrk)" >&2
  exit 1
fi

echo "== building the benchmark servers (release)"
cargo build -p benchmarks --release
if [ ! -d benchmarks/node/node_modules ] || [ benchmarks/node/package-lock.json -nt benchmarks/node/node_modules ]; then
  echo "== npm ci (benchmarks/node)"
  (cd benchmarks/node && npm ci --no-audit --no-fund --loglevel=error)
fi
command -v node >/dev/null || { echo "node is needed for the express contenders" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "== installing wrk (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

if [ "${REDIS_SERVER:-redis}" = valkey ]; then
  source scripts/valkey.sh
  valkey_ensure_built
  REDIS_SERVER_BIN=$VALKEY_SERVER_BIN
fi
start_redis
start_postgres
# The databases share the load generator's CPU, so the server's CPU is its own.
taskset -a -p -c "$LOAD_CPU" "$(cat "$REDIS_DIR/standalone/redis.pid")" >/dev/null
taskset -a -p -c "$LOAD_CPU" "$(head -1 "$PG_DATA_DIR/postmaster.pid")" >/dev/null
PSQL=("$PG_BIN_DIR/psql" -q -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d sessions)

mkdir -p "$OUT"
RAW=$OUT/raw.tsv
SCALE=$OUT/scaling.tsv
printf 'round\tscenario\tcontender\trps\tp99_us\terrors\tnon2xx\tbusy_pct\tprobe_server_us\tprobe_load_us\ttries\n' >"$RAW"
printf 'round\tscenario\tconfig\trps\tp99_us\terrors\tnon2xx\tbusy_pct\tprobe_server_us\tprobe_load_us\ttries\n' >"$SCALE"

# probe CPU: the microseconds a fixed loop takes on CPU (the host's speed there now),
# the best of three.
probe() {
  local t0 t1 best=0 try
  for try in 1 2 3; do
    t0=$(date +%s%N)
    taskset -c "$1" awk 'BEGIN { for (i = 0; i < 2000000; i++) s += i }'
    t1=$(date +%s%N)
    t1=$(((t1 - t0) / 1000))
    [ "$try" = 1 ] || [ "$t1" -lt "$best" ] && best=$t1
  done
  echo "$best"
}

# probes: "server load", the slower of each CPU's probe before the run ($1, $2) and now.
probes() {
  local s l
  s=$(probe "$SERVER_CPU") l=$(probe "$LOAD_CPU")
  echo "$((s > $1 ? s : $1)) $((l > $2 ? l : $2))"
}

# reference CPU: the median of five probes, the host's usual speed on CPU.
reference() {
  local n
  for n in 1 2 3 4 5; do probe "$1"; done | sort -n | sed -n 3p
}

# slowed "server load": whether either probe exceeds HOST_LIMIT times its reference.
slowed() {
  awk -v s="${1% *}" -v l="${1#* }" -v rs="$REF_SERVER" -v rl="$REF_LOAD" -v k="$HOST_LIMIT" \
    'BEGIN {exit !(s > k * rs || l > k * rl)}'
}

# busy_pct: the share of all CPUs, in percent, that something was using during one
# second while no benchmark server ran (the idle databases included, which use ~0),
# after a second for the previous run's teardown to settle.
busy_pct() {
  local a b
  sleep 1 # let the previous server's exit and the store reset settle first
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ");
    busy = y[1] - x[1]; idle = y[2] - x[2];
    printf "%.1f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0}'
}

# Every run starts from empty stores, so no run inherits another's sessions.
reset_store() {
  case $1 in
    redis) redis-cli -u "$REDIS_URL" flushall >/dev/null ;;
    postgres) "${PSQL[@]}" -c 'DROP SCHEMA IF EXISTS tower_sessions CASCADE; DROP TABLE IF EXISTS session' 2>/dev/null ;;
  esac
}

# start_server COMMAND [VAR=value...]: starts it on CPU 0 and waits until it answers.
start_server() {
  local cmd=$1
  shift
  # shellcheck disable=SC2086 # the command is a word list on purpose
  env PORT="$BENCH_PORT" "$@" taskset -c "$SERVER_CPU" $cmd >>"$OUT/servers.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do
    curl -s -o /dev/null "http://127.0.0.1:$BENCH_PORT/read" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "server '$cmd' exited; see $OUT/servers.log" >&2; return 1; }
    sleep 0.1
  done
  echo "server '$cmd' did not answer within 120 s" >&2
  return 1
}

# session_cookie: the name=value pair a first GET /count sets (empty for the ceiling).
session_cookie() {
  curl -s -D - -o /dev/null "http://127.0.0.1:$BENCH_PORT/count" |
    tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\).*/\1/p' | head -1
}

# drive SCENARIO COOKIE: warm-up, then the measured run; prints "rps p99_us errors non2xx".
drive() {
  local scenario=$1 cookie=$2 path=/count
  local args=(-t 1 -c "$CONNECTIONS" --latency -s benchmarks/wrk/report.lua)
  [ "$scenario" = read ] && path=/read
  [ "$scenario" != new ] && [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
  taskset -c "$LOAD_CPU" wrk "${args[@]}" -d "${WARMUP}s" "http://127.0.0.1:$BENCH_PORT$path" >/dev/null
  taskset -c "$LOAD_CPU" wrk "${args[@]}" -d "${DURATION}s" "http://127.0.0.1:$BENCH_PORT$path" |
    sed -n 's/^RESULT //p'
}

# one_run SCENARIO COMMAND STORE [VAR=value...]: sets RESULT to "rps p99_us errors non2xx"
# ("0 0 0 0" when the server failed). Runs in this shell so that the exit trap knows
# the server's pid.
one_run() {
  local scenario=$1 cmd=$2 store=$3 cookie=""
  shift 3
  RESULT="0 0 0 0"
  reset_store "$store"
  BUSY=$(busy_pct)
  PROBES=$(probes 0 0)
  start_server "$cmd" "$@" || { stop_server; return 0; }
  if [ "$scenario" != new ]; then
    cookie=$(session_cookie)
    if [ -z "$cookie" ] && [ "$cmd" != "$BIN/ceiling" ]; then
      echo "no session cookie from '$cmd'" >&2
      stop_server
      return 0
    fi
  fi
  local out
  out=$(drive "$scenario" "$cookie")
  [ -n "$out" ] && RESULT=$out
  stop_server
  # shellcheck disable=SC2086 # two numbers
  PROBES=$(probes $PROBES)
}

# measured_run ARGS...: one_run, again while the host was slowed around it (at most
# HOST_RETRIES more times, each after HOST_PAUSE seconds for the host to settle); TRIES
# says how many runs it took.
measured_run() {
  TRIES=1
  one_run "$@"
  while slowed "$PROBES" && [ "$TRIES" -le "$HOST_RETRIES" ]; do
    TRIES=$((TRIES + 1))
    sleep "$HOST_PAUSE"
    one_run "$@"
  done
}

selected() {
  [ -z "${CONTENDERS:-}" ] && return 0
  [[ " $CONTENDERS " == *" $1 "* ]]
}

REF_SERVER=$(reference "$SERVER_CPU") REF_LOAD=$(reference "$LOAD_CPU")
echo "== host reference: a fixed loop takes $REF_SERVER us on CPU $SERVER_CPU, $REF_LOAD us on CPU $LOAD_CPU"
echo "== $ROUNDS round(s) x {$SCENARIOS}, ${WARMUP}s warm-up + ${DURATION}s each, $CONNECTIONS connections; results in $OUT"
for round in $(seq 1 "$ROUNDS"); do
  for scenario in $SCENARIOS; do
    for entry in "${ALL_CONTENDERS[@]}"; do
      IFS='|' read -r name store _ cmd <<<"$entry"
      selected "$name" || continue
      measured_run "$scenario" "$cmd" "$store"
      read -r rps p99 errors non2xx <<<"$RESULT"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$name" "${rps:-0}" "${p99:-0}" "${errors:-0}" "${non2xx:-0}" "$BUSY" "${PROBES/ /$'\t'}" "$TRIES" >>"$RAW"
      printf '  round %s %-6s %-17s %10s req/s  p99 %8s us  errors %s non-2xx %s  busy before %s%%  probe %s us  tries %s\n' "$round" "$scenario" "$name" "${rps:-0}" "${p99:-0}" "${errors:-0}" "${non2xx:-0}" "$BUSY" "${PROBES/ //}" "$TRIES"
    done
  done
done

MEMLINE=""
if [ "$SCALING" = 1 ]; then
  echo "== scaling: our memory store pre-filled, and with larger payloads"
  for round in $(seq 1 "$ROUNDS"); do
    for scenario in read count; do
      for config in $(for p in $PREFILLS; do echo "prefill=$p"; done) $(for b in $PAYLOADS; do echo "payload=$b"; done); do
        case $config in
          prefill=*) vars=(PREFILL="${config#prefill=}") ;;
          payload=*) vars=(PAYLOAD_BYTES="${config#payload=}") ;;
        esac
        measured_run "$scenario" "$BIN/ours_memory" memory "${vars[@]}"
        read -r rps p99 errors non2xx <<<"$RESULT"
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$config" "${rps:-0}" "${p99:-0}" "${errors:-0}" "${non2xx:-0}" "$BUSY" "${PROBES/ /$'\t'}" "$TRIES" >>"$SCALE"
        printf '  round %s %-6s %-15s %10s req/s  p99 %8s us\n' "$round" "$scenario" "$config" "${rps:-0}" "${p99:-0}"
      done
    done
  done
  # Memory per stored session: the resident set's growth while 1 M sessions go in.
  echo "== memory per session (1 M sessions)"
  : >"$WORK/mem.log"
  env PREFILL=1000000 PORT="$BENCH_PORT" "$BIN/ours_memory" >"$WORK/mem.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 1200); do grep -q '^prefill:' "$WORK/mem.log" && break; sleep 0.1; done
  stop_server
  MEMLINE=$(grep '^prefill:' "$WORK/mem.log" || true)
  echo "  $MEMLINE"
fi

# ---- the report -------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -F'\t' -v s="$2" -v c="$3" -v k="$4" 'NR > 1 && $2 == s && $3 == c {print $k}' "$1"; }
# ratio_rounds FILE SCENARIO OURS PEER: ours/peer per round, one per line.
ratio_rounds() {
  awk -F'\t' -v s="$2" -v o="$3" -v p="$4" 'NR > 1 && $2 == s {
      if ($3 == o) ours[$1] = $4; if ($3 == p) peer[$1] = $4 }
    END { for (r in ours) if ((r in peer) && peer[r] > 0) printf "%.3f\n", ours[r] / peer[r] }' "$1"
}
target_for() { # PEER SCENARIO: the target ratio for ours/peer, or empty
  case "$1:$2" in
    ceiling:read) echo 0.85 ;;
    tower-memory:*) echo 1.2 ;;
    actix-redis:*) echo 1.3 ;;
    tower-redis:*) echo 1.2 ;;
    tower-postgres:*) echo 1.5 ;;
    express-postgres:*) echo 5 ;;
    express-*) echo 10 ;;
  esac
}
# slowest FILE... COLUMN: a probe column's largest value over its median, every run.
slowest() {
  local column=${*: -1}
  awk -F'\t' -v c="$column" 'FNR > 1 && $c > 0 {print $c}' "${@:1:$#-1}" | sort -n |
    awk '{v[NR] = $1} END {printf "%.2f", NR ? v[NR] / v[int((NR + 1) / 2)] : 0}'
}

# spread FILE SCENARIO NAME: the largest req/s over the smallest across rounds.
spread() {
  awk -F'\t' -v s="$2" -v c="$3" 'NR > 1 && $2 == s && $3 == c && $4 > 0 {
      if (!n++ || $4 < lo) lo = $4; if ($4 > hi) hi = $4 }
    END { printf "%.2f", (n > 0) ? hi / lo : 0 }' "$1"
}

{
  echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)),"
  echo "$ROUNDS round(s), ${WARMUP}s warm-up + ${DURATION}s measured per run, wrk -t1 -c$CONNECTIONS,"
  echo "Redis contenders on $("$REDIS_SERVER_BIN" --version | cut -d' ' -f1-3)."
  for scenario in $SCENARIOS; do
    echo
    echo "### $scenario"
    echo
    echo "| contender | median req/s | median p99 (ms) | ours ÷ this, median of rounds | target | met |"
    echo "|---|---:|---:|---:|---:|:---:|"
    for entry in "${ALL_CONTENDERS[@]}"; do
      IFS='|' read -r name _ ours _ <<<"$entry"
      selected "$name" || continue
      rps=$(col "$RAW" "$scenario" "$name" 4 | median)
      p99=$(col "$RAW" "$scenario" "$name" 5 | median)
      ratio="" target="" met=""
      if [ -n "$ours" ] && selected "$ours"; then
        ratio=$(ratio_rounds "$RAW" "$scenario" "$ours" "$name" | median)
        target=$(target_for "$name" "$scenario")
        if [ -n "$target" ]; then
          met=$(awk -v r="$ratio" -v t="$target" 'BEGIN {print (r >= t) ? "yes" : "**no**"}')
          target="≥ $target"
        fi
        ratio=$(printf '%.2f' "$ratio")
      fi
      printf '| %s | %.0f | %.2f | %s | %s | %s |\n' "$name" "$rps" "$(awk -v u="$p99" 'BEGIN {print u / 1000}')" "$ratio" "$target" "$met"
    done
  done
  if [ "$SCALING" = 1 ]; then
    echo
    echo "### Scaling (ours, memory store)"
    echo
    echo "| scenario | configuration | median req/s | median p99 (ms) | ÷ smallest, median of rounds |"
    echo "|---|---|---:|---:|---:|"
    for scenario in read count; do
      for group in prefill payload; do
        first=""
        for config in $(awk -F'\t' -v s="$scenario" -v g="$group=" 'NR > 1 && $2 == s && index($3, g) == 1 && !seen[$3]++ {print $3}' "$SCALE"); do
          [ -z "$first" ] && first=$config
          rps=$(col "$SCALE" "$scenario" "$config" 4 | median)
          p99=$(col "$SCALE" "$scenario" "$config" 5 | median)
          ratio=$(ratio_rounds "$SCALE" "$scenario" "$config" "$first" | median)
          printf '| %s | %s | %.0f | %.2f | %.2f |\n' "$scenario" "$config" "$rps" "$(awk -v u="$p99" 'BEGIN {print u / 1000}')" "$ratio"
        done
      done
    done
    if [ -n "$MEMLINE" ]; then
      echo
      echo "Memory, 1 M sessions in our memory store: \`$MEMLINE\`"
      echo "$MEMLINE" | awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
        printf "→ %d bytes resident per session, %d beyond its %d-byte JSON (target ≤ 300).\n",
          v["per_session"], v["per_session"] - v["json_bytes"], v["json_bytes"]}'
    fi
  fi
  bad=$(awk -F'\t' 'FNR > 1 && ($6 > 0 || $7 > 0) {n++} END {print n + 0}' "$RAW" "$SCALE")
  echo
  echo "Runs with socket errors or non-2xx responses: $bad (see raw.tsv / scaling.tsv)."
  echo
  worst=$(awk -F'\t' 'FNR > 1 && $8 > m {m = $8} END {printf "%.1f", m + 0}' "$RAW" "$SCALE")
  verdict=QUIET
  awk -v w="$worst" -v q="$QUIET_CPU" 'BEGIN {exit !(w > q)}' && verdict=BUSY
  spreads=""
  if selected ceiling; then
    for scenario in $SCENARIOS; do
      sp=$(spread "$RAW" "$scenario" ceiling)
      spreads="$spreads $scenario $sp,"
      awk -v s="$sp" -v q="$QUIET_SPREAD" 'BEGIN {exit !(s > q)}' && verdict=BUSY
    done
  fi
  echo "Quiet check: the most CPU in use before a run was $worst % (limit $QUIET_CPU %);"
  echo "the ceiling's largest ÷ smallest req/s across rounds:${spreads%,} (limit $QUIET_SPREAD)."
  again=$(awk -F'\t' 'FNR > 1 && $11 > 1 {n++} END {print n + 0}' "$RAW" "$SCALE")
  runs=$(awk -F'\t' 'FNR > 1 {n++} END {print n + 0}' "$RAW" "$SCALE")
  slow=$(awk -F'\t' -v rs="$REF_SERVER" -v rl="$REF_LOAD" -v k="$HOST_LIMIT" \
    'FNR > 1 && ($9 > k * rs || $10 > k * rl) {n++} END {print n + 0}' "$RAW" "$SCALE")
  [ "$slow" -gt 0 ] && verdict=BUSY
  # The reference is taken at the start; a host slow just then makes it lenient. The
  # median over every counted run is a second reference, checked after the fact.
  server_slowest=$(slowest "$RAW" "$SCALE" 9) load_slowest=$(slowest "$RAW" "$SCALE" 10)
  awk -v s="$server_slowest" -v l="$load_slowest" -v k="$HOST_LIMIT" \
    'BEGIN {exit !(s > k || l > k)}' && verdict=BUSY
  echo "Host speed: a fixed loop's reference time $REF_SERVER us (server CPU), $REF_LOAD us (load CPU);"
  echo "runs measured again because either took over $HOST_LIMIT × that around them: $again of $runs;"
  echo "still slowed at the last try: $slow (limit 0). Slowest ÷ median around a counted run:"
  echo "server CPU $server_slowest, load CPU $load_slowest (limit $HOST_LIMIT)."
  if [ "$verdict" = QUIET ]; then
    echo "**This run was QUIET.**"
  else
    echo "**This run was BUSY: do not publish it; stop other work and run again.**"
  fi
} >"$OUT/report.md"

echo
cat "$OUT/report.md"
echo
echo "== results in $OUT"
