# shellcheck shell=bash
# `bench/run.sh --cpu`: what a proxy costs in CPU per transaction, and in latency at 1 client.
# Sourced by run.sh once its setup is done (clusters, pgbench -i, PgBouncer and one cutover
# process per target started; run_pgbench, reset_tables, check_stores_equal defined): TPS ratios
# on two shared cores are bound by noise, CPU seconds per transaction at a fixed rate much less.
#
# Per rated workload (pgbench -R: the same offered load for every target), each target in turn:
# the proxy process's utime+stime (/proc/PID/stat, all its threads) before and after the run,
# divided by the transactions pgbench completed. direct has no proxy ("-"). Then each workload
# unthrottled at 1 client: the average latency, and what each proxy adds to direct's.

CLK_TCK=$(getconf CLK_TCK)

proxy_pid() {  # proxy_pid TARGET: the pid whose CPU is the proxy's, "" for direct
  case "$1" in
    direct) echo "" ;;
    pgbouncer) echo "$PGBOUNCER_PID" ;;
    *) echo "${CUT_PID[$1]}" ;;
  esac
}

cpu_ticks() {  # cpu_ticks PID: utime + stime of the whole process in clock ticks
  # Fields after "pid (comm) ": state is $1, so utime (field 14) is $12 and stime (15) is $13.
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Two rated workloads appended to run.sh's list, so run_pgbench and reset_tables treat them as
# their own (WORKLOAD_WRITES decides the balance reset before a write run).
W_SELECT_RATED=${#WORKLOAD_NAMES[@]}
WORKLOAD_NAMES+=("select-only prepared"); WORKLOAD_ARGS+=("-S -M prepared -R $SELECT_RATE"); WORKLOAD_WRITES+=(0)
W_TPCB_RATED=${#WORKLOAD_NAMES[@]}
WORKLOAD_NAMES+=("tpcb-like simple"); WORKLOAD_ARGS+=("-M simple -R $TPCB_RATE"); WORKLOAD_WRITES+=(1)
W_INSERT_RATED=${#WORKLOAD_NAMES[@]}
WORKLOAD_NAMES+=("insert defaults simple"); WORKLOAD_ARGS+=("-M simple -f $INSERT_SCRIPT -R $TPCB_RATE"); WORKLOAD_WRITES+=(1)
W_SELECT_1=1   # run.sh's "-S -M prepared", unthrottled
W_TPCB_1=2     # run.sh's "-M simple", unthrottled
W_INSERT_1=3   # run.sh's insert workload, unthrottled
rated() { [[ $1 -eq $W_SELECT_RATED ]] && echo "$SELECT_RATE" || echo "$TPCB_RATE"; }

declare -A CPU_N CPU_TPS CPU_LAT CPU_LAG CPU_US CPU_STORES

# cpu_measure TARGET W CLIENTS RATE_LABEL: one measured run; results keyed "W,CLIENTS,TARGET".
cpu_measure() {
  local t="$1" w="$2" c="$3" key="$2,$3,$1" pid before after
  echo "run.sh: [cpu ${WORKLOAD_NAMES[$w]} ${4}] ${DURATION}s against $t (-c $c) ..." >&2
  pid=$(proxy_pid "$t")
  [[ -n "$pid" ]] && before=$(cpu_ticks "$pid")
  if ! run_pgbench "$t" "$w" "$DURATION" "$c"; then
    CPU_N[$key]=FAILED; ANY_FAILED=1; return 0
  fi
  # async: the CPU of applying the run's writes on new counts too (measured once the queue is empty).
  if is_async "$t" && ! wait_drain "$t" "cpu ${WORKLOAD_NAMES[$w]}, $t"; then CPU_STORES[$key]=undrained; fi
  CPU_N[$key]=$RUN_N CPU_LAT[$key]=$RUN_LAT
  CPU_TPS[$key]=$(awk -v v="$RUN_TPS" 'BEGIN { printf "%.1f", v }')
  CPU_LAG[$key]=$(sed -n 's/^rate limit schedule lag: avg \([0-9.]*\) .*/\1/p' "$WORK_DIR/pgbench-last.log")
  if [[ -n "$pid" ]]; then
    after=$(cpu_ticks "$pid")
    CPU_US[$key]=$(awk -v d=$((after - before)) -v hz="$CLK_TCK" -v n="$RUN_N" \
      'BEGIN { printf "%.1f", (n > 0 ? d / hz * 1e6 / n : 0) }')
  fi
  if is_dual "$t" && [[ ${WORKLOAD_WRITES[$w]} -eq 1 ]]; then
    CPU_STORES[$key]=equal
    check_stores_equal "cpu ${WORKLOAD_NAMES[$w]}, $t" || CPU_STORES[$key]=DIFFER
  fi
}

cpu_cost_main() {
  local w t rate
  for w in "$W_SELECT_RATED" "$W_TPCB_RATED" "$W_INSERT_RATED"; do
    rate=$(rated "$w")
    for t in "${TARGET_LIST[@]}"; do
      echo "run.sh: [cpu ${WORKLOAD_NAMES[$w]} -R $rate] warm-up ${WARMUP}s against $t ..." >&2
      run_pgbench "$t" "$w" "$WARMUP" || true
    done
    for t in "${TARGET_LIST[@]}"; do cpu_measure "$t" "$w" "$CLIENTS" "-R $rate"; done
  done
  for w in "$W_SELECT_1" "$W_TPCB_1" "$W_INSERT_1"; do
    for t in "${TARGET_LIST[@]}"; do
      run_pgbench "$t" "$w" "$WARMUP" 1 || true
      cpu_measure "$t" "$w" 1 "unthrottled"
    done
  done
  LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
  cpu_report | if [[ $SAVE -eq 1 ]]; then tee "$BENCH_DIR/results-cpu-$(date -u +%Y%m%d-%H%M%S).txt"; else cat; fi
  if [[ $ANY_FAILED -eq 1 ]]; then return 1; fi
  if [[ $STORES_DIFFERED -eq 1 ]]; then return 3; fi
  return 0
}

cpu_label() { case "$1" in dual) echo "dual-sync" ;; async) echo "dual-async" ;; *) echo "$1" ;; esac; }

cpu_report() {
  local w t k rate c d
  local rev
  rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [[ -z "$(git -C "$REPO_DIR" status --porcelain 2>/dev/null)" ]] || rev+=" (working tree modified)"
  echo "cutover CPU cost per transaction — $START_TS"
  echo
  echo "machine:    $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
  echo "load avg:   before $LOAD_BEFORE, after $LOAD_AFTER"
  echo "postgres:   $("$PG_BIN/postgres" --version 2>/dev/null | head -n 1)"
  if has_target pgbouncer; then echo "pgbouncer:  $("$PGBOUNCER_BIN" --version 2>/dev/null | head -n 1)"; fi
  if [[ $ANY_CUTOVER -eq 1 ]]; then echo "cutover:    $("$CUTOVER_BIN" --version 2>/dev/null | head -n 1) [$CUTOVER_BIN]"; fi
  echo "repo:       $rev"
  echo "settings:   pgbench -i -s $SCALE; each run -T $DURATION -n after a ${WARMUP}s warm-up; transport $TRANSPORT; cutover workers: $CUT_WORKERS;"
  echo "            proxy CPU = utime+stime of the PgBouncer / cutover process (/proc/PID/stat) over the run, per"
  echo "            transaction pgbench completed; dual-sync = writes=dual mirror=sync reads_new_percent=0."
  echo
  echo "At a fixed rate (pgbench -R, -c $CLIENTS -j $THREADS): lag = pgbench's average schedule lag (included in the"
  echo "latency; a lag that grows with the run means the target could not keep the rate)."
  printf '%-22s | %-11s | %6s | %8s | %8s | %16s | %14s | %8s | %s\n' "workload" "target" "rate" "txns" "tps" "proxy CPU µs/txn" "avg latency ms" "lag ms" "stores"
  printf '%s\n' "-----------------------+-------------+--------+----------+----------+------------------+----------------+----------+-------"
  for w in "$W_SELECT_RATED" "$W_TPCB_RATED" "$W_INSERT_RATED"; do
    rate=$(rated "$w")
    for t in "${TARGET_LIST[@]}"; do
      k="$w,$CLIENTS,$t"
      printf '%-22s | %-11s | %6s | %8s | %8s | %16s | %14s | %8s | %s\n' "${WORKLOAD_NAMES[$w]}" "$(cpu_label "$t")" "$rate" \
        "${CPU_N[$k]:--}" "${CPU_TPS[$k]:--}" "${CPU_US[$k]:--}" "${CPU_LAT[$k]:--}" "${CPU_LAG[$k]:--}" "${CPU_STORES[$k]:--}"
    done
  done
  echo
  echo "At 1 client, unthrottled (-c 1 -j 1): added = the target's average latency minus direct's."
  printf '%-22s | %-11s | %8s | %14s | %9s | %16s\n' "workload" "target" "txns" "avg latency ms" "added ms" "proxy CPU µs/txn"
  printf '%s\n' "-----------------------+-------------+----------+----------------+-----------+-----------------"
  for w in "$W_SELECT_1" "$W_TPCB_1" "$W_INSERT_1"; do
    d="${CPU_LAT["$w,1,direct"]:-}"
    for t in "${TARGET_LIST[@]}"; do
      k="$w,1,$t"
      c=$(awk -v a="${CPU_LAT[$k]:-}" -v b="$d" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/) printf "%+.3f", a - b; else printf "-" }')
      [[ "$t" == direct ]] && c="-"
      printf '%-22s | %-11s | %8s | %14s | %9s | %16s\n' "${WORKLOAD_NAMES[$w]}" "$(cpu_label "$t")" \
        "${CPU_N[$k]:--}" "${CPU_LAT[$k]:--}" "$c" "${CPU_US[$k]:--}"
    done
  done
  if [[ $STORES_DIFFERED -eq 1 ]]; then echo; echo "the stores differ after a dual-sync tpcb-like run (see stderr): exit 3"; fi
  if [[ $ANY_FAILED -eq 1 ]]; then echo; echo "a pgbench run failed (see stderr): exit 1"; fi
}
