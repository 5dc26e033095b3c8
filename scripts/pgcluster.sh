# Shared shell helpers to run throwaway PostgreSQL 15 clusters as the `postgres` OS user when we
# are root (PostgreSQL refuses to run as root). Sourced by quickstart.sh; tests use the Python
# harness in tests/integration/harness.py.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start NAME DIR PORT: initdb (once) and start a loopback-only cluster in DIR.
pg_start() {
  local name=$1 dir=$2 port=$3
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_pg "$PG_BIN/initdb" -D "$dir" -U postgres -A trust -N --no-instructions >/dev/null
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    echo "$name store already running on port $port"
    return 0
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start >/dev/null
  echo "$name store started: 127.0.0.1:$port (data $dir, log $dir/server.log)"
}

pg_stop() {
  local dir=$1
  [ -f "$dir/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}
