# PostgreSQL for the tests; sourced by scripts/test.sh, which provides $WORK (a temp
# dir it removes) and the STOP_HOOKS array.
#
# start_postgres: a throwaway cluster in $WORK/pg, listening on 127.0.0.1 only (plus a
# unix socket inside $WORK), trust auth, superuser "postgres", database "sessions".
# Exports DATABASE_URL, and for tests that stop and restart servers of their own:
# PG_BIN_DIR (initdb, pg_ctl, ...), PG_OS_USER (the unprivileged user the server runs
# as when we are root; empty otherwise), PG_DATA_DIR and PG_PORT.

pg_find_bin() {
  local d
  for d in "${PG_BIN_DIR:-}" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  return 1
}

pg_install() {
  echo "== installing PostgreSQL (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

# Runs a command as the server's user: initdb and postgres refuse to run as root.
pg_as() {
  if [ -n "${PG_OS_USER:-}" ]; then
    runuser -u "$PG_OS_USER" -- "$@"
  else
    "$@"
  fi
}

# A loopback TCP port nobody listens on.
pg_free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

start_postgres() {
  PG_BIN_DIR=$(pg_find_bin) || { pg_install && PG_BIN_DIR=$(pg_find_bin); } || {
    echo "start_postgres: no initdb found, even after installing postgresql" >&2
    return 1
  }
  PG_OS_USER=""
  if [ "$(id -u)" = 0 ]; then
    PG_OS_USER=postgres
    id -u postgres >/dev/null 2>&1 || PG_OS_USER=nobody
    chmod a+x "$WORK" # let the server's user reach its directory
  fi
  PG_DATA_DIR="$WORK/pg/data"
  local sockets="$WORK/pg/sockets"
  mkdir -p "$PG_DATA_DIR" "$sockets"
  chmod 700 "$PG_DATA_DIR"
  [ -n "$PG_OS_USER" ] && chown -R "$PG_OS_USER" "$WORK/pg"
  pg_as "$PG_BIN_DIR/initdb" -D "$PG_DATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$WORK/pg/initdb.log" 2>&1 || {
    cat "$WORK/pg/initdb.log" >&2
    return 1
  }
  # Settings live in the config so that a plain `pg_ctl start -D $PG_DATA_DIR` restarts
  # the server exactly as it was.
  cat >>"$PG_DATA_DIR/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sockets'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  local try
  for try in 1 2 3 4 5; do
    PG_PORT=$(pg_free_port) || return 1
    sed -i '/^port = /d' "$PG_DATA_DIR/postgresql.conf"
    echo "port = $PG_PORT" >>"$PG_DATA_DIR/postgresql.conf"
    if pg_as "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -l "$WORK/pg/server.log" -w -t 30 start >/dev/null; then
      break
    fi
    [ "$try" = 5 ] && { cat "$WORK/pg/server.log" >&2; return 1; }
  done
  STOP_HOOKS+=(stop_postgres)
  local i
  for i in $(seq 1 100); do
    "$PG_BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    [ "$i" = 100 ] && { echo "start_postgres: the server never got ready" >&2; return 1; }
    sleep 0.1
  done
  "$PG_BIN_DIR/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres sessions
  export PG_BIN_DIR PG_OS_USER PG_DATA_DIR PG_PORT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/sessions"
  echo "== PostgreSQL $("$PG_BIN_DIR/postgres" --version | awk '{print $3}') on $DATABASE_URL"
}

stop_postgres() {
  pg_as "$PG_BIN_DIR/pg_ctl" -D "$PG_DATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
}
