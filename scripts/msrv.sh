#!/usr/bin/env bash
# Checks the `rust-version` claim in Cargo.toml as far as this machine can:
#  1. no dependency (normal, all features) declares a newer `rust-version` than ours;
#  2. clippy's `incompatible_msrv` lint (run by scripts/test.sh with -D warnings) flags any
#     standard-library API newer than the claim;
#  3. when the claimed toolchain is installed (rustup), `cargo +<claim> check` builds with it;
#     otherwise this step says so (these machines cannot download toolchains).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --all-features | python3 -c '
import json, sys
m = json.load(sys.stdin)
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
pkgs = {p["id"]: p for p in m["packages"]}
root = next(p for p in m["packages"] if p["name"] == "actix-express-session")
ver = lambda v: (tuple(int(x) for x in (v or "0").split(".")) + (0, 0))[:3]
claim = ver(root["rust_version"])
seen, stack = set(), [root["id"]]
while stack:
    i = stack.pop()
    if i in seen:
        continue
    seen.add(i)
    stack += [d["pkg"] for d in nodes[i]["deps"] if any(k["kind"] is None for k in d["dep_kinds"])]
newer = sorted(pkgs[i]["name"] + " " + pkgs[i]["rust_version"] for i in seen
               if ver(pkgs[i].get("rust_version")) > claim)
if newer:
    sys.exit("rust-version " + root["rust_version"] + " is below what these dependencies need: " + ", ".join(newer))
print("== rust-version " + root["rust_version"] + ": no dependency needs a newer Rust")
'
claim=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if rustup toolchain list 2>/dev/null | grep -q "^$claim"; then
  echo "== cargo +$claim check --all-features"
  cargo "+$claim" check --all-features --lib
elif rustc --version | grep -q "^rustc $claim\."; then
  echo "== the toolchain in use is rust $claim: every build here checks the claim"
else
  echo "== rust $claim is not installed here: the claim rests on the two checks above"
fi
