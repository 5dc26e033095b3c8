#!/usr/bin/env bash
# Throughput/latency benchmark of cutover (pass-through, dual-write sync and async, read ramp,
# shadow reads)
# against direct PostgreSQL and PgBouncer, all measured in the same run on the same machine.
# See bench/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/run.sh [--cutover PATH] [--duration S] [--clients N] [--workers N] [--scale N]
                    [--targets LIST] [--drain-timeout S] [--transport tcp|unix] [--save]
       bench/run.sh --cpu [--select-rate TPS] [--tpcb-rate TPS] [same options]

  --cutover PATH   cutover binary (default: build/cutover, relative to the repo root)
  --duration S     seconds per measured pgbench run (default: 20)
  --clients N      pgbench clients (default: 8)
  --workers N      cutover's event-loop threads (config `workers`, default: 2 as in
                   DESIGN.md; 1 compares like for like with PgBouncer's single thread)
  --scale N        pgbench scale factor for -i (default: 10)
  --targets LIST   comma-separated subset of direct,pgbouncer,passthrough,dual,async,ramp,
                   shadow0,shadow100 (default: all eight; "cutover" is accepted for
                   passthrough). shadow0/shadow100 run the select-only workloads only, at
                   --clients and at 1 client; the report's "shadow cost" compares them.
  --drain-timeout S  after each run of the async target, how long to wait for its mirror
                   queue (cutover_mirror_queue_units) to reach 0 (default: 300)
  --transport T    tcp (default): every connection (pgbench to its target, PgBouncer and cutover
                   to PostgreSQL) goes over 127.0.0.1 TCP. unix: every one of them goes over a
                   Unix socket instead, as for a pooler on the database host; direct PostgreSQL
                   is then measured over its Unix socket too, so the ratios stay like for like.
  --save           also write the report to bench/results-<date>.txt
  --cpu            instead of the TPS runs: the proxy's CPU per transaction at a fixed rate
                   (pgbench -R) and each target's latency at 1 client (bench/cpu_cost.sh);
                   targets direct,pgbouncer,passthrough,dual (or a subset of them)
  --select-rate N  --cpu: the select-only prepared rate, transactions/s (default: 8000)
  --tpcb-rate N    --cpu: the tpcb-like rate, transactions/s (default: 1000)

Exit status: 0 all runs done and no divergence; 1 a pgbench run failed; 2 usage or setup
error; 3 a dual-write run diverged (journal records other than "nondeterministic", e.g.
queue_full, or the two stores' contents differ after a write run), or a shadow read of
identical data was counted as a mismatch; 4 the async target's mirror queue did not drain
within --drain-timeout (the benchmark stops there). The shadow-cost goal (latency ratio
<= 1.10) is reported PASS/MISS, never an exit status.
EOF
}

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

ALL_TARGETS="direct,pgbouncer,passthrough,dual,async,ramp,shadow0,shadow100"
CUTOVER_BIN="build/cutover"
DURATION=20
CLIENTS=8
CUT_WORKERS=2
SCALE=10
TARGETS="$ALL_TARGETS"
SAVE=0
WARMUP=3
DRAIN_TIMEOUT=300
TRANSPORT=tcp
CPU_MODE=0
SELECT_RATE=8000
TPCB_RATE=1000
TARGETS_GIVEN=0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --cutover)  CUTOVER_BIN="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --clients)  CLIENTS="$2"; shift 2 ;;
    --workers)  CUT_WORKERS="$2"; shift 2 ;;
    --scale)    SCALE="$2"; shift 2 ;;
    --targets)  TARGETS="$2"; TARGETS_GIVEN=1; shift 2 ;;
    --drain-timeout) DRAIN_TIMEOUT="$2"; shift 2 ;;
    --transport) TRANSPORT="$2"; shift 2 ;;
    --save)     SAVE=1; shift ;;
    --cpu)      CPU_MODE=1; shift ;;
    --select-rate) SELECT_RATE="$2"; shift 2 ;;
    --tpcb-rate) TPCB_RATE="$2"; shift 2 ;;
    -h|--help)  usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

[[ "$CUT_WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --workers must be a positive number, got '$CUT_WORKERS'" >&2; exit 2; }
[[ "$TRANSPORT" == tcp || "$TRANSPORT" == unix ]] || { echo "run.sh: --transport must be tcp or unix, got '$TRANSPORT'" >&2; exit 2; }
for n in "$DURATION" "$CLIENTS" "$SCALE" "$DRAIN_TIMEOUT" "$SELECT_RATE" "$TPCB_RATE"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: expected a positive integer, got '$n'" >&2; exit 2; }
done

# --cpu compares the proxies against direct PostgreSQL: the ramp and shadow targets are not part
# of it.
CPU_TARGETS="direct,pgbouncer,passthrough,dual,async"
if [[ $CPU_MODE -eq 1 && $TARGETS_GIVEN -eq 0 ]]; then TARGETS="$CPU_TARGETS"; fi

# Targets, in the order given (duplicates dropped). "cutover" was the pass-through target's name
# before dual-write existed; it still means passthrough.
IFS=',' read -r -a requested <<< "$TARGETS"
TARGET_LIST=()
for t in "${requested[@]}"; do
  [[ "$t" == cutover ]] && t=passthrough
  case "$t" in direct|pgbouncer|passthrough|dual|async|ramp|shadow0|shadow100) ;; *)
    echo "run.sh: unknown target '$t' (expected some of $ALL_TARGETS)" >&2; exit 2 ;;
  esac
  if [[ $CPU_MODE -eq 1 && ",$CPU_TARGETS," != *",$t,"* ]]; then
    echo "run.sh: --cpu measures only $CPU_TARGETS, not '$t'" >&2; exit 2
  fi
  [[ " ${TARGET_LIST[*]} " == *" $t "* ]] || TARGET_LIST+=("$t")
done
[[ ${#TARGET_LIST[@]} -gt 0 ]] || { echo "run.sh: --targets is empty" >&2; exit 2; }
TARGETS=$(IFS=','; echo "${TARGET_LIST[*]}")
has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }
is_shadow() { [[ "$1" == shadow0 || "$1" == shadow100 ]]; }
is_async() { [[ "$1" == async ]]; }   # mirror: async: the new store applies writes after the answer
is_dual() { [[ "$1" == dual || "$1" == ramp ]] || is_async "$1" || is_shadow "$1"; }   # writes to both stores
is_cutover() { [[ "$1" == passthrough ]] || is_dual "$1"; }

ANY_CUTOVER=0 ANY_DUAL=0 ANY_SHADOW=0 ANY_ASYNC=0
for t in "${TARGET_LIST[@]}"; do
  if is_cutover "$t"; then ANY_CUTOVER=1; fi
  if is_async "$t"; then ANY_ASYNC=1; fi
  if is_dual "$t"; then ANY_DUAL=1; fi
  if is_shadow "$t"; then ANY_SHADOW=1; fi
done

PG_BIN=/usr/lib/postgresql/15/bin
PGBOUNCER_BIN=/usr/sbin/pgbouncer
PGBENCH_BIN="$PG_BIN/pgbench"
PSQL_BIN="$PG_BIN/psql"
DB=bench
DB_USER=postgres

if [[ $ANY_CUTOVER -eq 1 ]]; then
  [[ "$CUTOVER_BIN" = /* ]] || CUTOVER_BIN="$REPO_DIR/$CUTOVER_BIN"
  [[ -x "$CUTOVER_BIN" ]] || { echo "run.sh: cutover binary not found: $CUTOVER_BIN (build it, or pass --targets direct,pgbouncer)" >&2; exit 2; }
fi
for b in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PGBENCH_BIN" "$PSQL_BIN"; do
  [[ -x "$b" ]] || { echo "run.sh: missing $b (postgresql-15)" >&2; exit 2; }
done
if has_target pgbouncer && [[ ! -x "$PGBOUNCER_BIN" ]]; then
  echo "run.sh: missing $PGBOUNCER_BIN (pgbouncer)" >&2; exit 2
fi
if [[ $ANY_DUAL -eq 1 ]] && ! command -v curl >/dev/null; then
  echo "run.sh: the dual, async, ramp and shadow targets need curl (to read cutover's /metrics)" >&2; exit 2
fi

# Clients must not pick up connection settings from the caller's environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSSLMODE PGOPTIONS

# --- Processes we start, and their teardown ---------------------------------------------------

WORK_DIR="$(mktemp -d /tmp/cutover-bench.XXXXXX)"
# Where every client (pgbench, psql, PgBouncer, cutover) connects: 127.0.0.1, or with --transport
# unix the directory holding every server's Unix socket (libpq's host=DIR convention).
if [[ "$TRANSPORT" == unix ]]; then CONNECT_HOST="$WORK_DIR"; else CONNECT_HOST=127.0.0.1; fi
PG_DATA="$WORK_DIR/pgdata"          # the old store (and the only one direct/PgBouncer use)
PG_NEW_DATA="$WORK_DIR/pgdata-new"  # the new store, only for the dual, async, ramp and shadow targets
PG_STARTED=0
PG_NEW_STARTED=0
PGBOUNCER_PID=""
PGBENCH_PID=""
SAMPLER_PID=""   # the async target's queue sampler during a run
declare -A CUT_PID=() CUT_PORT=() CUT_ADMIN=()   # per cutover target

# PostgreSQL and PgBouncer refuse to run as root; run them as the postgres OS user then.
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || { echo "run.sh: running as root needs a 'postgres' OS user" >&2; exit 2; }
  chown postgres: "$WORK_DIR"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

# shellcheck disable=SC2317  # called from the EXIT trap
stop_pid() {  # stop_pid PID NAME: TERM, wait up to 10 s, then KILL.
  local pid="$1" name="$2" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n "$PGBENCH_PID" ]] && stop_pid "$PGBENCH_PID" pgbench
  [[ -n "$SAMPLER_PID" ]] && stop_pid "$SAMPLER_PID" "queue sampler"
  local t
  for t in "${!CUT_PID[@]}"; do
    [[ -n "${CUT_PID[$t]}" ]] && stop_pid "${CUT_PID[$t]}" "cutover ($t)"
  done
  [[ -n "$PGBOUNCER_PID" ]] && stop_pid "$PGBOUNCER_PID" pgbouncer
  if [[ $PG_STARTED -eq 1 ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
  fi
  if [[ $PG_NEW_STARTED -eq 1 ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_NEW_DATA" -m fast -w stop >/dev/null 2>&1
  fi
  if [[ $rc -ne 0 && $rc -ne 3 ]]; then
    for f in "$WORK_DIR"/postgres*.log "$WORK_DIR"/pgbouncer.log "$WORK_DIR"/cutover-*.log "$WORK_DIR"/pgbench-last.log; do
      [[ -s "$f" ]] || continue
      echo "---- last lines of $(basename "$f") ----" >&2
      tail -n 20 "$f" >&2
    done
  fi
  rm -rf "$WORK_DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

USED_PORTS=" "
free_port() {  # a TCP port nobody listens on now (and not handed out by this script before)
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 40000))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    if [[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then
      USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  echo "run.sh: no free port found" >&2
  return 1
}

# wait_for_sql PORT NAME PID: until `SELECT 1` succeeds through PORT on $CONNECT_HOST, at most 30 s.
# Each probe is bounded, so a server that accepts but never answers cannot stall the script.
wait_for_sql() {
  local port="$1" name="$2" pid="$3" deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited at start" >&2; return 1; }
    if PGCONNECT_TIMEOUT=3 timeout 5 "$PSQL_BIN" -h "$CONNECT_HOST" -p "$port" -U "$DB_USER" -d "$DB" \
         -XAtqc 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "run.sh: $name on port $port did not answer SELECT 1 within 30 s" >&2
  return 1
}

# --- PostgreSQL: the old store, and the new one when a dual target is measured ---------------

# start_cluster DATA PORT LOG: initdb, the bench settings, start, CREATE DATABASE.
start_cluster() {
  local data="$1" port="$2" log="$3"
  as_pg "$PG_BIN/initdb" -N -A trust -U "$DB_USER" -D "$data" >"$WORK_DIR/initdb.log" 2>&1 \
    || { cat "$WORK_DIR/initdb.log" >&2; exit 1; }
  as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# cutover bench
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$WORK_DIR'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = off
EOF
  as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start >/dev/null
}

PG_PORT=$(free_port)
start_cluster "$PG_DATA" "$PG_PORT" "$WORK_DIR/postgres.log"
PG_STARTED=1
"$PSQL_BIN" -h "$CONNECT_HOST" -p "$PG_PORT" -U "$DB_USER" -d postgres -XAtqc "CREATE DATABASE $DB" >/dev/null

PG_NEW_PORT=""
if [[ $ANY_DUAL -eq 1 ]]; then
  PG_NEW_PORT=$(free_port)
  start_cluster "$PG_NEW_DATA" "$PG_NEW_PORT" "$WORK_DIR/postgres-new.log"
  PG_NEW_STARTED=1
  "$PSQL_BIN" -h "$CONNECT_HOST" -p "$PG_NEW_PORT" -U "$DB_USER" -d postgres -XAtqc "CREATE DATABASE $DB" >/dev/null
fi
STORE_PORTS=("$PG_PORT")
[[ -n "$PG_NEW_PORT" ]] && STORE_PORTS+=("$PG_NEW_PORT")

# --- PgBouncer --------------------------------------------------------------------------------

PGB_PORT=""
if has_target pgbouncer; then
  PGB_PORT=$(free_port)
  as_pg tee "$WORK_DIR/userlist.txt" >/dev/null <<EOF
"$DB_USER" ""
EOF
  as_pg tee "$WORK_DIR/pgbouncer.ini" >/dev/null <<EOF
[databases]
* = host=$CONNECT_HOST port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $([[ "$TRANSPORT" == unix ]] && echo "$WORK_DIR")
auth_type = trust
auth_file = $WORK_DIR/userlist.txt
pool_mode = session
max_client_conn = 1000
default_pool_size = 20
pidfile = $WORK_DIR/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
  # Foreground run, logging to stderr; pgbouncer's own pid comes from its pidfile (under runuser, $! is runuser).
  as_pg "$PGBOUNCER_BIN" "$WORK_DIR/pgbouncer.ini" >>"$WORK_DIR/pgbouncer.log" 2>&1 &
  PGBOUNCER_PID=$!
  for ((i = 0; i < 100; i++)); do
    [[ -s "$WORK_DIR/pgbouncer.pid" ]] && break
    kill -0 "$PGBOUNCER_PID" 2>/dev/null || { echo "run.sh: pgbouncer exited at start" >&2; exit 1; }
    sleep 0.1
  done
  [[ -s "$WORK_DIR/pgbouncer.pid" ]] || { echo "run.sh: pgbouncer wrote no pidfile" >&2; exit 1; }
  PGBOUNCER_PID=$(<"$WORK_DIR/pgbouncer.pid")
  wait_for_sql "$PGB_PORT" pgbouncer "$PGBOUNCER_PID"
fi

# --- cutover: one process per cutover target, each with its own flags and journal ------------

# start_cutover TARGET: writes $WORK_DIR/cutover-TARGET.yaml and starts the proxy.
start_cutover() {
  local t="$1" port admin="" stores flags extra=""
  port=$(free_port)
  case "$t" in
    passthrough)
      stores="  old: { host: $CONNECT_HOST, port: $PG_PORT, sslmode: disable }"
      flags="writes: old" ;;
    dual|async|ramp|shadow0|shadow100)
      stores="  old: { host: $CONNECT_HOST, port: $PG_PORT, sslmode: disable }
  new: { host: $CONNECT_HOST, port: $PG_NEW_PORT, sslmode: disable }"
      case "$t" in
        dual) flags="writes: dual, mirror: sync, reads_new_percent: 0" ;;
        # The client is answered once the old store finished; the new store applies each
        # session's writes later from its queue (mirror_queue_units/_bytes: the defaults).
        async) flags="writes: dual, mirror: async, reads_new_percent: 0, shadow_percent: 0" ;;
        ramp) flags="writes: dual, mirror: sync, reads_new_percent: 50" ;;
        # The pair differs in shadow_percent only: reads are served by old, and shadow100 also
        # runs every read outside a transaction on new and compares the two results.
        shadow0) flags="writes: dual, mirror: sync, reads_new_percent: 0, shadow_percent: 0" ;;
        shadow100) flags="writes: dual, mirror: sync, reads_new_percent: 0, shadow_percent: 100" ;;
      esac
      admin=$(free_port)
      extra="journal_dir: $WORK_DIR/journal-$t/
admin: { listen: 127.0.0.1:$admin }" ;;
  esac
  cat >"$WORK_DIR/cutover-$t.yaml" <<EOF
listen: $CONNECT_HOST:$port
workers: $CUT_WORKERS
max_client_connections: 1000
stores:
$stores
auth: { method: trust }
flags: { state_file: $WORK_DIR/cutover-$t-flags.json, $flags }
$extra
log_level: warn
EOF
  "$CUTOVER_BIN" proxy --config "$WORK_DIR/cutover-$t.yaml" >"$WORK_DIR/cutover-$t.log" 2>&1 &
  CUT_PID[$t]=$!
  CUT_PORT[$t]=$port
  CUT_ADMIN[$t]=$admin
  # Ready = answers SELECT 1. Its "listening on" line is logged at info level, which
  # log_level: warn hides, so the log cannot be the readiness signal here.
  wait_for_sql "$port" "cutover ($t)" "${CUT_PID[$t]}"
}

for t in "${TARGET_LIST[@]}"; do
  if is_cutover "$t"; then start_cutover "$t"; fi
done

target_port() {
  case "$1" in
    direct) echo "$PG_PORT" ;;
    pgbouncer) echo "$PGB_PORT" ;;
    *) echo "${CUT_PORT[$1]}" ;;
  esac
}

# --- Workloads --------------------------------------------------------------------------------

THREADS=$(( CLIENTS < 2 ? CLIENTS : 2 ))

# pgbench -i generates the same rows on every run (balances 0, blank filler), so the new store
# starts with exactly the old store's data, as after a completed backfill.
for port in "${STORE_PORTS[@]}"; do
  echo "run.sh: pgbench -i -s $SCALE (direct, port $port) ..." >&2
  "$PGBENCH_BIN" -i -q -s "$SCALE" -h "$CONNECT_HOST" -p "$port" -U "$DB_USER" "$DB" >"$WORK_DIR/pgbench-init.log" 2>&1 \
    || { cat "$WORK_DIR/pgbench-init.log" >&2; exit 1; }
done

INSERT_SCRIPT="$WORK_DIR/insert-defaults.sql"
printf '%s\n' '\set aid random(1, 1000000)' "INSERT INTO bench_events (account, note) VALUES (:aid, 'bench');" > "$INSERT_SCRIPT"

WORKLOAD_NAMES=("select-only simple" "select-only prepared" "tpcb-like simple" "insert defaults simple")
WORKLOAD_ARGS=("-S -M simple" "-S -M prepared" "-M simple" "-M simple -f $INSERT_SCRIPT")
WORKLOAD_WRITES=(0 0 1 1)

# The shadow targets measure what shadowing reads costs: they run the select-only workloads only
# (tpcb-like's reads are inside transactions, which are never shadowed: it would measure `dual`).
runs_workload() {  # runs_workload TARGET W
  ! is_shadow "$1" || [[ ${WORKLOAD_WRITES[$2]} -eq 0 ]]
}
SHADOW_CLIENTS=(1)   # the shadow cost is measured at 1 client and at --clients
[[ $CLIENTS -ne 1 ]] && SHADOW_CLIENTS+=("$CLIENTS")

store_sql() {  # store_sql PORT SQL...: psql -c for each SQL, directly on one store
  local port="$1"; shift
  local cmds=() c
  for c in "$@"; do cmds+=(-c "$c"); done
  "$PSQL_BIN" -h "$CONNECT_HOST" -p "$port" -U "$DB_USER" -d "$DB" -Xq -v ON_ERROR_STOP=1 "${cmds[@]}" >/dev/null
}

# The insert-heavy workload: one autocommit INSERT per transaction into a table whose key, uuid
# and timestamp the store picks (bigserial, gen_random_uuid(), now()): what row images mirror.
for port in "${STORE_PORTS[@]}"; do
  store_sql "$port" 'DROP TABLE IF EXISTS bench_events' \
    'CREATE TABLE bench_events (id bigserial PRIMARY KEY, u uuid DEFAULT gen_random_uuid(), created_at timestamptz DEFAULT now(), account int, note text)'
done


# The maintenance pgbench would do before each run (vacuum, truncate history) is done here,
# directly on every store, so it is identical for every target and never goes through a proxy
# (-n below). When a dual target is measured, the balances a write workload changed are also set
# back to 0 before every write run of every target: direct, PgBouncer and pass-through runs write
# to the old store only, and a dual-write run must start with both stores holding the same rows
# (tpcb-like reads a balance inside its transaction, and that read is mirrored and compared).
# Likewise before a read run of a dual target after any write run (DATA_DIRTY): a shadowed or
# ramped read of a balance only one store changed would be a real mismatch, not the proxy's.
DATA_DIRTY=0
reset_tables() {  # reset_tables WRITES TARGET
  local writes="$1" target="$2" port reset=0
  if [[ $ANY_DUAL -eq 1 ]] && { [[ $writes -eq 1 ]] || { is_dual "$target" && [[ $DATA_DIRTY -eq 1 ]]; }; }; then
    reset=1
  fi
  for port in "${STORE_PORTS[@]}"; do
    if [[ $reset -eq 1 ]]; then
      store_sql "$port" \
        'UPDATE pgbench_accounts SET abalance = 0 WHERE abalance <> 0' \
        'UPDATE pgbench_tellers SET tbalance = 0 WHERE tbalance <> 0' \
        'UPDATE pgbench_branches SET bbalance = 0 WHERE bbalance <> 0'
    fi
    store_sql "$port" 'VACUUM pgbench_branches' 'VACUUM pgbench_tellers' 'TRUNCATE pgbench_history' \
      'TRUNCATE bench_events RESTART IDENTITY'
  done
  if [[ $writes -eq 1 ]]; then DATA_DIRTY=1; elif [[ $reset -eq 1 ]]; then DATA_DIRTY=0; fi
}

# A digest of everything tpcb-like and the insert workload write, every column (pgbench_history's
# mtime and bench_events' serial, uuid and timestamp are picked by the store: row images make
# them equal); equal on both stores after a clean dual-write run.
STORE_DIGEST_SQL="SELECT (SELECT count(*) || ':' || coalesce(sum(abalance::bigint), 0) || ':' || coalesce(sum(abalance::bigint * aid), 0) FROM pgbench_accounts)
  || '/' || (SELECT md5(string_agg(tid || '=' || tbalance, ',' ORDER BY tid)) FROM pgbench_tellers)
  || '/' || (SELECT md5(string_agg(bid || '=' || bbalance, ',' ORDER BY bid)) FROM pgbench_branches)
  || '/' || (SELECT count(*) || ':' || coalesce(md5(string_agg(tid || ',' || bid || ',' || aid || ',' || delta || ',' || mtime, ';' ORDER BY tid, bid, aid, delta, mtime)), '') FROM pgbench_history)
  || '/' || (SELECT count(*) || ':' || coalesce(md5(string_agg(id || ',' || u || ',' || created_at || ',' || account, ';' ORDER BY id)), '') FROM bench_events)"
store_digest() {
  "$PSQL_BIN" -h "$CONNECT_HOST" -p "$1" -U "$DB_USER" -d "$DB" -XAtqc "$STORE_DIGEST_SQL"
}

# cutover counters a dual target's runs are judged by, from its /metrics, as
# "mirror_ok mirror_nondeterministic mirror_diverged mirror_dropped mirror_error reads_old reads_new".
cutover_counters() {
  local body
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:${CUT_ADMIN[$1]}/metrics") || { echo "? ? ? ? ? ? ?"; return 0; }
  awk '
    function val(key) { return (key in v) ? v[key] : 0 }
    /^cutover_(mirror_writes|statements)_total\{/ { v[$1] = $2 }
    END {
      printf "%d %d %d %d %d %d %d\n",
        val("cutover_mirror_writes_total{result=\"ok\"}"),
        val("cutover_mirror_writes_total{result=\"nondeterministic\"}"),
        val("cutover_mirror_writes_total{result=\"diverged\"}"),
        val("cutover_mirror_writes_total{result=\"dropped\"}"),
        val("cutover_mirror_writes_total{result=\"error\"}"),
        val("cutover_statements_total{kind=\"read\",served_by=\"old\"}"),
        val("cutover_statements_total{kind=\"read\",served_by=\"new\"}")
    }' <<< "$body"
}

# The async target's mirror queue: cutover_mirror_queue_units (writes acknowledged to clients and
# not yet applied on the new store, all sessions) from its /metrics, as an integer, or "?".
queue_units() {
  local body
  body=$(curl -fsS --max-time 2 "http://127.0.0.1:${CUT_ADMIN[$1]}/metrics" 2>/dev/null) || { echo "?"; return 0; }
  awk '$1 == "cutover_mirror_queue_units" { v = $2; found = 1 }
       END { if (found) printf "%d\n", v; else print "?" }' <<< "$body"
}

# start_queue_sampler TARGET FILE: in the background, appends queue_units to FILE every 0.5 s
# (the queue's peak during a run is the largest sample; a shorter peak between samples is missed).
start_queue_sampler() {
  local t="$1" file="$2"
  : >"$file"
  ( trap - EXIT INT TERM
    while :; do queue_units "$t" >>"$file" || true; sleep 0.5; done ) &
  SAMPLER_PID=$!
}
stop_queue_sampler() {
  [[ -n "$SAMPLER_PID" ]] || return 0
  kill -TERM "$SAMPLER_PID" 2>/dev/null || true
  wait "$SAMPLER_PID" 2>/dev/null || true
  SAMPLER_PID=""
}
max_sample() {  # max_sample FILE [MORE]: the largest integer sample, or "?" if none
  { cat "$1"; [[ -z "${2:-}" ]] || echo "$2"; } | awk '/^-?[0-9]+$/ { if (!n++ || $1 > m) m = $1 } END { if (n) print m; else print "?" }'
}

# wait_drain TARGET LABEL: polls the async target's cutover_mirror_queue_units every 0.1 s until
# it is 0. Sets DRAIN_START_UNITS (the first reading, taken right after pgbench finished) and
# DRAIN_S (seconds from the end of pgbench, RUN_END, to the reading of 0). After DRAIN_TIMEOUT
# seconds: a message, DRAIN_FAILED=1, false.
DRAIN_FAILED=0
wait_drain() {
  local t="$1" label="$2" units start="${RUN_END:-$EPOCHREALTIME}" deadline=$((SECONDS + DRAIN_TIMEOUT))
  DRAIN_START_UNITS="" DRAIN_S=""
  while :; do
    units=$(queue_units "$t")
    [[ -n "$DRAIN_START_UNITS" ]] || DRAIN_START_UNITS=$units
    if [[ "$units" == 0 ]]; then
      DRAIN_S=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "run.sh: [$label] the async mirror queue did not drain: cutover_mirror_queue_units is still $units" \
           "after ${DRAIN_TIMEOUT} s (it was $DRAIN_START_UNITS when pgbench finished); the new store is not" \
           "catching up. Stopping the benchmark (exit 4)." >&2
      DRAIN_FAILED=1
      return 1
    fi
    sleep 0.1
  done
}

# The async target's queue_full records in its divergence journal so far (a write its session's
# full queue could not take: never applied on the new store).
queue_full_records() {
  local journal="$WORK_DIR/journal-$1/divergences.jsonl"
  if [[ -s "$journal" ]]; then grep -c '"kind":"queue_full"' "$journal" || true; else echo 0; fi
}

# A shadow target's counters, from its /metrics, as "match mismatch transient noisy error dropped
# other reads old_s old_n new_s new_n": cutover_shadow_comparisons_total by result (other = any
# result this script does not know), the reads served (cutover_statements_total{kind="read"}),
# and cutover_shadow_duration_seconds' sum and count per store.
SHADOW_RESULTS=(match mismatch transient noisy error dropped other)
shadow_counters() {
  local body
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:${CUT_ADMIN[$1]}/metrics") || { echo "? ? ? ? ? ? ? ? ? ? ? ?"; return 0; }
  awk '
    function val(key) { return (key in v) ? v[key] : 0 }
    /^cutover_(statements_total|shadow_duration_seconds_(sum|count))\{/ { v[$1] = $2 }
    /^cutover_shadow_comparisons_total\{/ {
      if (match($1, /result="[^"]*"/)) r[substr($1, RSTART + 8, RLENGTH - 9)] += $2
    }
    END {
      split("match mismatch transient noisy error dropped", known, " ")
      for (i = 1; i <= 6; i++) { printf "%d ", r[known[i]]; delete r[known[i]] }
      other = 0; for (k in r) other += r[k]
      printf "%d %d %.9f %d %.9f %d\n", other,
        val("cutover_statements_total{kind=\"read\",served_by=\"old\"}") + val("cutover_statements_total{kind=\"read\",served_by=\"new\"}"),
        val("cutover_shadow_duration_seconds_sum{store=\"old\"}"), val("cutover_shadow_duration_seconds_count{store=\"old\"}"),
        val("cutover_shadow_duration_seconds_sum{store=\"new\"}"), val("cutover_shadow_duration_seconds_count{store=\"new\"}")
    }' <<< "$body"
}

counter_delta() {  # counter_delta "BEFORE..." "AFTER...": field-wise AFTER - BEFORE ("?" if unknown)
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= n; i++) {
      ok = x[i] ~ /^[0-9.]+$/ && y[i] ~ /^[0-9.]+$/
      printf "%s%s", (i > 1 ? " " : ""), ok ? y[i] - x[i] : "?"
    }
    printf "\n" }'
}

# run_pgbench TARGET WORKLOAD SECONDS [CLIENTS] ; sets RUN_TPS, RUN_LAT, RUN_N (transactions),
# RUN_FAILED ("" on failure)
run_pgbench() {
  local target="$1" w="$2" secs="$3" clients="${4:-$CLIENTS}"
  local port log="$WORK_DIR/pgbench-last.log" args threads
  threads=$(( clients < 2 ? clients : 2 ))
  read -r -a args <<< "${WORKLOAD_ARGS[$w]}"
  port=$(target_port "$target")
  RUN_TPS=""; RUN_LAT=""; RUN_N=""; RUN_FAILED=""; RUN_END=""
  reset_tables "${WORKLOAD_WRITES[$w]}" "$target"
  # In the background so that a SIGTERM to this script is handled at once, not after the run.
  # timeout: a target that stops answering must not hang the whole benchmark.
  timeout -k 5 $((secs + 60)) "$PGBENCH_BIN" -n "${args[@]}" -c "$clients" -j "$threads" -T "$secs" \
    -h "$CONNECT_HOST" -p "$port" -U "$DB_USER" "$DB" >"$log" 2>&1 &
  PGBENCH_PID=$!
  local rc=0
  wait "$PGBENCH_PID" || rc=$?
  RUN_END=$EPOCHREALTIME
  PGBENCH_PID=""
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 124 ]]; then echo "run.sh: pgbench against $target timed out" >&2; fi
    echo "run.sh: pgbench against $target failed (exit $rc):" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
  RUN_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log")
  RUN_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$log")
  RUN_N=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
  RUN_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
  [[ -n "$RUN_TPS" && -n "$RUN_LAT" && -n "$RUN_N" ]] || { echo "run.sh: could not parse pgbench output for $target" >&2; return 1; }
}

# check_stores_equal LABEL: after a dual-target write run the two stores must hold the same rows;
# false (and STORES_DIFFERED=1) when they do not.
STORES_DIFFERED=0
check_stores_equal() {
  local old new
  old=$(store_digest "$PG_PORT") new=$(store_digest "$PG_NEW_PORT")
  [[ "$old" == "$new" ]] && return 0
  echo "run.sh: [$1] the stores differ after the run: old $old, new $new" >&2
  STORES_DIFFERED=1
  return 1
}

# Results are keyed "W,CLIENTS,TARGET"; COUNTS (dual-write checks) and SHADOW_COUNTS are counter
# deltas over the measured run(s). A key measured in several parts (the shadow cost at 1 client)
# accumulates: TPS = transactions / time and LAT = the transaction-weighted mean over the parts.
# ASYNC_* (the async target): the queue's peak sample during the run, its depth when pgbench
# finished, the drain time, and the queue_full journal records written during the run.
declare -A TPS LAT COUNTS SHADOW_COUNTS STORE_CHECK ACC_N ACC_T ACC_LN
declare -A ASYNC_PEAK ASYNC_END ASYNC_DRAIN ASYNC_QF
ANY_FAILED=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

counter_sum() {  # counter_sum "A..." "B...": field-wise A + B; A may be empty
  [[ -n "$1" ]] || { echo "$2"; return 0; }
  awk -v a="$1" -v b="$2" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ");
    for (i = 1; i <= n; i++) {
      ok = x[i] ~ /^[0-9.]+$/ && y[i] ~ /^[0-9.]+$/
      printf "%s%s", (i > 1 ? " " : ""), ok ? x[i] + y[i] : "?"
    }
    printf "\n" }'
}

# measure TARGET W CLIENTS [SECONDS]: one measured run (default DURATION seconds), added to the
# key's results.
measure() {
  local t="$1" w="$2" c="$3" secs="${4:-$DURATION}" name="${WORKLOAD_NAMES[$2]}" key="$2,$3,$1" before="" sbefore=""
  local qf_before="" pgbench_ok=1
  echo "run.sh: [$name] ${secs}s against $t (-c $c) ..." >&2
  if is_dual "$t"; then before=$(cutover_counters "$t"); fi
  if is_shadow "$t"; then sbefore=$(shadow_counters "$t"); fi
  if is_async "$t"; then
    qf_before=$(queue_full_records "$t")
    start_queue_sampler "$t" "$WORK_DIR/queue-samples"
  fi
  run_pgbench "$t" "$w" "$secs" "$c" || pgbench_ok=0
  if is_async "$t"; then
    # The new store applies the run's writes after pgbench has its answers: the counters and the
    # stores are compared only once the queue is empty.
    stop_queue_sampler
    if wait_drain "$t" "$name, $t"; then
      ASYNC_DRAIN[$key]=$DRAIN_S
    else
      ASYNC_DRAIN[$key]="TIMEOUT"
    fi
    ASYNC_END[$key]=$DRAIN_START_UNITS
    ASYNC_PEAK[$key]=$(max_sample "$WORK_DIR/queue-samples" "$DRAIN_START_UNITS")
    ASYNC_QF[$key]=$(( $(queue_full_records "$t") - qf_before ))
  fi
  if [[ $pgbench_ok -eq 1 ]]; then
    if [[ "${TPS[$key]:-}" != FAILED ]]; then
      local acc_n acc_t acc_ln
      read -r acc_n acc_t acc_ln < <(awk -v n0="${ACC_N[$key]:-0}" -v t0="${ACC_T[$key]:-0}" \
        -v l0="${ACC_LN[$key]:-0}" -v n="$RUN_N" -v tps="$RUN_TPS" -v lat="$RUN_LAT" 'BEGIN {
          printf "%d %.9f %.9f\n", n0 + n, t0 + (tps > 0 ? n / tps : 0), l0 + lat * n }')
      ACC_N[$key]=$acc_n ACC_T[$key]=$acc_t ACC_LN[$key]=$acc_ln
      TPS[$key]=$(awk -v n="${ACC_N[$key]}" -v t="${ACC_T[$key]}" 'BEGIN { printf "%.1f", (t > 0 ? n / t : 0) }')
      LAT[$key]=$(awk -v n="${ACC_N[$key]}" -v l="${ACC_LN[$key]}" 'BEGIN { printf "%.3f", (n > 0 ? l / n : 0) }')
    fi
    if [[ -n "$RUN_FAILED" && "$RUN_FAILED" != 0 ]]; then
      echo "run.sh: [$name] $t: $RUN_FAILED failed transactions" >&2
    fi
  else
    TPS[$key]="FAILED"; LAT[$key]="-"; ANY_FAILED=1
  fi
  # Counter deltas over the measured run (reset_tables went direct: it is not counted).
  if is_dual "$t"; then
    COUNTS[$key]=$(counter_sum "${COUNTS[$key]:-}" "$(counter_delta "$before" "$(cutover_counters "$t")")")
    if [[ $DRAIN_FAILED -eq 1 ]]; then
      STORE_CHECK[$key]="undrained"
    elif [[ ${WORKLOAD_WRITES[$w]} -eq 1 ]]; then
      STORE_CHECK[$key]="equal"
      check_stores_equal "$name, $t" || STORE_CHECK[$key]="DIFFER"
    fi
  fi
  if is_shadow "$t"; then
    SHADOW_COUNTS[$key]=$(counter_sum "${SHADOW_COUNTS[$key]:-}" "$(counter_delta "$sbefore" "$(shadow_counters "$t")")")
  fi
}

if [[ $CPU_MODE -eq 1 ]]; then
  # shellcheck source=bench/cpu_cost.sh
  source "$BENCH_DIR/cpu_cost.sh"
  cpu_rc=0
  cpu_cost_main || cpu_rc=$?
  exit "$cpu_rc"
fi

for w in "${!WORKLOAD_NAMES[@]}"; do
  name="${WORKLOAD_NAMES[$w]}"
  for t in "${TARGET_LIST[@]}"; do
    runs_workload "$t" "$w" || continue
    echo "run.sh: [$name] warm-up ${WARMUP}s against $t ..." >&2
    run_pgbench "$t" "$w" "$WARMUP" || true
    if is_async "$t"; then
      wait_drain "$t" "$name warm-up, $t" || break
      echo "run.sh: [$name warm-up] $t: mirror queue drained in ${DRAIN_S} s (${DRAIN_START_UNITS} queued when pgbench finished)" >&2
    fi
    if is_dual "$t" && [[ ${WORKLOAD_WRITES[$w]} -eq 1 ]]; then check_stores_equal "$name warm-up, $t" || true; fi
  done
  [[ $DRAIN_FAILED -eq 0 ]] || break
  for t in "${TARGET_LIST[@]}"; do
    runs_workload "$t" "$w" || continue
    measure "$t" "$w" "$CLIENTS"
    [[ $DRAIN_FAILED -eq 0 ]] || break
  done
  [[ $DRAIN_FAILED -eq 0 ]] || break
  # The shadow cost at 1 client (its latency ratio is the goal), right after the --clients runs
  # of the same workload and before any write workload changes the old store's balances. Each
  # target runs twice for half the duration, in the order shadow0 shadow100 shadow100 shadow0,
  # so that a load trend on the machine weighs on both alike.
  if [[ $ANY_SHADOW -eq 1 && $CLIENTS -ne 1 && ${WORKLOAD_WRITES[$w]} -eq 0 ]]; then
    shadow_order=()
    for t in "${TARGET_LIST[@]}"; do
      if is_shadow "$t"; then shadow_order+=("$t"); fi
    done
    for t in "${shadow_order[@]}"; do
      echo "run.sh: [$name] warm-up ${WARMUP}s against $t (-c 1) ..." >&2
      run_pgbench "$t" "$w" "$WARMUP" 1 || true
    done
    half=$(( (DURATION + 1) / 2 ))
    for ((i = 0; i < ${#shadow_order[@]}; i++)); do measure "${shadow_order[$i]}" "$w" 1 "$half"; done
    for ((i = ${#shadow_order[@]} - 1; i >= 0; i--)); do measure "${shadow_order[$i]}" "$w" 1 "$half"; done
  fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# The divergence journals, read once the dual proxies stopped (SIGTERM lets the journal writer
# fsync what it still holds). Sync mirroring journals a divergence before the client hears
# back; a missed mirror write (secondary down or slow) is journaled without waiting.
# "nondeterministic" records, if a build writes any, are expected differences (now(),
# random(), serials), not divergences.
# A shadow target's comparison counters over its whole life (warm-ups included) are read before
# it stops; any "mismatch" there, or a "mismatch" record in its mismatches.jsonl, is a failure:
# both stores hold the same rows during every read run, so a mismatch is the proxy's.
declare -A DIVERGED DIVERGENCE_KINDS NONDETERMINISTIC SHADOW_TOTAL MISMATCH_RECORDS
ANY_DIVERGED=$STORES_DIFFERED
ANY_MISMATCH=0
for t in "${TARGET_LIST[@]}"; do
  is_dual "$t" || continue
  if is_shadow "$t"; then SHADOW_TOTAL[$t]=$(shadow_counters "$t"); fi
  stop_pid "${CUT_PID[$t]}" "cutover ($t)"
  CUT_PID[$t]=""
  journal="$WORK_DIR/journal-$t/divergences.jsonl"
  kinds=""
  if [[ -s "$journal" ]]; then
    # One record per line; "kind":"..." can only be the record's own key (quotes inside string
    # values are escaped).
    kinds=$(sed -n 's/.*"kind":"\([^"]*\)".*/\1/p' "$journal" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
    total=$(grep -c . "$journal" || true)
    nondet=$(grep -c '"kind":"nondeterministic"' "$journal" || true)
  else
    total=0 nondet=0
  fi
  DIVERGED[$t]=$((total - nondet))
  NONDETERMINISTIC[$t]=$nondet
  DIVERGENCE_KINDS[$t]=${kinds:-none}
  if [[ ${DIVERGED[$t]} -gt 0 ]]; then
    ANY_DIVERGED=1
    echo "run.sh: cutover ($t) journaled ${DIVERGED[$t]} divergences ($kinds); first ones:" >&2
    # awk reads the whole file: `grep | head` would die of SIGPIPE (pipefail, set -e) once the
    # journal outgrows a pipe buffer, and the report would never be printed.
    awk '!/"kind":"nondeterministic"/ && n++ < 3' "$journal" >&2
  fi
  if is_shadow "$t"; then
    journal="$WORK_DIR/journal-$t/mismatches.jsonl"
    MISMATCH_RECORDS[$t]=0
    if [[ -s "$journal" ]]; then MISMATCH_RECORDS[$t]=$(grep -c '"result":"mismatch"' "$journal" || true); fi
    read -r _ counted _ <<< "${SHADOW_TOTAL[$t]}"
    if [[ ! "$counted" =~ ^[0-9]+$ ]]; then
      echo "run.sh: cutover ($t): could not read its shadow counters from /metrics" >&2
      ANY_MISMATCH=1
    elif [[ $counted -gt 0 || ${MISMATCH_RECORDS[$t]} -gt 0 ]]; then
      ANY_MISMATCH=1
      echo "run.sh: cutover ($t) counted $counted shadow mismatches on identical data (${MISMATCH_RECORDS[$t]} in mismatches.jsonl); first ones:" >&2
      grep '"result":"mismatch"' "$journal" 2>/dev/null | head -n 3 >&2 || true
    fi
  fi
done

# --- Report -----------------------------------------------------------------------------------

ratio() {  # ratio A B -> A/B with 3 decimals, or "n/a"
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'
  else
    echo "n/a"
  fi
}

version_of() { "$@" 2>/dev/null | head -n 1 || true; }

target_label() {
  case "$1" in
    dual) echo "dual-sync" ;;
    async) echo "async" ;;
    ramp) echo "ramp-50" ;;
    *) echo "$1" ;;
  esac
}

# The "shadow cost" section: shadow100 against shadow0 per select-only workload at 1 client
# (average latency ratio, goal <= SHADOW_GOAL) and at --clients (TPS ratio), then what shadow100
# compared in each measured run.
SHADOW_GOAL=1.10
shadow_report() {
  local w c t k lr tr verdict
  echo "shadow cost: shadow100 (shadow_percent 100: every read outside a transaction also runs on the new store"
  echo "and the results are compared) vs shadow0 (same flags, shadow_percent 0); the old store serves all reads."
  printf '%-22s | %7s | %11s | %13s | %10s | %12s | %s\n' "workload" "clients" "shadow0 TPS" "shadow100 TPS" "shadow0 ms" "shadow100 ms" "shadow100 / shadow0"
  printf '%s\n' "-----------------------+---------+-------------+---------------+------------+--------------+------------------------------------"
  for w in "${!WORKLOAD_NAMES[@]}"; do
    [[ ${WORKLOAD_WRITES[$w]} -eq 0 ]] || continue
    for c in "${SHADOW_CLIENTS[@]}"; do
      k="$w,$c"
      if [[ $c -eq 1 ]]; then
        lr=$(ratio "${LAT["$k,shadow100"]:-}" "${LAT["$k,shadow0"]:-}")
        if [[ "$lr" == n/a ]]; then verdict="n/a"
        elif awk -v r="$lr" -v g="$SHADOW_GOAL" 'BEGIN { exit !(r <= g) }'; then verdict="PASS"
        else verdict="MISS"; fi
        tr="avg latency $lr  $verdict (goal <= $SHADOW_GOAL)"
      else
        tr="TPS $(ratio "${TPS["$k,shadow100"]:-}" "${TPS["$k,shadow0"]:-}")"
      fi
      printf '%-22s | %7s | %11s | %13s | %10s | %12s | %s\n' "${WORKLOAD_NAMES[$w]}" "$c" \
        "${TPS["$k,shadow0"]:--}" "${TPS["$k,shadow100"]:--}" "${LAT["$k,shadow0"]:--}" "${LAT["$k,shadow100"]:--}" "$tr"
    done
  done
  has_target shadow100 || return 0
  echo
  echo "shadow comparisons of shadow100 per measured run (deltas of cutover_shadow_comparisons_total{result};"
  echo "compared = match+mismatch+transient+noisy as a share of the reads served; avg ms = cutover_shadow_duration_seconds):"
  printf '%-22s | %7s | %8s | %8s | %8s | %9s | %6s | %6s | %8s | %5s | %8s | %s\n' "workload" "clients" "reads" "match" "mismatch" "transient" "noisy" "error" "dropped" "other" "compared" "avg ms old / new"
  printf '%s\n' "-----------------------+---------+----------+----------+----------+-----------+--------+--------+----------+-------+----------+-----------------"
  for w in "${!WORKLOAD_NAMES[@]}"; do
    [[ ${WORKLOAD_WRITES[$w]} -eq 0 ]] || continue
    for c in "${SHADOW_CLIENTS[@]}"; do
      local ma mi tr no er dr ot rd os on ns nn cmp ms
      read -r ma mi tr no er dr ot rd os on ns nn <<< "${SHADOW_COUNTS["$w,$c,shadow100"]:-? ? ? ? ? ? ? ? ? ? ? ?}"
      cmp=$(awk -v a="$ma" -v b="$mi" -v c="$tr" -v d="$no" -v r="$rd" 'BEGIN {
        if (r ~ /^[0-9]+$/ && r > 0) printf "%.1f %%", 100 * (a + b + c + d) / r; else printf "-" }')
      ms=$(awk -v os="$os" -v on="$on" -v ns="$ns" -v nn="$nn" 'BEGIN {
        printf "%s / %s", (on > 0 ? sprintf("%.3f", 1000 * os / on) : "-"), (nn > 0 ? sprintf("%.3f", 1000 * ns / nn) : "-") }')
      printf '%-22s | %7s | %8s | %8s | %8s | %9s | %6s | %6s | %8s | %5s | %8s | %s\n' "${WORKLOAD_NAMES[$w]}" "$c" \
        "$rd" "$ma" "$mi" "$tr" "$no" "$er" "$dr" "$ot" "$cmp" "$ms"
    done
  done
  echo
  for t in "${TARGET_LIST[@]}"; do
    is_shadow "$t" || continue
    local i line="" v
    read -r -a v <<< "${SHADOW_TOTAL[$t]:-? ? ? ? ? ? ? ?}"
    for i in "${!SHADOW_RESULTS[@]}"; do line+="${line:+, }${v[$i]} ${SHADOW_RESULTS[$i]}"; done
    printf 'shadow comparisons (%s, every run incl. warm-ups): %s reads; %s; mismatches.jsonl: %s mismatch records\n' \
      "$t" "${v[7]}" "$line" "${MISMATCH_RECORDS[$t]:-?}"
  done
  if [[ $ANY_MISMATCH -eq 1 ]]; then
    echo "a shadow read of identical data was counted as a mismatch (see stderr): exit 3"
  fi
}

# The async target per measured run: TPS and latency (as answered by the old store), the mirror
# queue (cutover_mirror_queue_units: peak of the 0.5 s samples during the run, depth when pgbench
# finished), how long after pgbench finished the queue reached 0, and the writes the new store
# never got: cutover_mirror_writes_total{result="dropped"} and queue_full journal records.
async_report() {
  local w k ok nd dv dr er ro rn
  echo "async mirror (measured runs of async; queue = cutover_mirror_queue_units, writes acknowledged and not yet"
  echo "applied on the new store, sampled every 0.5 s during the run; drain = seconds from pgbench's end to queue 0;"
  echo "dropped = cutover_mirror_writes_total{result=\"dropped\"} delta; queue_full = records in divergences.jsonl):"
  echo "TPS incl. drain = transactions / (run time + drain): the rate at which both stores had them."
  printf '%-22s | %10s | %9s | %10s | %10s | %8s | %15s | %7s | %10s | %9s\n' "workload" "TPS" "avg ms" "queue peak" "at run end" "drain s" "TPS incl. drain" "dropped" "queue_full" "stores"
  printf '%s\n' "-----------------------+------------+-----------+------------+------------+----------+-----------------+---------+------------+----------"
  for w in "${!WORKLOAD_NAMES[@]}"; do
    k="$w,$CLIENTS,async"
    [[ -n "${TPS[$k]:-}${ASYNC_DRAIN[$k]:-}" ]] || continue
    read -r ok nd dv dr er ro rn <<< "${COUNTS[$k]:-? ? ? ? ? ? ?}"
    local with_drain
    with_drain=$(awk -v n="${ACC_N[$k]:-}" -v t="${ACC_T[$k]:-}" -v d="${ASYNC_DRAIN[$k]:-}" 'BEGIN {
      if (n ~ /^[0-9]+$/ && t ~ /^[0-9.]+$/ && d ~ /^[0-9.]+$/ && t + d > 0) printf "%.1f", n / (t + d); else printf "-" }')
    printf '%-22s | %10s | %9s | %10s | %10s | %8s | %15s | %7s | %10s | %9s\n' "${WORKLOAD_NAMES[$w]}" "${TPS[$k]:--}" "${LAT[$k]:--}" \
      "${ASYNC_PEAK[$k]:--}" "${ASYNC_END[$k]:--}" "${ASYNC_DRAIN[$k]:--}" "$with_drain" "$dr" "${ASYNC_QF[$k]:--}" "${STORE_CHECK[$k]:--}"
  done
  if [[ $DRAIN_FAILED -eq 1 ]]; then
    echo "the async mirror queue did not drain within ${DRAIN_TIMEOUT} s (see stderr): the benchmark stopped there, exit 4"
  fi
}

report() {
  local cut_version="" cut_rev=""
  if [[ $ANY_CUTOVER -eq 1 ]]; then
    cut_version=$(version_of "$CUTOVER_BIN" --version)
    [[ -n "$cut_version" ]] || cut_version="(--version gave nothing)"
    cut_version+=" [$CUTOVER_BIN]"
  fi
  cut_rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ -n "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null)" ]]; then cut_rev+=" (working tree modified)"; fi

  echo "cutover benchmark — $START_TS"
  echo
  echo "machine:    $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
  echo "load avg:   before $LOAD_BEFORE, after $LOAD_AFTER"
  echo "postgres:   $(version_of as_pg "$PG_BIN/postgres" --version)"
  echo "pgbench:    $(version_of "$PGBENCH_BIN" --version)"
  if has_target pgbouncer; then
    echo "pgbouncer:  $(version_of "$PGBOUNCER_BIN" --version)"
  fi
  if [[ $ANY_CUTOVER -eq 1 ]]; then
    echo "cutover:    $cut_version"
  fi
  echo "repo:       $cut_rev"
  echo
  echo "settings:   pgbench -i -s $SCALE; each run -c $CLIENTS -j $THREADS -T $DURATION -n after a ${WARMUP}s warm-up per target;"
  echo "            PostgreSQL 15 max_connections=200 shared_buffers=256MB synchronous_commit=off (fsync on);"
  echo "            PgBouncer pool_mode=session default_pool_size=20; cutover workers=$CUT_WORKERS, one process per target:"
  echo "            passthrough = old store only, writes=old; dual-sync = writes=dual mirror=sync;"
  echo "            ramp-50 = writes=dual mirror=sync reads_new_percent=50 (sticky: session);"
  if [[ $ANY_ASYNC -eq 1 ]]; then
    echo "            async = writes=dual mirror=async reads_new_percent=0 shadow_percent=0 (mirror_queue_units 10000,"
    echo "            mirror_queue_bytes 16 MiB per session: the defaults); after each async run the script waits until"
    echo "            cutover_mirror_queue_units is 0 (at most ${DRAIN_TIMEOUT} s) before reading counters and comparing stores;"
  fi
  if [[ $ANY_SHADOW -eq 1 ]]; then
    echo "            shadow0/shadow100 = writes=dual mirror=sync reads_new_percent=0 shadow_percent=0/100,"
    echo "            select-only workloads only, at -c $CLIENTS and (shadow cost) also -c 1 -j 1, the latter as two"
    echo "            halves per target in the order shadow0 shadow100 shadow100 shadow0 (results combined);"
  fi
  if [[ $ANY_DUAL -eq 1 ]]; then
    echo "            dual targets: a second PostgreSQL 15 cluster (same settings, same pgbench -i data) is the new store;"
    echo "            before every write run of every target (and a dual target's read run after one) the balances"
    echo "            are reset to 0 on both stores;"
  fi
  if [[ "$TRANSPORT" == unix ]]; then
    echo "            every connection over a Unix socket in $WORK_DIR (--transport unix), everything on this one machine"
    echo "            (pgbench, proxies and PostgreSQL share the CPUs)."
  else
    echo "            all on 127.0.0.1 TCP, everything on this one machine (pgbench, proxies and PostgreSQL share the CPUs)."
  fi
  echo
  printf '%-22s | %-12s | %12s | %16s\n' "workload" "target" "TPS" "avg latency ms"
  printf '%s\n' "-----------------------+--------------+--------------+-----------------"
  local w t
  for w in "${!WORKLOAD_NAMES[@]}"; do
    for t in "${TARGET_LIST[@]}"; do
      runs_workload "$t" "$w" || continue
      printf '%-22s | %-12s | %12s | %16s\n' "${WORKLOAD_NAMES[$w]}" "$(target_label "$t")" "${TPS["$w,$CLIENTS,$t"]:--}" "${LAT["$w,$CLIENTS,$t"]:--}"
    done
  done
  if [[ $ANY_CUTOVER -eq 1 ]] && { has_target direct || has_target pgbouncer; }; then
    echo
    printf '%-22s | %-12s | %10s | %13s | %15s | %13s\n' "TPS ratio" "target" "vs direct" "vs PgBouncer" "vs passthrough" "vs dual-sync"
    printf '%s\n' "-----------------------+--------------+------------+---------------+-----------------+--------------"
    for w in "${!WORKLOAD_NAMES[@]}"; do
      for t in "${TARGET_LIST[@]}"; do
        if ! is_cutover "$t" || ! runs_workload "$t" "$w"; then continue; fi
        local rd="n/a" rb="n/a" rp="-" rs="-" k="$w,$CLIENTS"
        has_target direct && rd=$(ratio "${TPS["$k,$t"]:-}" "${TPS["$k,direct"]:-}")
        has_target pgbouncer && rb=$(ratio "${TPS["$k,$t"]:-}" "${TPS["$k,pgbouncer"]:-}")
        if is_dual "$t" && has_target passthrough; then rp=$(ratio "${TPS["$k,$t"]:-}" "${TPS["$k,passthrough"]:-}"); fi
        if is_async "$t" && has_target dual; then rs=$(ratio "${TPS["$k,$t"]:-}" "${TPS["$k,dual"]:-}"); fi
        printf '%-22s | %-12s | %10s | %13s | %15s | %13s\n' "${WORKLOAD_NAMES[$w]}" "$(target_label "$t")" "$rd" "$rb" "$rp" "$rs"
      done
    done
  elif has_target direct && has_target pgbouncer; then
    echo
    echo "(cutover not measured: no cutover ratios. PgBouncer/direct TPS for reference:)"
    for w in "${!WORKLOAD_NAMES[@]}"; do
      printf '%-22s | pgbouncer/direct %s\n' "${WORKLOAD_NAMES[$w]}" \
        "$(ratio "${TPS["$w,$CLIENTS,pgbouncer"]:-}" "${TPS["$w,$CLIENTS,direct"]:-}")"
    done
  fi
  if [[ $ANY_DUAL -eq 1 ]]; then
    echo
    echo "dual-write checks (measured runs; counts from cutover's /metrics):"
    printf '%-22s | %-12s | %14s | %27s | %12s | %9s\n' "workload" "target" "mirrored ok" "nondet/diverged/drop/error" "reads on new" "stores"
    printf '%s\n' "-----------------------+--------------+----------------+-----------------------------+--------------+----------"
    for w in "${!WORKLOAD_NAMES[@]}"; do
      for t in "${TARGET_LIST[@]}"; do
        if ! is_dual "$t" || ! runs_workload "$t" "$w"; then continue; fi
        [[ -n "${COUNTS["$w,$CLIENTS,$t"]:-}" ]] || continue   # not run (the benchmark stopped before it)
        local c ok nd dv dr er ro rn share
        read -r ok nd dv dr er ro rn <<< "${COUNTS["$w,$CLIENTS,$t"]:-? ? ? ? ? ? ?}"
        share=$(awk -v o="$ro" -v n="$rn" 'BEGIN { if (o ~ /^[0-9]+$/ && n ~ /^[0-9]+$/ && o + n > 0) printf "%.1f %%", 100 * n / (o + n); else printf "-" }')
        c="$nd/$dv/$dr/$er"
        printf '%-22s | %-12s | %14s | %27s | %12s | %9s\n' "${WORKLOAD_NAMES[$w]}" "$(target_label "$t")" "$ok" "$c" "$share" "${STORE_CHECK["$w,$CLIENTS,$t"]:--}"
      done
    done
    echo
    for t in "${TARGET_LIST[@]}"; do
      is_dual "$t" || continue
      printf 'divergence journal (%s, every run incl. warm-ups): %d divergences' "$(target_label "$t")" "${DIVERGED[$t]}"
      if [[ ${NONDETERMINISTIC[$t]} -gt 0 ]]; then printf ' (+%d nondeterministic, not counted)' "${NONDETERMINISTIC[$t]}"; fi
      printf '; records by kind: %s\n' "${DIVERGENCE_KINDS[$t]}"
    done
    if [[ $STORES_DIFFERED -eq 1 ]]; then
      echo "the stores' contents differed after a dual-write run (see stderr): counted as a divergence"
    fi
  fi
  if [[ $ANY_ASYNC -eq 1 ]]; then
    echo
    async_report
  fi
  if [[ $ANY_SHADOW -eq 1 ]]; then
    echo
    shadow_report
  fi
  echo
  echo "Ratios compare targets within this run only; absolute numbers depend on the machine and its load."
}

REPORT=$(report)
echo "$REPORT"
if [[ $SAVE -eq 1 ]]; then
  out="$BENCH_DIR/results-$(date '+%Y-%m-%d-%H%M%S').txt"
  echo "$REPORT" >"$out"
  echo "run.sh: saved to $out" >&2
fi

if [[ $ANY_FAILED -eq 1 ]]; then exit 1; fi
if [[ $DRAIN_FAILED -eq 1 ]]; then echo "run.sh: the async mirror queue did not drain" >&2; exit 4; fi
if [[ $ANY_DIVERGED -eq 1 || $ANY_MISMATCH -eq 1 ]]; then
  if [[ $ANY_DIVERGED -eq 1 ]]; then echo "run.sh: a dual-write run diverged" >&2; fi
  if [[ $ANY_MISMATCH -eq 1 ]]; then echo "run.sh: a shadow read of identical data mismatched" >&2; fi
  exit 3
fi
exit 0
