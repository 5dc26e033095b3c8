#!/usr/bin/env bash
# Throughput/latency benchmark of cutover against direct PostgreSQL and PgBouncer,
# all measured in the same run on the same machine. See bench/README.md.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/run.sh [--cutover PATH] [--duration S] [--clients N] [--scale N]
                    [--targets LIST] [--save]

  --cutover PATH   cutover binary (default: build/cutover, relative to the repo root)
  --duration S     seconds per measured pgbench run (default: 20)
  --clients N      pgbench clients (default: 8)
  --scale N        pgbench scale factor for -i (default: 10)
  --targets LIST   comma-separated subset of direct,pgbouncer,cutover (default: all three)
  --save           also write the report to bench/results-<date>.txt
EOF
}

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"

CUTOVER_BIN="build/cutover"
DURATION=20
CLIENTS=8
SCALE=10
TARGETS="direct,pgbouncer,cutover"
SAVE=0
WARMUP=3

while [[ $# -gt 0 ]]; do
  case "$1" in
    --cutover)  CUTOVER_BIN="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --clients)  CLIENTS="$2"; shift 2 ;;
    --scale)    SCALE="$2"; shift 2 ;;
    --targets)  TARGETS="$2"; shift 2 ;;
    --save)     SAVE=1; shift ;;
    -h|--help)  usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

for n in "$DURATION" "$CLIENTS" "$SCALE"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: expected a positive integer, got '$n'" >&2; exit 2; }
done

IFS=',' read -r -a TARGET_LIST <<< "$TARGETS"
for t in "${TARGET_LIST[@]}"; do
  case "$t" in direct|pgbouncer|cutover) ;; *)
    echo "run.sh: unknown target '$t' (expected direct, pgbouncer, cutover)" >&2; exit 2 ;;
  esac
done
has_target() { [[ ",$TARGETS," == *",$1,"* ]]; }

PG_BIN=/usr/lib/postgresql/15/bin
PGBOUNCER_BIN=/usr/sbin/pgbouncer
PGBENCH_BIN="$PG_BIN/pgbench"
PSQL_BIN="$PG_BIN/psql"
DB=bench
DB_USER=postgres

if has_target cutover; then
  [[ "$CUTOVER_BIN" = /* ]] || CUTOVER_BIN="$REPO_DIR/$CUTOVER_BIN"
  [[ -x "$CUTOVER_BIN" ]] || { echo "run.sh: cutover binary not found: $CUTOVER_BIN (build it, or pass --targets direct,pgbouncer)" >&2; exit 2; }
fi
for b in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PGBENCH_BIN" "$PSQL_BIN"; do
  [[ -x "$b" ]] || { echo "run.sh: missing $b (postgresql-15)" >&2; exit 2; }
done
if has_target pgbouncer && [[ ! -x "$PGBOUNCER_BIN" ]]; then
  echo "run.sh: missing $PGBOUNCER_BIN (pgbouncer)" >&2; exit 2
fi

# Clients must not pick up connection settings from the caller's environment.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE PGSERVICE PGSSLMODE PGOPTIONS

# --- Processes we start, and their teardown ---------------------------------------------------

WORK_DIR="$(mktemp -d /tmp/cutover-bench.XXXXXX)"
PG_DATA="$WORK_DIR/pgdata"
PG_STARTED=0
PGBOUNCER_PID=""
CUTOVER_PID=""
PGBENCH_PID=""

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
  [[ -n "$CUTOVER_PID" ]] && stop_pid "$CUTOVER_PID" cutover
  [[ -n "$PGBOUNCER_PID" ]] && stop_pid "$PGBOUNCER_PID" pgbouncer
  if [[ $PG_STARTED -eq 1 ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1
  fi
  if [[ $rc -ne 0 ]]; then
    for f in "$WORK_DIR"/postgres.log "$WORK_DIR"/pgbouncer.log "$WORK_DIR"/cutover.log "$WORK_DIR"/pgbench-last.log; do
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

# wait_for_sql PORT NAME PID: until `SELECT 1` succeeds through 127.0.0.1:PORT, at most 30 s.
# Each probe is bounded, so a server that accepts but never answers cannot stall the script.
wait_for_sql() {
  local port="$1" name="$2" pid="$3" deadline=$((SECONDS + 30))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: $name exited at start" >&2; return 1; }
    if PGCONNECT_TIMEOUT=3 timeout 5 "$PSQL_BIN" -h 127.0.0.1 -p "$port" -U "$DB_USER" -d "$DB" \
         -XAtqc 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.2
  done
  echo "run.sh: $name on port $port did not answer SELECT 1 within 30 s" >&2
  return 1
}

# --- PostgreSQL -------------------------------------------------------------------------------

PG_PORT=$(free_port)
as_pg "$PG_BIN/initdb" -N -A trust -U "$DB_USER" -D "$PG_DATA" >"$WORK_DIR/initdb.log" 2>&1 \
  || { cat "$WORK_DIR/initdb.log" >&2; exit 1; }
as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# cutover bench
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK_DIR'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = off
EOF
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK_DIR/postgres.log" -w -t 60 start >/dev/null
PG_STARTED=1
"$PSQL_BIN" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d postgres -XAtqc "CREATE DATABASE $DB" >/dev/null

# --- PgBouncer --------------------------------------------------------------------------------

PGB_PORT=""
if has_target pgbouncer; then
  PGB_PORT=$(free_port)
  as_pg tee "$WORK_DIR/userlist.txt" >/dev/null <<EOF
"$DB_USER" ""
EOF
  as_pg tee "$WORK_DIR/pgbouncer.ini" >/dev/null <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
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

# --- cutover ----------------------------------------------------------------------------------

CUT_PORT=""
if has_target cutover; then
  CUT_PORT=$(free_port)
  cat >"$WORK_DIR/cutover.yaml" <<EOF
listen: 127.0.0.1:$CUT_PORT
workers: 2
max_client_connections: 1000
stores:
  old: { host: 127.0.0.1, port: $PG_PORT, sslmode: disable }
auth: { method: trust }
flags: { state_file: $WORK_DIR/cutover-flags.json, writes: old }
log_level: warn
EOF
  "$CUTOVER_BIN" proxy --config "$WORK_DIR/cutover.yaml" >"$WORK_DIR/cutover.log" 2>&1 &
  CUTOVER_PID=$!
  # Ready = answers SELECT 1. Its "listening on" line is logged at info level, which
  # log_level: warn hides, so the log cannot be the readiness signal here.
  wait_for_sql "$CUT_PORT" cutover "$CUTOVER_PID"
fi

target_port() {
  case "$1" in
    direct) echo "$PG_PORT" ;;
    pgbouncer) echo "$PGB_PORT" ;;
    cutover) echo "$CUT_PORT" ;;
  esac
}

# --- Workloads --------------------------------------------------------------------------------

THREADS=$(( CLIENTS < 2 ? CLIENTS : 2 ))

echo "run.sh: pgbench -i -s $SCALE (direct) ..." >&2
"$PGBENCH_BIN" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" "$DB" >"$WORK_DIR/pgbench-init.log" 2>&1 \
  || { cat "$WORK_DIR/pgbench-init.log" >&2; exit 1; }

WORKLOAD_NAMES=("select-only simple" "select-only prepared" "tpcb-like simple")
WORKLOAD_ARGS=("-S -M simple" "-S -M prepared" "-M simple")

# The maintenance pgbench would do before each run (vacuum, truncate history) is done here,
# directly, so it is identical for every target and never goes through a proxy (-n below).
reset_tables() {
  "$PSQL_BIN" -h 127.0.0.1 -p "$PG_PORT" -U "$DB_USER" -d "$DB" -Xq \
    -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' -c 'TRUNCATE pgbench_history' >/dev/null
}

# run_pgbench TARGET SECONDS ARGS... ; sets RUN_TPS, RUN_LAT, RUN_FAILED ("" on failure)
run_pgbench() {
  local target="$1" secs="$2"; shift 2
  local port log="$WORK_DIR/pgbench-last.log"
  port=$(target_port "$target")
  RUN_TPS=""; RUN_LAT=""; RUN_FAILED=""
  reset_tables
  # In the background so that a SIGTERM to this script is handled at once, not after the run.
  # timeout: a target that stops answering must not hang the whole benchmark.
  timeout -k 5 $((secs + 60)) "$PGBENCH_BIN" -n "$@" -c "$CLIENTS" -j "$THREADS" -T "$secs" \
    -h 127.0.0.1 -p "$port" -U "$DB_USER" "$DB" >"$log" 2>&1 &
  PGBENCH_PID=$!
  local rc=0
  wait "$PGBENCH_PID" || rc=$?
  PGBENCH_PID=""
  if [[ $rc -ne 0 ]]; then
    if [[ $rc -eq 124 ]]; then echo "run.sh: pgbench against $target timed out" >&2; fi
    echo "run.sh: pgbench against $target failed (exit $rc):" >&2
    tail -n 5 "$log" >&2
    return 1
  fi
  RUN_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log")
  RUN_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$log")
  RUN_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$log")
  [[ -n "$RUN_TPS" && -n "$RUN_LAT" ]] || { echo "run.sh: could not parse pgbench output for $target" >&2; return 1; }
}

declare -A TPS LAT
ANY_FAILED=0
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_TS=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

for w in "${!WORKLOAD_NAMES[@]}"; do
  name="${WORKLOAD_NAMES[$w]}"
  read -r -a args <<< "${WORKLOAD_ARGS[$w]}"
  for t in "${TARGET_LIST[@]}"; do
    echo "run.sh: [$name] warm-up ${WARMUP}s against $t ..." >&2
    run_pgbench "$t" "$WARMUP" "${args[@]}" || true
  done
  for t in "${TARGET_LIST[@]}"; do
    echo "run.sh: [$name] ${DURATION}s against $t ..." >&2
    if run_pgbench "$t" "$DURATION" "${args[@]}"; then
      TPS["$w,$t"]=$(printf '%.1f' "$RUN_TPS")
      LAT["$w,$t"]=$(printf '%.3f' "$RUN_LAT")
      if [[ -n "$RUN_FAILED" && "$RUN_FAILED" != 0 ]]; then
        echo "run.sh: [$name] $t: $RUN_FAILED failed transactions" >&2
      fi
    else
      TPS["$w,$t"]="FAILED"; LAT["$w,$t"]="-"; ANY_FAILED=1
    fi
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- Report -----------------------------------------------------------------------------------

ratio() {  # ratio A B -> A/B with 3 decimals, or "n/a"
  if [[ "$1" =~ ^[0-9.]+$ && "$2" =~ ^[0-9.]+$ ]]; then
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'
  else
    echo "n/a"
  fi
}

version_of() { "$@" 2>/dev/null | head -n 1 || true; }

report() {
  local cut_version="" cut_rev=""
  if has_target cutover; then
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
  if has_target cutover; then
    echo "cutover:    $cut_version"
  fi
  echo "repo:       $cut_rev"
  echo
  echo "settings:   pgbench -i -s $SCALE; each run -c $CLIENTS -j $THREADS -T $DURATION -n after a ${WARMUP}s warm-up per target;"
  echo "            PostgreSQL 15 max_connections=200 shared_buffers=256MB synchronous_commit=off (fsync on);"
  echo "            PgBouncer pool_mode=session default_pool_size=20; cutover workers=2 writes=old;"
  echo "            all on 127.0.0.1 TCP, everything on this one machine (pgbench, proxies and PostgreSQL share the CPUs)."
  echo
  printf '%-22s | %-10s | %12s | %16s\n' "workload" "target" "TPS" "avg latency ms"
  printf '%s\n' "-----------------------+------------+--------------+-----------------"
  local w t
  for w in "${!WORKLOAD_NAMES[@]}"; do
    for t in "${TARGET_LIST[@]}"; do
      printf '%-22s | %-10s | %12s | %16s\n' "${WORKLOAD_NAMES[$w]}" "$t" "${TPS["$w,$t"]}" "${LAT["$w,$t"]}"
    done
  done
  if has_target cutover && { has_target direct || has_target pgbouncer; }; then
    echo
    printf '%-22s | %16s | %19s\n' "TPS ratio" "cutover/direct" "cutover/PgBouncer"
    printf '%s\n' "-----------------------+------------------+--------------------"
    for w in "${!WORKLOAD_NAMES[@]}"; do
      local rd="n/a" rb="n/a"
      has_target direct && rd=$(ratio "${TPS["$w,cutover"]}" "${TPS["$w,direct"]}")
      has_target pgbouncer && rb=$(ratio "${TPS["$w,cutover"]}" "${TPS["$w,pgbouncer"]}")
      printf '%-22s | %16s | %19s\n' "${WORKLOAD_NAMES[$w]}" "$rd" "$rb"
    done
  elif has_target direct && has_target pgbouncer; then
    echo
    echo "(cutover not measured: no cutover ratios. PgBouncer/direct TPS for reference:)"
    for w in "${!WORKLOAD_NAMES[@]}"; do
      printf '%-22s | pgbouncer/direct %s\n' "${WORKLOAD_NAMES[$w]}" \
        "$(ratio "${TPS["$w,pgbouncer"]}" "${TPS["$w,direct"]}")"
    done
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

exit "$ANY_FAILED"
