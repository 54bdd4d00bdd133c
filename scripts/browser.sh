#!/usr/bin/env bash
# Browser test: examples/login.rs in headless Chromium (see browser/test.js). Installs
# Debian's chromium (and Node.js and npm) from apt when missing, runs `npm ci` in browser/
# (playwright-core only: it downloads no browser), builds the login example (same target
# dir, profile and features as `cargo test --all-features`, so nothing is rebuilt) and
# runs `node --test browser/test.js`. Needs no Redis or PostgreSQL. CHROMIUM picks another
# Chromium executable; the test leaves a screenshot in target/browser/logged-in.png.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]} (apt-get)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
export CHROMIUM
# playwright-core needs Node.js >= 20 (Debian 12's own nodejs is 18: use NodeSource's).
node -e 'if (Number(process.versions.node.split(".")[0]) < 20) {
  console.error(`Node.js ${process.version} is too old: the browser test needs >= 20`); process.exit(1); }'
echo "== Node.js $(node --version), $("$CHROMIUM" --version 2>/dev/null)"

echo "== npm ci (browser/)"
(cd browser && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo build --example login"
LOGIN_APP=$(cargo build --example login --all-features --message-format=json-render-diagnostics |
  node -e 'let exe = ""; require("readline").createInterface({ input: process.stdin })
    .on("line", (l) => { try { const m = JSON.parse(l); if (m.reason === "compiler-artifact" && m.target.name === "login" && m.executable) exe = m.executable; } catch {} })
    .on("close", () => { if (!exe) process.exit(1); console.log(exe); });')
export LOGIN_APP

echo "== node --test browser/test.js"
node --test --test-reporter=spec browser/test.js
