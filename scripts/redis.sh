# Redis for the tests; sourced by scripts/test.sh, which provides $WORK (a temp dir it
# removes) and the STOP_HOOKS array.
#
# start_redis: a standalone server on 127.0.0.1, no persistence, files in $WORK/redis.
# Exports REDIS_URL, and for tests that stop and restart servers of their own:
# REDIS_SERVER_BIN (the redis-server binary, unless already set: scripts/bench.sh sets
# Valkey's) and REDIS_DIR (a directory for their files).
#
# start_redis_cluster: three primaries, no replicas, on 127.0.0.1. Exports
# REDIS_CLUSTER_URLS (comma-separated redis:// URLs of every node).

redis_install() {
  echo "== installing Redis (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
}

redis_ensure_installed() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    redis_install || return 1
  fi
  REDIS_SERVER_BIN=${REDIS_SERVER_BIN:-$(command -v redis-server)}
  export REDIS_SERVER_BIN
}

# A loopback TCP port nobody listens on, whose cluster bus port (+10000) is free too.
# Both stay below the kernel's ephemeral range (32768 and up by default): a port in it
# can be taken, between this check and the server's bind, as the local end of some
# client's connection (seen: "bind: Address already in use").
redis_free_port() {
  local port low span
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  span=$((low > 31000 ? low - 30000 : 1000))
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % span))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
      ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# redis_launch DIR PORT [extra redis-server options...]: a daemonized server, pid in DIR.
redis_launch() {
  local dir=$1 port=$2
  shift 2
  mkdir -p "$dir"
  "$REDIS_SERVER_BIN" --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --save "" --appendonly no --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "$@"
}

# redis_wait_ping PORT: waits (at most ~10 s) until the server answers PING.
redis_wait_ping() {
  for _ in $(seq 1 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.1
  done
  echo "redis on port $1 did not answer PING" >&2
  return 1
}

# redis_kill DIR...: stops the servers whose pid files are in those directories.
redis_kill() {
  local dir pid
  for dir in "$@"; do
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null
  done
}

start_redis() {
  redis_ensure_installed || return 1
  REDIS_DIR="$WORK/redis"
  local port
  port=$(redis_free_port) || return 1
  redis_launch "$REDIS_DIR/standalone" "$port" || return 1
  redis_wait_ping "$port" || { cat "$REDIS_DIR/standalone/redis.log" >&2; return 1; }
  export REDIS_DIR REDIS_URL="redis://127.0.0.1:$port"
  STOP_HOOKS+=(stop_redis)
  echo "== redis at $REDIS_URL"
}

stop_redis() {
  redis_kill "$REDIS_DIR/standalone"
}

start_redis_cluster() {
  redis_ensure_installed || return 1
  STOP_HOOKS+=(stop_redis_cluster)
  redis_cluster_up "$WORK/redis" || return 1
  export REDIS_CLUSTER_URLS=$CLUSTER_URLS
  echo "== redis cluster at $REDIS_CLUSTER_URLS"
}

stop_redis_cluster() {
  redis_kill "$WORK"/redis/cluster-*
}

# redis_cluster_up ROOT: three primaries of $REDIS_SERVER_BIN, no replicas, files in
# ROOT/cluster-<port>; sets CLUSTER_URLS (comma-separated redis:// URLs).
redis_cluster_up() {
  local root=$1 ports=() urls=() port i
  for i in 1 2 3; do
    port=$(redis_free_port) || return 1
    redis_launch "$root/cluster-$port" "$port" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000 || return 1
    ports+=("$port")
    urls+=("redis://127.0.0.1:$port")
  done
  for port in "${ports[@]}"; do redis_wait_ping "$port" || return 1; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") \
    --cluster-replicas 0 --cluster-yes >"$root/cluster-create.log" 2>&1 || {
    cat "$root/cluster-create.log" >&2
    return 1
  }
  redis_wait_cluster_ok "${ports[@]}" || return 1
  CLUSTER_URLS=$(IFS=,; echo "${urls[*]}")
}

# redis_wait_cluster_ok PORT...: waits (at most ~20 s) until every node reports
# cluster_state:ok.
redis_wait_cluster_ok() {
  local port ok
  for _ in $(seq 1 200); do
    ok=1
    for port in "$@"; do
      redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  echo "the redis cluster on ports $* did not reach cluster_state:ok" >&2
  return 1
}

