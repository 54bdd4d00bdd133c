#!/usr/bin/env bash
# The one test command: starts real Redis (standalone and a 3-node cluster), Valkey and
# PostgreSQL on loopback, then runs formatting, lints, docs, every test, the Node
# interop suite and a short fuzz run of each target (FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

WORK=$(mktemp -d)
cleanup() {
  set +e
  for f in "${STOP_HOOKS[@]:-}"; do [ -n "$f" ] && "$f"; done
  rm -rf "$WORK"
}
STOP_HOOKS=()
trap cleanup EXIT

# Each sourced file defines start_* functions that export the servers' URLs and push
# their stop function onto STOP_HOOKS.
source scripts/redis.sh
source scripts/valkey.sh
source scripts/postgres.sh

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings
echo "== rust-version"
scripts/msrv.sh
echo "== cargo check: each store feature alone"
cargo check --no-default-features
cargo check --no-default-features --features redis
cargo check --no-default-features --features postgres
echo "== cargo clippy: benchmark servers (built so they cannot rot; the load run is scripts/bench.sh)"
cargo clippy -p benchmarks --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

start_redis
start_redis_cluster
start_valkey
start_valkey_cluster
start_postgres

echo "== cargo test"
cargo test --all-features

echo "== interop with the real express-session, connect-redis and connect-pg-simple"
scripts/interop.sh
scripts/browser.sh

scripts/fuzz.sh
