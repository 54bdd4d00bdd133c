#!/usr/bin/env bash
# Short fuzz run of every cargo-fuzz target in fuzz/ (issue 5): one build, then each
# target for FUZZ_SECONDS (default 60). Exits non-zero on the first crash, naming the
# input that reproduces it.
#
#   scripts/fuzz.sh                         # every target, 60 s each
#   FUZZ_SECONDS=3600 scripts/fuzz.sh cookie  # one target, an hour (a long session)
#   FUZZ_JOBS=2 scripts/fuzz.sh             # targets two at a time (2 cores)
#
# Only the stable toolchain exists here: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the
# sanitizer-coverage flags libFuzzer needs. The build lives in fuzz/target; the corpus
# grows in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>) and crashes land in
# fuzz/artifacts/<target>, all three ignored by git.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
ALL_TARGETS=(cookie record middleware)
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# fuzz/ is its own workspace with its own target dir, whatever the caller exported.
unset CARGO_TARGET_DIR
TARGET_DIR="$PWD/target"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

echo "== cargo fuzz build"
start=$(date +%s)
# No sanitizer: the crate forbids unsafe code, and ASan would double the build and
# halve the speed. Debug assertions and overflow checks stay on (cargo-fuzz's default).
mkdir -p artifacts
if ! cargo fuzz build --sanitizer none --target-dir "$TARGET_DIR" >artifacts/build.log 2>&1; then
  tail -50 artifacts/build.log >&2
  echo "FAIL cargo fuzz build: see fuzz/artifacts/build.log" >&2
  exit 1
fi
echo "   built in $(($(date +%s) - start)) s"

run_target() {
  local target=$1
  local bin="$TARGET_DIR/$TRIPLE/release/$target"
  local log="artifacts/$target.log"
  mkdir -p "corpus/$target" "artifacts/$target" "seeds/$target"
  local dict=()
  case $target in cookie | middleware) dict=(-dict=dicts/cookie.dict) ;; esac
  if "$bin" "corpus/$target" "seeds/$target" "${dict[@]}" \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"$log" 2>&1; then
    local runs speed
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    echo "   $target: ${runs:-?} runs in ${SECONDS_PER_TARGET} s (${speed:-?}/s), no crash"
  else
    echo "FAIL $target: see fuzz/$log" >&2
    grep -E "panicked at|^  (left|right):|Test unit written to" "$log" | head -20 >&2 || tail -40 "$log" >&2
    local crash
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    if [ -n "$crash" ]; then
      echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none $target fuzz/$crash" >&2
    fi
    return 1
  fi
}

echo "== fuzzing ${SECONDS_PER_TARGET} s per target"
status=0
if [ "$JOBS" -gt 1 ]; then
  pids=()
  for target in "${TARGETS[@]}"; do
    run_target "$target" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
else
  for target in "${TARGETS[@]}"; do run_target "$target" || status=1; done
fi
exit "$status"
