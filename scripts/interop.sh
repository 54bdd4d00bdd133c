#!/usr/bin/env bash
# Interop tests against the real Node packages (express-session, connect-redis,
# connect-pg-simple): see interop/test.js. Expects REDIS_URL and DATABASE_URL to point at
# running servers (scripts/test.sh starts them); installs Node.js and npm from apt when
# missing, runs `npm ci` in interop/, builds examples/interop.rs once (same target dir,
# profile and features as `cargo test --all-features`, so nothing is rebuilt) and runs
# `node --test interop/test.js`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

: "${REDIS_URL:?scripts/interop.sh needs REDIS_URL (start_redis in scripts/redis.sh)}"
: "${DATABASE_URL:?scripts/interop.sh needs DATABASE_URL (start_postgres in scripts/postgres.sh)}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The pinned packages need Node.js >= 18.19 (Debian 12's nodejs is 18.20).
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
  if (a < 18 || (a === 18 && b < 19)) { console.error(`Node.js ${process.version} is too old: the interop tests need >= 18.19`); process.exit(1); }'
echo "== Node.js $(node --version), npm $(npm --version 2>/dev/null)"

echo "== npm ci (interop/)"
(cd interop && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build --example interop"
RUST_APP=$(cargo build --example interop --all-features --message-format=json-render-diagnostics |
  node -e 'let exe = ""; require("readline").createInterface({ input: process.stdin })
    .on("line", (l) => { try { const m = JSON.parse(l); if (m.reason === "compiler-artifact" && m.target.name === "interop" && m.executable) exe = m.executable; } catch {} })
    .on("close", () => { if (!exe) process.exit(1); console.log(exe); });')
export RUST_APP

echo "== node --test interop/test.js"
node --test --test-reporter=spec interop/test.js
