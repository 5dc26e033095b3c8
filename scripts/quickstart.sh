#!/usr/bin/env bash
# One command from a fresh clone to a running cutover: installs dependencies, builds, starts two
# local PostgreSQL 15 clusters (old on 5440, new on 5441; loopback only, data in .cutover/) and the
# proxy on 127.0.0.1:6432 in front of them.
#   scripts/quickstart.sh          start (idempotent); WRITES=dual READS_NEW_PERCENT=10 to mirror and ramp
#   scripts/quickstart.sh stop     stop the proxy and both clusters
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.cutover
OLD_PORT=${OLD_PORT:-5440}
NEW_PORT=${NEW_PORT:-5441}
PROXY_PORT=${PROXY_PORT:-6432}
source scripts/pgcluster.sh

stop_all() {
  if [ -f "$STATE/cutover.pid" ] && kill -0 "$(cat "$STATE/cutover.pid")" 2>/dev/null; then
    kill -TERM "$(cat "$STATE/cutover.pid")"
    for _ in $(seq 50); do kill -0 "$(cat "$STATE/cutover.pid")" 2>/dev/null || break; sleep 0.1; done
    echo "cutover stopped"
  fi
  rm -f "$STATE/cutover.pid"
  pg_stop "$STATE/old"
  pg_stop "$STATE/new"
  echo "old and new stores stopped (data kept in $STATE; remove it for a clean slate)"
}

if [ "${1:-}" = "stop" ]; then stop_all; exit 0; fi

scripts/setup.sh
mkdir -p "$STATE"
[ "$(id -u)" -eq 0 ] && chmod 755 "$STATE"
pg_start old "$STATE/old" "$OLD_PORT"
pg_start new "$STATE/new" "$NEW_PORT"

cat > "$STATE/cutover.yaml" <<YAML
# Written by scripts/quickstart.sh. Pass-through: every statement goes to the old store.
listen: 127.0.0.1:$PROXY_PORT
workers: 2
max_client_connections: 1000
stores:
  old: { host: 127.0.0.1, port: $OLD_PORT, sslmode: prefer }
  new: { host: 127.0.0.1, port: $NEW_PORT, sslmode: prefer }
auth:
  method: trust
flags:
  state_file: $STATE/cutover-flags.json
  writes: ${WRITES:-old}
  mirror: sync
  reads_new_percent: ${READS_NEW_PERCENT:-0}
journal_dir: $STATE/journal/
admin: { listen: 127.0.0.1:${ADMIN_PORT:-9187} }    # GET /metrics, /flags, /healthz
YAML

if [ -f "$STATE/cutover.pid" ] && kill -0 "$(cat "$STATE/cutover.pid")" 2>/dev/null; then
  echo "cutover already running (pid $(cat "$STATE/cutover.pid"))"
else
  nohup build/cutover proxy --config "$STATE/cutover.yaml" >"$STATE/cutover.log" 2>&1 &
  echo $! >"$STATE/cutover.pid"
  for _ in $(seq 100); do
    grep -q "listening on" "$STATE/cutover.log" 2>/dev/null && break
    kill -0 "$(cat "$STATE/cutover.pid")" 2>/dev/null || { cat "$STATE/cutover.log"; exit 1; }
    sleep 0.1
  done
  echo "cutover started (pid $(cat "$STATE/cutover.pid"), log $STATE/cutover.log)"
fi

cat <<TXT

Ready. Connect through cutover:
    psql -h 127.0.0.1 -p $PROXY_PORT -U postgres postgres
The stores directly: old  psql -h 127.0.0.1 -p $OLD_PORT -U postgres
                     new  psql -h 127.0.0.1 -p $NEW_PORT -U postgres
Metrics: curl http://127.0.0.1:${ADMIN_PORT:-9187}/metrics     Flags: curl http://127.0.0.1:${ADMIN_PORT:-9187}/flags
Dual-write: scripts/quickstart.sh stop && WRITES=dual READS_NEW_PERCENT=10 scripts/quickstart.sh
            (divergences land in $STATE/journal/divergences.jsonl)
Config: $STATE/cutover.yaml    Stop everything: scripts/quickstart.sh stop
TXT
