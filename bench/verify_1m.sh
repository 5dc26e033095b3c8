#!/usr/bin/env bash
# cutover verify's speed: N identical rows (default 1,000,000) on two local PostgreSQL 15
# clusters, `cutover verify` against the naive whole-table hash
#   md5(string_agg(t::text, '' ORDER BY pk))
# run on both stores at once (the fastest naive way: one statement per store, concurrently).
#
#   bench/verify_1m.sh [--cutover PATH] [--rows N] [--workers N] [--chunk-rows N]
#
# Prints seconds for each and the ratio. The table: (id bigint primary key, name text,
# amount numeric(12,2), score float8, created timestamptz, payload jsonb).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CUTOVER=$here/../build/cutover ROWS=1000000 WORKERS=2 CHUNK=10000
while (($#)); do
  case $1 in
    --cutover) CUTOVER=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --chunk-rows) CHUNK=$2; shift 2 ;;
    *) echo "usage: $0 [--cutover PATH] [--rows N] [--workers N] [--chunk-rows N]" >&2; exit 2 ;;
  esac
done
source "$here/../scripts/pgcluster.sh"
tmp=$(mktemp -d /tmp/cutover-verify-bench.XXXXXX)
chmod 755 "$tmp"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
OLD_PORT=$(free_port) NEW_PORT=$(free_port)
cleanup() { pg_stop "$tmp/old"; pg_stop "$tmp/new"; rm -rf "$tmp"; }
trap cleanup EXIT
pg_start old "$tmp/old" "$OLD_PORT" >/dev/null
pg_start new "$tmp/new" "$NEW_PORT" >/dev/null
load="CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), score float8,
                        created timestamptz, payload jsonb);
INSERT INTO big SELECT g, 'name ' || g, g * 1.25, g / 7.0,
       '2024-01-01'::timestamptz + g * interval '1 second', jsonb_build_object('k', g)
  FROM generate_series(1, $ROWS) g;"
for port in "$OLD_PORT" "$NEW_PORT"; do
  (psql -qX -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -c "$load" &&
   psql -qX -h 127.0.0.1 -p "$port" -U postgres -c "VACUUM ANALYZE big") &
done
wait
cat > "$tmp/cutover.yaml" <<YAML
stores:
  old: { host: 127.0.0.1, port: $OLD_PORT, user: postgres, sslmode: disable }
  new: { host: 127.0.0.1, port: $NEW_PORT, user: postgres, sslmode: disable }
auth: { method: trust }
YAML
now() { date +%s.%N; }
# Warm both caches the same way for both methods.
psql -qXAt -h 127.0.0.1 -p "$OLD_PORT" -U postgres -c "SELECT count(*) FROM big" >/dev/null
psql -qXAt -h 127.0.0.1 -p "$NEW_PORT" -U postgres -c "SELECT count(*) FROM big" >/dev/null

t0=$(now)
naive="SELECT md5(string_agg(t::text, '' ORDER BY id)) FROM big t"
psql -qXAt -h 127.0.0.1 -p "$OLD_PORT" -U postgres -c "$naive" > "$tmp/naive.old" &
pa=$!
psql -qXAt -h 127.0.0.1 -p "$NEW_PORT" -U postgres -c "$naive" > "$tmp/naive.new"
wait $pa
cmp -s "$tmp/naive.old" "$tmp/naive.new" || echo "naive: the hashes differ (they should not)"
t1=$(now)
set +e
"$CUTOVER" verify --config "$tmp/cutover.yaml" --quiet --workers "$WORKERS" --chunk-rows "$CHUNK" > "$tmp/verify.out"
rc=$?
set -e
t2=$(now)
naive_s=$(python3 -c "print($t1 - $t0)")
verify_s=$(python3 -c "print($t2 - $t1)")
echo "rows:   $ROWS (identical, both stores local; $(nproc) CPU cores; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'naive md5(string_agg(t::text ORDER BY id)), both stores at once: %.2f s\n' "$naive_s"
printf 'cutover verify --workers %s --chunk-rows %s: %.2f s (exit %s)\n' "$WORKERS" "$CHUNK" "$verify_s" "$rc"
printf 'ratio verify / naive: %.2f\n' "$(python3 -c "print($verify_s / $naive_s)")"
tail -1 "$tmp/verify.out"
