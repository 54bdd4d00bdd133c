# Valkey 8.1 for the tests and the load benchmark: the first server version with
# `SET key value IFEQ expected`, which the Redis store's conditional saves use where the
# server has it. Debian 12 packages Redis 7.0 only, and trixie's Valkey binary needs a
# newer glibc, so this builds the server from trixie's source package (the upstream
# release, checked against its SHA-256), once, into $CARGO_TARGET_DIR/valkey. Sourced by
# scripts/test.sh (which provides $WORK and STOP_HOOKS) and scripts/bench.sh.
#
# valkey_ensure_built: builds valkey-server if needed; exports VALKEY_SERVER_BIN.
# start_valkey: a standalone server on 127.0.0.1, no persistence; exports VALKEY_URL.
# start_valkey_cluster: three primaries; exports VALKEY_CLUSTER_URLS (as
# start_redis_cluster does, from scripts/redis.sh).

VALKEY_VERSION=8.1.1
VALKEY_TARBALL="valkey_${VALKEY_VERSION}+dfsg1.orig.tar.xz"
VALKEY_SHA256=d9bbd82eecb82f359e649a0007ad3dc1b47cc15afa626348ca86b73c4ae2c7ee
VALKEY_SOURCE="http://deb.debian.org/debian/pool/main/v/valkey/$VALKEY_TARBALL"

valkey_ensure_built() {
  local root="${CARGO_TARGET_DIR:-$PWD/target}/valkey"
  VALKEY_SERVER_BIN="$root/valkey-$VALKEY_VERSION/src/valkey-server"
  export VALKEY_SERVER_BIN
  [ -x "$VALKEY_SERVER_BIN" ] && return 0
  echo "== building Valkey $VALKEY_VERSION from Debian's source package"
  if ! command -v curl >/dev/null || ! command -v xz >/dev/null || ! command -v make >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      curl xz-utils make gcc libc6-dev pkg-config >/dev/null
  fi
  mkdir -p "$root"
  curl -fsS -o "$root/$VALKEY_TARBALL" "$VALKEY_SOURCE" || return 1
  echo "$VALKEY_SHA256  $root/$VALKEY_TARBALL" | sha256sum -c --quiet - || return 1
  tar -xJf "$root/$VALKEY_TARBALL" -C "$root" || return 1
  make -C "$root/valkey-$VALKEY_VERSION/src" -j"$(nproc)" BUILD_TLS=no valkey-server \
    >"$root/build.log" 2>&1 || { tail -30 "$root/build.log" >&2; return 1; }
}

start_valkey() {
  valkey_ensure_built || return 1
  VALKEY_DIR="$WORK/valkey"
  local port
  port=$(redis_free_port) || return 1
  REDIS_SERVER_BIN="$VALKEY_SERVER_BIN" redis_launch "$VALKEY_DIR" "$port" || return 1
  redis_wait_ping "$port" || { cat "$VALKEY_DIR/redis.log" >&2; return 1; }
  export VALKEY_URL="redis://127.0.0.1:$port"
  STOP_HOOKS+=(stop_valkey)
  echo "== valkey at $VALKEY_URL"
}

stop_valkey() {
  redis_kill "$VALKEY_DIR"
}

start_valkey_cluster() {
  valkey_ensure_built || return 1
  STOP_HOOKS+=(stop_valkey_cluster)
  REDIS_SERVER_BIN="$VALKEY_SERVER_BIN" redis_cluster_up "$WORK/valkey-cluster" || return 1
  export VALKEY_CLUSTER_URLS=$CLUSTER_URLS
  echo "== valkey cluster at $VALKEY_CLUSTER_URLS"
}

stop_valkey_cluster() {
  redis_kill "$WORK"/valkey-cluster/cluster-*
}
