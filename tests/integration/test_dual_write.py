#!/usr/bin/python3
"""Dual-write and the read ramp through cutover (issue 4, "Done when").

Two real PostgreSQL 15 clusters, `old` and `new`, behind one proxy per check:

- mixed_workload_sync: `writes: dual`, `mirror: sync`. Schema created through the proxy, then 8
  psycopg2 clients (inserts, hot-row updates, deletes, transactions with savepoints and rollbacks,
  COPY FROM STDIN, SQL PREPARE/EXECUTE), 2 psycopg3 clients (extended protocol only: named
  prepared statements, binary parameters and results, pipeline mode with many writes before one
  Sync and a provoked error mid-pipeline, executemany, conn.transaction() with nested
  savepoints, text and binary COPY FROM STDIN) plus pgbench -M prepared tpcb-like (extended
  protocol) and, when a JDK and pgjdbc are installed, a pgjdbc client with server-side prepared
  statements. Both Python drivers are required (python3-psycopg2, python3-psycopg): a missing one
  fails the workload checks. Afterwards every user table is identical on both stores row by row,
  no divergence is journaled and /metrics counts no diverged mirror write.
- mixed_workload_async: the same with `mirror: async`, once cutover_mirror_queue_units is 0.
- dual_new_sync: the same with `writes: dual-new`, and the client gets new's answers.
- read_ramp: `reads_new_percent: 30`, `sticky: session`; 1,000 sessions: 30 % ± 5 % served by
  new, each session by one store, transactions and writes by old; /metrics agrees.
- new_store_killed(_async): new stopped (`-m immediate`) mid-run: no client error (reads fall back to old
  and are counted), every missed write in divergences.jsonl, store_up{new} 0; new restarted:
  store_up 1 again, new sessions mirror.
- divergence_detected: a row changed on new behind the proxy's back → tag_mismatch and
  error_one_side journal lines written before the client got its answer; counted in /metrics.
- large_batches: a psycopg3 pipeline of 20,000 inserts before one Sync and a 3 MB message, in
  sync and async: no stall, stores equal; with mirror_queue_bytes at 64 KiB the miss is journaled.
- temp_tables_and_the_ramp: a temporary table created before the session was routed stays
  readable after a flip to reads_new_percent: 100 (its reads stay on old); one created later is
  mirrored and read from new.
- comparison_catches_difference: the table comparison itself reports an altered copy.
- ramped_read_timeout: a read ramped to new that sends nothing within ramp_read_timeout_ms is
  cancelled there and answered by old: with a lock held on new (the connection is kept, writes
  mirror and reads ramp again afterwards, its shadow is dropped) and with new's backend
  SIGSTOPped (later reads go to old, a write waits mirror_timeout_ms and is journaled, the next
  one waits for the reconnection and reaches new); a psycopg3 prepare=True read is answered by
  old once mirror_timeout_ms passed.

`--direct`: the target is the old store and the "new" side of every comparison is old itself;
proxy-only assertions are skipped with a printed reason. Workloads run 30 s, as issue 4 asks
(CUTOVER_WORKLOAD_S overrides, e.g. 5 while iterating).
"""

import collections
import decimal
import io
import json
import logging
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()
import psycopg2.errors  # noqa: E402
import psycopg2.sql as sql  # noqa: E402

try:
    import psycopg  # psycopg3 (python3-psycopg); its absence fails the workload checks
except ImportError:
    psycopg = None
else:
    # An aborted pipeline (provoked below) also logs "error ignored terminating ...".
    logging.getLogger("psycopg").setLevel(logging.ERROR)

WORKLOAD_S = int(os.environ.get("CUTOVER_WORKLOAD_S", "30"))
CLIENTS = 8
PSYCOPG3_CLIENTS = 2
PGBENCH_CLIENTS = 2
HOT_ROWS = 5
MIRROR_TIMEOUT_MS = 2000
# The workload checks wait longer: pgbench -i's 100k-row COPY can take new over 2 s on a loaded
# CI machine, and a journaled timeout there would be a flaky failure, not a proxy bug. A stuck
# secondary (lock cycle between the stores) still fails them: it times out and is journaled.
WORKLOAD_MIRROR_TIMEOUT_MS = 10000
RAMP_SESSIONS = 1000
RAMP_PERCENT = 30
RAMP_TOLERANCE = 5          # percentage points
RAMP_READS_PER_SESSION = 3
KILL_BEFORE_S = 3           # workload runs this long before new is stopped
KILL_DOWN_S = 5             # ... and this long while new is down
RECONNECT_LIMIT_S = 10
ASYNC_DRAIN_S = 300   # a 2-core CI machine under AddressSanitizer applies slowly
PGJDBC_JAR = "/usr/share/java/postgresql.jar"

# Columns whose values the stores compute themselves (CURRENT_TIMESTAMP in pgbench's tpcb-like
# INSERT into pgbench_history). Pinning nondeterministic values is a later issue; every other
# column of these tables is still compared.
NONDETERMINISTIC_COLUMNS = {"public.pgbench_history": {"mtime"}}


def setup(ctx):
    pgbench = h.require_tool("pgbench", "postgresql-client-15 (or postgresql-contrib-15)")
    # synchronous_commit=on: an immediate stop of new must not lose commits new acknowledged
    # (with it off, up to 3 x wal_writer_delay of acknowledged commits vanish, which would look
    # like writes the proxy failed to journal).
    settings = {"synchronous_commit": "on", "max_connections": 200, "log_lock_waits": "on"}
    old = ctx.cluster("old", **settings)
    new = ctx.cluster("new", **settings)
    return {"old": old, "new": new, "pgbench": pgbench}


def peer(ctx):
    """The store compared with old: new through the proxy, old itself with --direct."""
    return ctx.old if ctx.direct else ctx.new


def skip(ctx, what):
    ctx.log(f"skipped (--direct, proxy only): {what}")


def fresh_db(ctx, name):
    h.fresh_database(name, *([ctx.old] if ctx.direct else [ctx.old, ctx.new]))


# ---------------------------------------------------------------------------------------------
# The proxy under test, its journal and its metrics


class DualWrite:
    """A proxy in front of old and new with the given flags (or, with --direct, old itself)."""

    def __init__(self, ctx, writes="dual", mirror="sync", reads_new_percent=0, sticky="session",
                 mirror_timeout_ms=MIRROR_TIMEOUT_MS, shadow_percent=0, tables=None, **overrides):
        self.direct = ctx.direct
        self.admin_port = None
        self.journal_path = None
        if ctx.direct:
            self.tgt = h.DirectTarget(ctx.old)
            return
        tmp = h.TmpDir("dw-journal").path
        journal_dir = os.path.join(tmp, "journal")
        os.makedirs(journal_dir)
        if h.IS_ROOT:
            shutil.chown(tmp, "postgres", "postgres")
        self.journal_path = os.path.join(journal_dir, "divergences.jsonl")
        self.admin_port = h.free_port()
        admin = {"listen": f"127.0.0.1:{self.admin_port}", **overrides.pop("admin", {})}
        flags = {"writes": writes, "mirror": mirror, "reads_new_percent": reads_new_percent, "sticky": sticky,
                 "shadow_percent": shadow_percent}
        if tables:
            flags["tables"] = tables   # per-table overrides, as in the config
        self.tgt = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new,
                           flags=flags,
                           journal_dir=journal_dir, admin=admin,
                           mirror_timeout_ms=mirror_timeout_ms, **overrides)

    def endpoint(self):
        return self.tgt.endpoint()

    def restart(self, ctx, **flags):
        """After the proxy is gone (kill -9 included): a new one on the same ports, journal
        directory and flags (`flags` changes some)."""
        cfg = self.tgt.config
        kept = {k: v for k, v in cfg["flags"].items() if k != "state_file"}
        kept.update(flags)
        self.tgt.cleanup()
        self.tgt = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new, port=self.tgt.port, flags=kept,
                           **{k: v for k, v in cfg.items()
                              if k in ("journal_dir", "admin", "mirror_timeout_ms", "compare")})

    def connect(self, db, autocommit=True):
        conn = self.tgt.connect(db=db)
        conn.autocommit = autocommit
        return conn

    def journal(self):
        """Every line of divergences.jsonl as a dict (a line that is not JSON fails the check)."""
        out = []
        for n, line in enumerate(h.read_text(self.journal_path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise h.CheckFailed(f"divergences.jsonl line {n} is not JSON ({e}): {line[:300]!r}")
        return out

    def metrics(self):
        return h.Metrics(self.admin_port)

    def stop(self):
        if not self.direct:
            rc = self.tgt.stop()
            h.check_eq(rc, 0, f"proxy exit code; stderr tail:\n{self.tgt.stderr_text()[-3000:]}")


# ---------------------------------------------------------------------------------------------
# Store contents: dump every user table, compare two dumps row by row


def dump_store(cluster, db, skip_columns=NONDETERMINISTIC_COLUMNS):
    """{schema.table: (columns, rows)}: every user table's columns (name and type) and all its
    rows as text tuples (NULL = None), ordered by all columns as text."""
    out = {}
    conn = cluster.connect(db=db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT c.oid, n.nspname, c.relname FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
                        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 2, 3")
            for oid, schema, table in cur.fetchall():
                name = f"{schema}.{table}"
                cur.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                            "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped "
                            "ORDER BY attnum", (oid,))
                columns = [c for c in cur.fetchall() if c[0] not in skip_columns.get(name, ())]
                if columns:
                    cols = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c))
                                              for c, _ in columns)
                    order = sql.SQL(", ").join(sql.SQL(str(i + 1)) for i in range(len(columns)))
                    cur.execute(sql.SQL("SELECT {} FROM {}.{} ORDER BY {}").format(
                        cols, sql.Identifier(schema), sql.Identifier(table), order))
                    rows = cur.fetchall()
                else:
                    cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
                        sql.Identifier(schema), sql.Identifier(table)))
                    rows = [()] * cur.fetchone()[0]
                out[name] = (columns, rows)
    finally:
        conn.close()
    return out


def compare_dumps(a, b, a_name="old", b_name="new", limit=3):
    """Differences between two dumps, one string per problem (empty list: identical). For each
    table with different rows: counts and the first `limit` rows only one side has."""
    problems = []
    for table in sorted(set(a) | set(b)):
        if table not in b:
            problems.append(f"{table}: only in {a_name}")
            continue
        if table not in a:
            problems.append(f"{table}: only in {b_name}")
            continue
        (a_cols, a_rows), (b_cols, b_rows) = a[table], b[table]
        if a_cols != b_cols:
            problems.append(f"{table}: columns differ: {a_name} {a_cols} vs {b_name} {b_cols}")
            continue
        if a_rows == b_rows:
            continue
        ca, cb = collections.Counter(a_rows), collections.Counter(b_rows)
        key = lambda r: tuple((v is None, v or "") for v in r)  # noqa: E731
        only_a = sorted((ca - cb).elements(), key=key)
        only_b = sorted((cb - ca).elements(), key=key)
        names = [c for c, _ in a_cols]
        problems.append(
            f"{table} {names}: {len(a_rows)} rows in {a_name}, {len(b_rows)} in {b_name}; "
            f"{len(only_a)} only in {a_name} (first: {only_a[:limit]}), "
            f"{len(only_b)} only in {b_name} (first: {only_b[:limit]})")
    return problems


def check_same_contents(ctx, db, exclude=(), dw=None):
    a = dump_store(ctx.old, db)
    b = dump_store(peer(ctx), db)
    for t in exclude:
        a.pop(t, None)
        b.pop(t, None)
    problems = compare_dumps(a, b, "old", "new" if not ctx.direct else "old (again)")
    if problems and dw is not None and not dw.direct:
        problems.append("(for the post-mortem) " + proxy_summary(dw))
    h.check(not problems, f"database {db}: stores differ:\n  " + "\n  ".join(problems))
    ctx.log(f"{db}: {len(a)} tables, {sum(len(r) for _, r in a.values())} rows identical "
            f"on both stores")
    return a


# ---------------------------------------------------------------------------------------------
# The mixed workload (psycopg2: simple protocol, client-side parameters; psycopg3: extended)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = collections.Counter()
        self.expected_errors = collections.Counter()
        self.errors = []  # (client, op, error) the workload did not provoke

    def op(self, name):
        with self.lock:
            self.ops[name] += 1

    def expected(self, name):
        with self.lock:
            self.expected_errors[name] += 1

    def error(self, client, name, e):
        with self.lock:
            self.errors.append((client, name, f"{type(e).__name__}: {str(e).strip()[:300]}"))

    def summary(self):
        return (f"{sum(self.ops.values())} ops {dict(sorted(self.ops.items()))}; provoked errors "
                f"{dict(self.expected_errors)}; unexpected errors {len(self.errors)}")


SCHEMA = f"""
DROP TABLE IF EXISTS counters, items, ledger;
CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL, h text NOT NULL);
CREATE TABLE items (id bigint PRIMARY KEY, client int NOT NULL, qty int NOT NULL, note text);
CREATE INDEX items_client ON items (client);
CREATE TABLE ledger (id bigint PRIMARY KEY, client int NOT NULL, amount numeric(12, 2),
                     memo text);
INSERT INTO counters SELECT g, 0, 'seed' FROM generate_series(1, {HOT_ROWS}) g;
"""


def create_schema(dw, db):
    conn = dw.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute(SCHEMA)
    finally:
        conn.close()


class Client:
    """One psycopg2 client of the mixed workload. Ids are client-unique, so the only contention
    is on the hot `counters` rows, whose `h` column is an md5 chain: its final value depends on
    the exact order of every update, so both stores agree only if they applied the updates to a
    row in the same order."""

    def __init__(self, dw, db, no, stats, seed):
        self.dw, self.db, self.no, self.stats = dw, db, no, stats
        self.rng = random.Random(seed)
        self.seq = 0
        self.live = []  # ids of this client's items not deleted yet
        self.conn = None

    def next_id(self):
        self.seq += 1
        return (self.no + 1) * 1_000_000_000 + self.seq

    def connect(self):
        """(Re)connects, dropping a previous connection whatever its state."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = self.open()

    def open(self):
        conn = self.dw.connect(self.db)
        with conn.cursor() as cur:
            cur.execute("PREPARE ins_item (bigint, int, int, text) AS "
                        "INSERT INTO items VALUES ($1, $2, $3, $4)")
            cur.execute("PREPARE bump (int, text) AS "
                        "UPDATE counters SET n = n + 1, h = md5(h || $2) WHERE id = $1")
        return conn

    def run(self, deadline):
        try:
            self.connect()
        except Exception as e:
            self.stats.error(self.no, "connect", e)
            return
        funcs, weights = zip(*self.ops())
        while time.monotonic() < deadline:
            fn = self.rng.choices(funcs, weights)[0]
            name = fn.__name__
            try:
                with self.conn.cursor() as cur:
                    fn(cur)
                self.stats.op(name)
            except Exception as e:
                self.stats.error(self.no, name, e)
                try:  # carry on: every further error is counted too
                    if self.conn.closed:
                        self.connect()
                    else:
                        self.end_transaction()
                except Exception:
                    try:
                        self.connect()
                    except Exception as e2:
                        self.stats.error(self.no, "reconnect", e2)
                        time.sleep(0.2)
        self.conn.close()

    def ops(self):
        """(op, weight) pairs; an op's name is what Stats counts."""
        return [(self.insert, 20), (self.hot_update, 20), (self.delete, 8), (self.multi_update, 6),
                (self.savepoint_txn, 10), (self.rollback_txn, 5), (self.copy_in, 3),
                (self.prepared, 10), (self.read, 8), (self.duplicate, 2)]

    def end_transaction(self):
        """After an unexpected error: roll back whatever transaction the error left open."""
        if self.conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            with self.conn.cursor() as cur:
                cur.execute("ROLLBACK")

    def token(self):
        return f"c{self.no}s{self.seq}r{self.rng.randrange(1 << 30)}"

    def insert(self, cur):
        i = self.next_id()
        cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s)",
                    (i, self.no, self.rng.randrange(100), f"item {i} 'quoted' ✓"))
        h.check_eq(cur.statusmessage, "INSERT 0 1", "insert tag")
        self.live.append(i)

    def hot_update(self, cur):
        cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                    (self.token(), self.rng.randint(1, HOT_ROWS)))
        h.check_eq(cur.statusmessage, "UPDATE 1", "hot update tag")

    def delete(self, cur):
        if not self.live:
            return self.insert(cur)
        i = self.live.pop(self.rng.randrange(len(self.live)))
        cur.execute("DELETE FROM items WHERE id = %s", (i,))
        h.check_eq(cur.statusmessage, "DELETE 1", "delete tag")

    def multi_update(self, cur):
        cur.execute("UPDATE items SET qty = qty + 1, note = note || '+' "
                    "WHERE client = %s AND id %% 7 = %s", (self.no, self.rng.randrange(7)))

    def savepoint_txn(self, cur):
        a, b, c = self.next_id(), self.next_id(), self.next_id()
        cur.execute("BEGIN")
        cur.execute("INSERT INTO items VALUES (%s, %s, 1, 'txn a')", (a, self.no))
        cur.execute("SAVEPOINT s1")
        try:  # provoked: duplicate key inside the savepoint
            cur.execute("INSERT INTO items VALUES (%s, %s, 1, 'dup')", (a, self.no))
            raise h.CheckFailed("duplicate key insert inside a savepoint succeeded")
        except psycopg2.errors.UniqueViolation:
            self.stats.expected("savepoint_duplicate")
        cur.execute("ROLLBACK TO SAVEPOINT s1")
        cur.execute("INSERT INTO items VALUES (%s, %s, 2, 'txn b')", (b, self.no))
        cur.execute("SAVEPOINT s2")
        cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                    (self.token(), self.rng.randint(1, HOT_ROWS)))
        cur.execute("INSERT INTO items VALUES (%s, %s, 3, 'rolled back to s2')", (c, self.no))
        cur.execute("ROLLBACK TO SAVEPOINT s2")
        cur.execute("SAVEPOINT s3")
        cur.execute("INSERT INTO items VALUES (%s, %s, 3, 'txn c')", (c, self.no))
        cur.execute("RELEASE SAVEPOINT s3")
        cur.execute("SELECT count(*) FROM items WHERE id IN (%s, %s, %s)", (a, b, c))
        h.check_eq(cur.fetchone()[0], 3, "rows visible inside the transaction")
        cur.execute("COMMIT")
        h.check_eq(cur.statusmessage, "COMMIT", "commit tag")
        self.live += [a, b, c]

    def rollback_txn(self, cur):
        i = self.next_id()
        cur.execute("BEGIN")
        cur.execute("INSERT INTO items VALUES (%s, %s, 9, 'never committed')", (i, self.no))
        cur.execute("UPDATE counters SET n = n + 1000, h = 'rolled back' WHERE id = %s",
                    (self.rng.randint(1, HOT_ROWS),))
        if self.live:
            cur.execute("DELETE FROM items WHERE id = %s", (self.rng.choice(self.live),))
        cur.execute("ROLLBACK")
        h.check_eq(cur.statusmessage, "ROLLBACK", "rollback tag")

    def copy_in(self, cur):
        lines = []
        for k in range(50):
            i = self.next_id()
            amount = "\\N" if k % 10 == 0 else f"{self.rng.randrange(-10**6, 10**6) / 100:.2f}"
            lines.append(f"{i}\t{self.no}\t{amount}\tcopy row {k}\\ttab é")
        cur.copy_expert("COPY ledger (id, client, amount, memo) FROM STDIN",
                        io.StringIO("\n".join(lines) + "\n"))
        h.check_eq(cur.rowcount, 50, "COPY row count")

    def prepared(self, cur):
        if self.rng.random() < 0.5:
            i = self.next_id()
            cur.execute("EXECUTE ins_item (%s, %s, %s, %s)", (i, self.no, 5, "prepared"))
            h.check_eq(cur.statusmessage, "INSERT 0 1", "EXECUTE insert tag")
            self.live.append(i)
        else:
            cur.execute("EXECUTE bump (%s, %s)", (self.rng.randint(1, HOT_ROWS), self.token()))
            h.check_eq(cur.statusmessage, "UPDATE 1", "EXECUTE update tag")
        if self.rng.random() < 0.05:  # DEALLOCATE and PREPARE again under the same name
            cur.execute("DEALLOCATE bump")
            cur.execute("PREPARE bump (int, text) AS "
                        "UPDATE counters SET n = n + 1, h = md5(h || $2) WHERE id = $1")

    def read(self, cur):
        cur.execute("SELECT count(*), coalesce(sum(qty), 0) FROM items WHERE client = %s",
                    (self.no,))
        cur.fetchone()

    def duplicate(self, cur):
        if not self.live:
            return self.insert(cur)
        try:  # provoked: fails on both stores alike, so it is no divergence
            cur.execute("INSERT INTO items VALUES (%s, %s, 0, 'dup')",
                        (self.rng.choice(self.live), self.no))
            raise h.CheckFailed("duplicate key insert succeeded")
        except psycopg2.errors.UniqueViolation:
            self.stats.expected("duplicate")


def run_clients(dw, db, n, duration, seed=1):
    stats = Stats()
    deadline = time.monotonic() + duration
    clients = [Client(dw, db, i, stats, seed * 1000 + i) for i in range(n)]
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    return stats, threads


class Psycopg3Client(Client):
    """One psycopg3 client of the mixed workload: the extended protocol only (psycopg3 binds
    every parameter server-side), named statements (`_pg3_N`) from the first execution
    (`prepare_threshold = 0`) on even-numbered clients and from an explicit `prepare=True` on
    the others, binary parameters (`%b`) and results, pipeline mode (many Parse/Bind/Execute
    before one Sync, i.e. one implicit transaction), executemany (a pipeline too), BEGIN and
    SAVEPOINT from `conn.transaction()` and text and binary COPY FROM STDIN. After an error in
    a transaction psycopg3 itself sends `DEALLOCATE ALL`. Same id scheme and hot-row md5 chain
    as Client; a statement or batch that updates several hot rows takes them in id order, so
    the clients cannot deadlock each other on one store."""

    def open(self):
        conn = psycopg.connect(self.dw.endpoint().dsn(db=self.db), autocommit=True)
        if self.no % 2 == 0:
            conn.prepare_threshold = 0
        return conn

    def ops(self):
        return [(self.insert, 15), (self.hot_update, 15), (self.delete, 8), (self.read, 6),
                (self.pipeline, 10), (self.pipeline_aborted, 2), (self.pipeline_txn, 5),
                (self.executemany, 6), (self.transaction, 10), (self.copy_text, 3),
                (self.copy_binary, 3)]

    def end_transaction(self):
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.rollback()

    def hot_rows(self, k):
        return sorted(self.rng.randint(1, HOT_ROWS) for _ in range(k))

    def insert(self, cur):
        i = self.next_id()
        cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s)",
                    (i, self.no, self.rng.randrange(100), f"pg3 {i} 'quoted' ✓"), prepare=True)
        h.check_eq(cur.statusmessage, "INSERT 0 1", "psycopg3 insert tag")
        self.live.append(i)

    def hot_update(self, cur):
        cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                    (self.token(), self.rng.randint(1, HOT_ROWS)), prepare=True)
        h.check_eq(cur.statusmessage, "UPDATE 1", "psycopg3 hot update tag")

    def delete(self, cur):
        if not self.live:
            return self.insert(cur)
        i = self.live.pop(self.rng.randrange(len(self.live)))
        # Unnamed statement, the parameter in binary format.
        cur.execute("DELETE FROM items WHERE id = %b", (i,), prepare=False)
        h.check_eq(cur.statusmessage, "DELETE 1", "psycopg3 delete tag")

    def read(self, cur):
        with self.conn.cursor(binary=True) as bcur:  # binary result columns
            bcur.execute("SELECT count(*), coalesce(sum(qty), 0) FROM items WHERE client = %s",
                         (self.no,), prepare=True)
            bcur.fetchone()

    def pipeline(self, cur):
        """Inserts, hot updates and a delete before one Sync; every tag checked after it."""
        ids = [self.next_id() for _ in range(self.rng.randint(3, 6))]
        victim = self.live.pop(self.rng.randrange(len(self.live))) if self.live else None
        curs = []
        with self.conn.pipeline():
            for i in ids:
                curs.append(("INSERT 0 1", self.conn.execute(
                    "INSERT INTO items VALUES (%s, %s, %s, %s)",
                    (i, self.no, self.rng.randrange(100), "pipelined"), prepare=True)))
            for r in self.hot_rows(2):
                curs.append(("UPDATE 1", self.conn.execute(
                    "UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                    (self.token(), r))))
            if victim is not None:
                curs.append(("DELETE 1", self.conn.execute(
                    "DELETE FROM items WHERE id = %s", (victim,))))
        h.check_eq([c.statusmessage for _, c in curs], [want for want, _ in curs],
                   "psycopg3 pipeline tags")
        self.live += ids

    def pipeline_aborted(self, cur):
        """Provoked: a duplicate key in the middle of a pipeline. The server skips the rest up
        to the Sync and the implicit transaction rolls back, on both stores alike."""
        if not self.live:
            return self.insert(cur)
        a, b = self.next_id(), self.next_id()
        try:
            with self.conn.pipeline():
                self.conn.execute("INSERT INTO items VALUES (%s, %s, 1, 'aborted a')",
                                  (a, self.no), prepare=True)
                self.conn.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                                  (self.token(), self.rng.randint(1, HOT_ROWS)))
                self.conn.execute("INSERT INTO items VALUES (%s, %s, 1, 'dup')",
                                  (self.rng.choice(self.live), self.no), prepare=True)
                self.conn.execute("INSERT INTO items VALUES (%s, %s, 1, 'aborted b')",
                                  (b, self.no))
            raise h.CheckFailed("duplicate key insert inside a pipeline succeeded")
        except psycopg.errors.UniqueViolation:
            self.stats.expected("pipeline_duplicate")
        cur.execute("SELECT count(*) FROM items WHERE id IN (%s, %s)", (a, b))
        h.check_eq(cur.fetchone()[0], 0, "rows of an aborted pipeline")

    def pipeline_txn(self, cur):
        """BEGIN, SAVEPOINT, RELEASE and COMMIT pipelined with the writes (extended protocol)."""
        a, b = self.next_id(), self.next_id()
        r1, r2 = self.hot_rows(2)
        with self.conn.pipeline():
            with self.conn.transaction():
                cur.execute("INSERT INTO items VALUES (%s, %s, 4, 'pipeline txn a')",
                            (a, self.no))
                cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                            (self.token(), r1))
                with self.conn.transaction():
                    cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                                (self.token(), r2))
                    cur.execute("INSERT INTO items VALUES (%s, %s, 4, 'pipeline txn b')",
                                (b, self.no))
        h.check_eq(self.conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE,
                   "transaction status after a pipelined transaction")
        self.live += [a, b]

    def executemany(self, cur):
        ids = [self.next_id() for _ in range(self.rng.randint(5, 20))]
        cur.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)",
                        [(i, self.no, self.rng.randrange(100), "executemany") for i in ids])
        h.check_eq(cur.rowcount, len(ids), "psycopg3 executemany insert rowcount")
        self.live += ids
        rows = self.hot_rows(3)
        cur.executemany("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                        [(self.token(), r) for r in rows])
        h.check_eq(cur.rowcount, len(rows), "psycopg3 executemany update rowcount")

    def transaction(self, cur):
        """BEGIN; savepoints: one released, one rolled back by a provoked duplicate key, one by
        psycopg.Rollback; the whole transaction rolled back a quarter of the time."""
        a, b, c = self.next_id(), self.next_id(), self.next_id()
        r1, r2 = self.hot_rows(2)
        commit = self.rng.random() < 0.75
        with self.conn.transaction():
            cur.execute("INSERT INTO items VALUES (%s, %s, 1, 'pg3 txn a')", (a, self.no))
            with self.conn.transaction():
                cur.execute("UPDATE counters SET n = n + 1, h = md5(h || %s) WHERE id = %s",
                            (self.token(), r1))
                cur.execute("INSERT INTO items VALUES (%s, %s, 2, 'pg3 txn b')", (b, self.no))
            try:
                with self.conn.transaction():
                    cur.execute("INSERT INTO items VALUES (%s, %s, 1, 'dup')", (a, self.no))
                raise h.CheckFailed("duplicate key insert inside a savepoint succeeded")
            except psycopg.errors.UniqueViolation:
                self.stats.expected("savepoint_duplicate")
            with self.conn.transaction():
                cur.execute("INSERT INTO items VALUES (%s, %s, 3, 'rolled back')", (c, self.no))
                cur.execute("UPDATE counters SET n = n + 1000, h = 'rolled back' WHERE id = %s",
                            (r2,))
                raise psycopg.Rollback()
            cur.execute("SELECT count(*) FROM items WHERE id IN (%s, %s, %s)", (a, b, c))
            h.check_eq(cur.fetchone()[0], 2, "rows visible inside the psycopg3 transaction")
            if not commit:
                raise psycopg.Rollback()
        h.check_eq(self.conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE,
                   "transaction status after conn.transaction()")
        if commit:
            self.live += [a, b]

    def copy_rows(self):
        for k in range(50):
            amount = None if k % 10 == 0 else \
                decimal.Decimal(self.rng.randrange(-10**6, 10**6)) / 100
            yield (self.next_id(), self.no, amount, f"pg3 copy row {k}\ttab é")

    def copy_text(self, cur):
        with cur.copy("COPY ledger (id, client, amount, memo) FROM STDIN") as copy:
            for row in self.copy_rows():
                copy.write_row(row)
        h.check_eq(cur.rowcount, 50, "psycopg3 COPY row count")

    def copy_binary(self, cur):
        with cur.copy("COPY ledger (id, client, amount, memo) FROM STDIN (FORMAT BINARY)") \
                as copy:
            copy.set_types(["int8", "int4", "numeric", "text"])
            for row in self.copy_rows():
                copy.write_row(row)
        h.check_eq(cur.rowcount, 50, "psycopg3 binary COPY row count")


PSYCOPG3_OPS = ("insert", "hot_update", "delete", "read", "pipeline", "pipeline_aborted",
                "pipeline_txn", "executemany", "transaction", "copy_text", "copy_binary")


def run_psycopg3_clients(dw, db, n, duration, seed=1):
    """n Psycopg3Clients numbered after the CLIENTS psycopg2 ones (distinct ids, and the
    pgjdbc ids start at 900000000000, far above)."""
    stats = Stats()
    deadline = time.monotonic() + duration
    clients = [Psycopg3Client(dw, db, CLIENTS + i, stats, seed * 1000 + CLIENTS + i)
               for i in range(n)]
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True,
                                name=f"psycopg3-client-{c.no}") for c in clients]
    for t in threads:
        t.start()
    return stats, threads


def join_all(threads, timeout, stores=()):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        h.check(False, f"{len(stuck)} workload clients still running {timeout}s after their end "
                       f"(hung statement?): {stuck}; " + activity(stores))


def activity(stores):
    """What the stores' backends are doing (for a hung client's post-mortem)."""
    out = []
    for c in stores:
        try:
            out.append(f"{c.name}: " + c.psql(
                "SELECT pid, state, wait_event_type, wait_event, xact_start IS NOT NULL, "
                "left(query, 100) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()").replace("\n", " ; "))
        except Exception as e:
            out.append(f"{c.name}: {e}")
    return " || ".join(out)


# ---------------------------------------------------------------------------------------------
# pgbench (extended protocol, named prepared statements) and pgjdbc


def pgbench(ctx, ep, db, *args, timeout=300):
    argv, env = ep.psql_args(db=db)
    conn_args = argv[2:-2]  # -h H -p P -U U
    p = subprocess.run([ctx.pgbench, *conn_args, *args, db], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout


class Background:
    """Runs fn() in a thread; .result / .error after join()."""

    def __init__(self, fn):
        self.result = self.error = None

        def body():
            try:
                self.result = fn()
            except Exception as e:
                self.error = e
        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def join(self, timeout):
        self.thread.join(timeout)
        h.check(not self.thread.is_alive(), f"background job still running after {timeout}s")
        if self.error:
            raise self.error
        return self.result


def pgbench_check(out, rc, what):
    h.check_eq(rc, 0, f"{what} exit code; output:\n{out}")
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    h.check(m and failed, f"{what}: no transaction counts in output:\n{out}")
    h.check_eq(int(failed.group(1)), 0, f"{what}: failed transactions; output:\n{out}")
    h.check(int(m.group(1)) > 0, f"{what}: no transactions processed")
    return int(m.group(1))


JDBC_SOURCE = r"""
import java.sql.*;
import java.util.Random;

// Extended-protocol client for test_dual_write.py: server-side prepared statements
// (prepareThreshold=1: named statements from the first execution), autocommit and explicit
// transactions with a savepoint. Prints "ops N" and exits 0, or prints the error and exits 1.
public final class DualWriteJdbc {
  public static void main(String[] a) throws Exception {
    String url = "jdbc:postgresql://127.0.0.1:" + a[0] + "/" + a[1]
        + "?user=postgres&prepareThreshold=1&sslmode=disable";
    long deadline = System.currentTimeMillis() + Long.parseLong(a[2]) * 1000;
    long base = Long.parseLong(a[3]);
    Random rng = new Random(42);
    int ops = 0;
    long seq = 0;
    try (Connection c = DriverManager.getConnection(url)) {
      PreparedStatement ins = c.prepareStatement("INSERT INTO items VALUES (?, ?, ?, ?)");
      PreparedStatement bump = c.prepareStatement(
          "UPDATE counters SET n = n + 1, h = md5(h || ?) WHERE id = ?");
      PreparedStatement del = c.prepareStatement("DELETE FROM items WHERE id = ?");
      PreparedStatement sel = c.prepareStatement("SELECT count(*) FROM items WHERE client = ?");
      while (System.currentTimeMillis() < deadline) {
        int op = rng.nextInt(4);
        if (op == 0) {
          long id = base + ++seq;
          ins.setLong(1, id); ins.setInt(2, 99); ins.setInt(3, rng.nextInt(100));
          ins.setString(4, "jdbc " + id);
          expect(ins.executeUpdate(), 1, "insert");
          if (rng.nextInt(3) == 0) { del.setLong(1, id); expect(del.executeUpdate(), 1, "delete"); }
        } else if (op == 1) {
          bump.setString(1, "j" + seq + "r" + rng.nextInt()); bump.setInt(2, 1 + rng.nextInt(5));
          expect(bump.executeUpdate(), 1, "bump");
        } else if (op == 2) {
          c.setAutoCommit(false);
          long id = base + ++seq;
          ins.setLong(1, id); ins.setInt(2, 99); ins.setInt(3, 7); ins.setString(4, "jdbc txn");
          ins.executeUpdate();
          Savepoint sp = c.setSavepoint();
          bump.setString(1, "jt" + seq); bump.setInt(2, 1 + rng.nextInt(5));
          bump.executeUpdate();
          if (rng.nextBoolean()) c.rollback(sp); else c.releaseSavepoint(sp);
          if (rng.nextInt(4) == 0) c.rollback(); else c.commit();
          c.setAutoCommit(true);
        } else {
          sel.setInt(1, 99);
          try (ResultSet rs = sel.executeQuery()) { rs.next(); }
        }
        ops++;
      }
    } catch (Exception e) {
      System.out.println("error after " + ops + " ops: " + e);
      System.exit(1);
    }
    System.out.println("ops " + ops);
  }

  static void expect(int got, int want, String what) throws Exception {
    if (got != want) throw new Exception(what + ": " + got + " rows, want " + want);
  }
}
"""


def jdbc_runner(ctx):
    """argv prefix to run the pgjdbc client, or None (with the reason logged) when no JDK or
    pgjdbc is installed: the pgjdbc client is optional, psycopg2 and pgbench are not."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if not (javac and java and os.path.exists(PGJDBC_JAR)):
        ctx.log("pgjdbc client not run: needs javac/java (default-jdk-headless) and "
                f"{PGJDBC_JAR} (libpostgresql-jdbc-java)")
        return None
    if "jdbc" not in ctx.fixtures:
        d = h.TmpDir("dw-jdbc").path
        src = os.path.join(d, "DualWriteJdbc.java")
        with open(src, "w") as f:
            f.write(JDBC_SOURCE)
        p = subprocess.run([javac, "-encoding", "UTF-8", "-cp", PGJDBC_JAR, "-d", d, src],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=180)
        h.check_eq(p.returncode, 0, f"javac DualWriteJdbc.java:\n{p.stdout}")
        ctx.fixtures["jdbc"] = [java, "-cp", f"{PGJDBC_JAR}:{d}", "DualWriteJdbc"]
    return ctx.fixtures["jdbc"]


def run_jdbc(argv, ep, db, duration):
    p = subprocess.run(argv + [str(ep.port), db, str(duration), "900000000000"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=duration + 120)
    h.check_eq(p.returncode, 0, f"pgjdbc client exit code; output:\n{p.stdout}")
    return p.stdout.strip()


# ---------------------------------------------------------------------------------------------
# Dual-write with the whole workload


def divergence_lines(journal, allow=("nondeterministic",)):
    return [d for d in journal if d.get("kind") not in allow]


def full_workload(ctx, dw, db):
    """Schema and pgbench tables through the proxy, then everything at once for WORKLOAD_S."""
    if psycopg is None:  # a declared dependency (scripts/setup.sh): fail, never skip
        raise h.HarnessError("psycopg (psycopg3) missing: install python3-psycopg and run with "
                             "/usr/bin/python3")
    create_schema(dw, db)
    rc, out = pgbench(ctx, dw.endpoint(), db, "-i", "-s", "1", "-q")
    h.check_eq(rc, 0, f"pgbench -i through the target; output:\n{out}")
    jdbc = jdbc_runner(ctx)
    bench = Background(lambda: pgbench(ctx, dw.endpoint(), db, "-n", "-M", "prepared",
                                       "-T", str(WORKLOAD_S), "-c", str(PGBENCH_CLIENTS),
                                       "-j", "1"))
    java = Background(lambda: run_jdbc(jdbc, dw.endpoint(), db, WORKLOAD_S)) if jdbc else None
    stats, threads = run_clients(dw, db, CLIENTS, WORKLOAD_S)
    stats3, threads3 = run_psycopg3_clients(dw, db, PSYCOPG3_CLIENTS, WORKLOAD_S)
    join_all(threads + threads3, WORKLOAD_S + 120)
    rc, out = bench.join(WORKLOAD_S + 120)
    n = pgbench_check(out, rc, "pgbench -M prepared tpcb-like through the target")
    ctx.log(f"psycopg2 x{CLIENTS} for {WORKLOAD_S}s: {stats.summary()}")
    ctx.log(f"psycopg3 x{PSYCOPG3_CLIENTS} for {WORKLOAD_S}s: {stats3.summary()}")
    ctx.log(f"pgbench -M prepared x{PGBENCH_CLIENTS}: {n} transactions")
    if java:
        ctx.log(f"pgjdbc (prepareThreshold=1): {java.join(WORKLOAD_S + 120)}")
    h.check(not stats.errors, f"{len(stats.errors)} unexpected client errors, first: "
                              f"{stats.errors[:5]}")
    h.check(stats.expected_errors["savepoint_duplicate"] > 0, "workload ran no savepoint txn")
    for name in ("insert", "hot_update", "delete", "savepoint_txn", "rollback_txn", "copy_in",
                 "prepared"):
        h.check(stats.ops[name] > 0, f"workload ran no {name}")
    h.check(not stats3.errors, f"{len(stats3.errors)} unexpected psycopg3 client errors, first: "
                               f"{stats3.errors[:5]}")
    for name in PSYCOPG3_OPS:
        h.check(stats3.ops[name] > 0, f"psycopg3 workload ran no {name}")
    for name in ("savepoint_duplicate", "pipeline_duplicate"):
        h.check(stats3.expected_errors[name] > 0, f"psycopg3 workload provoked no {name}")
    return stats


def proxy_summary(dw):
    """Mirror metrics and journal kinds, to say what the proxy itself noticed."""
    m = dw.metrics()
    mirror = {l.get("result"): v for n, l, v in m.samples if n == "cutover_mirror_writes_total"}
    up = {l.get("store"): v for n, l, v in m.samples if n == "cutover_store_up"}
    journal = dw.journal()
    kinds = collections.Counter(d.get("kind") for d in journal)
    first = {}
    for d in journal:
        first.setdefault(d.get("kind"), d)
    return (f"proxy: mirror_writes_total {mirror}, store_up {up}, divergences_total "
            f"{m.get('cutover_divergences_total')}; journal {len(journal)} lines {dict(kinds)}, "
            f"first of each kind: {list(first.values())}")


def check_journal_and_metrics_clean(ctx, dw, what):
    if dw.direct:
        return skip(ctx, "divergence journal and /metrics")
    journal = dw.journal()
    bad = divergence_lines(journal)
    h.check(not bad, f"{what}: {len(bad)} divergences journaled, first: {bad[:3]}")
    m = dw.metrics()
    diverged = m.get("cutover_mirror_writes_total", result="diverged")
    ok = m.get("cutover_mirror_writes_total", result="ok")
    h.check_eq(diverged, 0, f"{what}: cutover_mirror_writes_total{{result=\"diverged\"}}")
    h.check(ok > 0, f"{what}: cutover_mirror_writes_total{{result=\"ok\"}} is {ok}: "
                    "nothing was mirrored")
    nondet = m.get("cutover_mirror_writes_total", result="nondeterministic")
    ctx.log(f"{what}: mirror_writes ok={ok:.0f} "
            f"error={m.get('cutover_mirror_writes_total', result='error'):.0f} "
            f"nondeterministic={nondet:.0f} diverged=0; journal: {len(journal)} lines, "
            "all nondeterministic")


def check_mixed_workload_sync(ctx):
    db = "dw_sync"
    fresh_db(ctx, db)
    dw = DualWrite(ctx, writes="dual", mirror="sync",
                   mirror_timeout_ms=WORKLOAD_MIRROR_TIMEOUT_MS)
    full_workload(ctx, dw, db)
    check_same_contents(ctx, db, dw=dw)
    if dw.direct:
        altered_copy_is_reported(ctx, db)
    check_journal_and_metrics_clean(ctx, dw, "dual+sync")
    if not dw.direct:
        m = dw.metrics()
        h.check_eq(m.get("cutover_statements_total", kind="write", served_by="new"), 0,
                   "writes served by new in writes: dual")
    dw.stop()


def wait_drained(dw, what):
    """mirror: async: waits until every write acknowledged so far is applied on new (the queue
    gauge is 0); returns the depth seen first."""
    t0 = time.monotonic()
    first = queued = dw.metrics().get("cutover_mirror_queue_units")
    while queued > 0:
        h.check(time.monotonic() - t0 < ASYNC_DRAIN_S,
                f"{queued:.0f} writes still queued for new {ASYNC_DRAIN_S}s after {what}; " + proxy_summary(dw))
        time.sleep(0.2)
        queued = dw.metrics().get("cutover_mirror_queue_units")
    return first


def settled_contents(ctx, dw, db, mirror, what):
    """Both stores' contents once `what` is applied everywhere (async: the queue drained),
    compared row by row (check_same_contents), and nothing journaled."""
    if not ctx.direct and mirror == "async":
        wait_drained(dw, what)
    contents = check_same_contents(ctx, db, dw=dw)
    if not ctx.direct:
        h.check_eq(dw.journal(), [], f"{mirror}: divergences.jsonl")
    return contents


def check_mixed_workload_async(ctx):
    """mirror: async: the same workload; once cutover_mirror_queue_units is back to 0 (every
    acknowledged write applied on new), the stores are identical, md5-chained hot rows included:
    new applied conflicting writes of different sessions in old's order."""
    db = "dw_async"
    fresh_db(ctx, db)
    # Queues large enough for the whole run: on two loaded cores new can fall 10,000 writes behind
    # pgbench's session (the default bound), and the overflow is journaled queue_full — correct,
    # but then the stores differ by design and this check is about the order of what is applied.
    dw = DualWrite(ctx, writes="dual", mirror="async", mirror_timeout_ms=WORKLOAD_MIRROR_TIMEOUT_MS,
                   mirror_queue_units=200000, mirror_queue_bytes=256 * 1024 * 1024)
    full_workload(ctx, dw, db)
    if not dw.direct:
        t0 = time.monotonic()
        peak = wait_drained(dw, "the workload")
        ctx.log(f"queues drained {time.monotonic() - t0:.1f}s after the workload ended "
                f"({peak:.0f} writes were still queued when it ended)")
    check_same_contents(ctx, db, dw=dw)
    check_journal_and_metrics_clean(ctx, dw, "dual+async")
    dw.stop()


def check_dual_new_sync(ctx):
    db = "dw_new"
    fresh_db(ctx, db)
    dw = DualWrite(ctx, writes="dual-new", mirror="sync",
                   mirror_timeout_ms=WORKLOAD_MIRROR_TIMEOUT_MS)
    full_workload(ctx, dw, db)
    check_same_contents(ctx, db, dw=dw)
    check_journal_and_metrics_clean(ctx, dw, "dual-new+sync")
    if not dw.direct:
        h.check_eq(dw.metrics().get("cutover_statements_total", kind="write", served_by="old"),
                   0, "writes served by old in writes: dual-new")

    # Whose answer does the client get? One table, created directly on each store (not through
    # the proxy) with a different column DEFAULT: the default tells the stores apart.
    for c, origin in ((ctx.old, "old"), (ctx.new, "new")):
        if c is ctx.new and ctx.direct:
            continue
        c.psql(f"CREATE TABLE origin_marker (id int PRIMARY KEY, origin text DEFAULT '{origin}')",
               db=db)
    want = "old" if ctx.direct else "new"
    conn = dw.connect(db)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO origin_marker (id) VALUES (1) RETURNING origin")
        h.check_eq(cur.fetchone()[0], want, "RETURNING of a write in writes: dual-new")
        cur.execute("BEGIN")
        cur.execute("SELECT origin FROM origin_marker WHERE id = 1")
        h.check_eq(cur.fetchone()[0], want, "read inside a transaction in writes: dual-new")
        cur.execute("COMMIT")
    conn.close()
    for c, origin in ((ctx.old, "old"), (ctx.new, "new")):
        if not (c is ctx.new and ctx.direct):
            h.check_eq(c.psql("SELECT origin FROM origin_marker", db=db).strip(), origin,
                       f"origin_marker row in {c.name} (each store applies its own default)")
    if dw.direct:
        skip(ctx, "the client sees new's answers; divergence journal")
    else:
        # The stores' RETURNING rows differ ('new' vs 'old'): never silent.
        lines = [d for d in dw.journal() if "origin_marker" in d.get("statement", "")]
        h.check(lines, "RETURNING 'new' on new vs 'old' on old was not journaled as a divergence")
        ctx.log(f"origin_marker divergence journaled: {lines[0].get('kind')} "
                f"{lines[0].get('authoritative_outcome')!r} vs "
                f"{lines[0].get('secondary_outcome')!r}")
    dw.stop()


# ---------------------------------------------------------------------------------------------
# The read ramp


def check_read_ramp(ctx):
    db = "ramp"
    fresh_db(ctx, db)
    for c, who in ((ctx.old, "old"), (ctx.new, "new")):
        if c is ctx.new and ctx.direct:
            continue
        # Directly on each store, not through the proxy: the answer names the store.
        c.psql(f"CREATE TABLE whoami (v text); INSERT INTO whoami VALUES ('{who}');"
               "CREATE TABLE ramp_writes (session int PRIMARY KEY)", db=db)
    dw = DualWrite(ctx, writes="dual", mirror="sync", reads_new_percent=RAMP_PERCENT,
                   sticky="session")
    before = None if dw.direct else dw.metrics()
    answers = [None] * RAMP_SESSIONS
    errors = []
    lock = threading.Lock()
    next_session = iter(range(RAMP_SESSIONS))

    def worker():
        while True:
            with lock:
                s = next(next_session, None)
            if s is None:
                return
            try:
                conn = dw.connect(db)
                with conn.cursor() as cur:
                    reads = []
                    for _ in range(RAMP_READS_PER_SESSION):
                        cur.execute("SELECT v FROM whoami")
                        reads.append(cur.fetchone()[0])
                    cur.execute("BEGIN")
                    cur.execute("SELECT v FROM whoami")
                    in_txn = cur.fetchone()[0]
                    cur.execute("COMMIT")
                    cur.execute("INSERT INTO ramp_writes VALUES (%s)", (s,))
                    cur.execute("SELECT v FROM whoami FOR UPDATE")  # locking clause: a write
                    locking = cur.fetchone()[0]
                conn.close()
                answers[s] = (reads, in_txn, locking)
            except Exception as e:
                with lock:
                    errors.append((s, f"{type(e).__name__}: {e}"))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    join_all(threads, 300)
    h.check(not errors, f"{len(errors)} sessions failed, first: {errors[:3]}")
    mixed = [(s, a[0]) for s, a in enumerate(answers) if len(set(a[0])) != 1]
    h.check(not mixed, f"{len(mixed)} sessions were served by both stores (sticky: session), "
                       f"first: {mixed[:5]}")
    not_old = [(s, a[1], a[2]) for s, a in enumerate(answers) if a[1] != "old" or a[2] != "old"]
    h.check(not not_old, f"{len(not_old)} sessions got a transaction read or a SELECT … FOR "
                         f"UPDATE from new (must be the authoritative old), first: {not_old[:5]}")
    by_new = sum(a[0][0] == "new" for a in answers)
    pct = 100.0 * by_new / RAMP_SESSIONS
    ctx.log(f"{by_new} of {RAMP_SESSIONS} sessions served by new ({pct:.1f} %)")
    h.check_eq(int(ctx.old.psql("SELECT count(*) FROM ramp_writes", db=db)), RAMP_SESSIONS,
               "ramp_writes rows on old")
    if dw.direct:
        skip(ctx, "share served by new, writes mirrored, /metrics served_by")
        dw.stop()
        return
    h.check(abs(pct - RAMP_PERCENT) <= RAMP_TOLERANCE,
            f"{pct:.1f} % of sessions served by new, want {RAMP_PERCENT} ± {RAMP_TOLERANCE}")
    h.check_eq(int(ctx.new.psql("SELECT count(*) FROM ramp_writes", db=db)), RAMP_SESSIONS,
               "ramp_writes rows on new (writes mirrored)")
    after = dw.metrics()

    def delta(**labels):
        return after.since(before, "cutover_statements_total", **labels)
    got = {k: delta(kind=k.split("/")[0], served_by=k.split("/")[1])
           for k in ("read/new", "read/old", "write/new", "write/old")}
    ctx.log(f"/metrics statements_total deltas: {got}")
    reads_new = by_new * RAMP_READS_PER_SESSION
    reads_old = (RAMP_SESSIONS - by_new) * RAMP_READS_PER_SESSION + RAMP_SESSIONS  # + in-txn
    h.check_eq(got["read/new"], reads_new,
               "cutover_statements_total{kind=read,served_by=new} increase (sessions by new x "
               f"{RAMP_READS_PER_SESSION})")
    h.check_eq(got["read/old"], reads_old,
               "cutover_statements_total{kind=read,served_by=old} increase (other sessions' "
               "reads + one read inside a transaction per session)")
    h.check_eq(got["write/new"], 0, "cutover_statements_total{kind=write,served_by=new} increase")
    h.check_eq(got["write/old"], 2 * RAMP_SESSIONS,
               "cutover_statements_total{kind=write,served_by=old} increase (INSERT and "
               "SELECT … FOR UPDATE per session)")
    h.check_eq(after.get("cutover_read_fallbacks_total"), 0, "read fallbacks (new is up)")
    dw.stop()


# ---------------------------------------------------------------------------------------------
# The new store dies mid-run


KILL_SCHEMA = f"""
CREATE TABLE events (id bigint PRIMARY KEY, client int NOT NULL, note text);
CREATE TABLE txn_rows (id bigint PRIMARY KEY, txn text NOT NULL);
CREATE TABLE hot (id int PRIMARY KEY, n bigint NOT NULL);
INSERT INTO hot SELECT g, 0 FROM generate_series(1, {HOT_ROWS}) g;
"""


READER = 5  # the kill workload's read-only client


def kill_workload(dw, db, no, deadline, stats, log):
    """Autocommit inserts and hot-row updates, (client 0) 3-insert transactions, or (client
    READER) reads, which go to new (reads_new_percent: 100) until it dies, then fall back. Every
    statement carries a marker comment /*m:<token>*/ naming what it wrote, so each write missing
    on new can be looked up in the journal. `log` collects (token, kind, detail)."""
    rng = random.Random(no)
    seq = 0
    try:
        conn = dw.connect(db)
    except Exception as e:
        return stats.error(no, "connect", e)
    while time.monotonic() < deadline:
        seq += 1
        try:
            with conn.cursor() as cur:
                if no == 0:
                    t = f"t{seq}"
                    cur.execute(f"BEGIN /*m:{t}*/")
                    for k in range(3):
                        cur.execute(f"INSERT INTO txn_rows VALUES (%s, %s) /*m:{t}*/",
                                    (seq * 10 + k, t))
                    cur.execute(f"COMMIT /*m:{t}*/")
                    h.check_eq(cur.statusmessage, "COMMIT", "commit tag")
                    log.append((t, "txn", seq))
                    stats.op("txn")
                elif no == READER:
                    cur.execute("SELECT count(*) FROM hot")  # reads_new_percent: 100
                    h.check_eq(cur.fetchone()[0], HOT_ROWS, "rows of hot")
                    stats.op("read")
                elif seq % 2:
                    i = no * 1_000_000 + seq
                    cur.execute(f"INSERT INTO events VALUES (%s, %s, 'e') /*m:e{i}*/", (i, no))
                    log.append((f"e{i}", "event", i))
                    stats.op("insert")
                else:
                    r = rng.randint(1, HOT_ROWS)
                    tok = f"h{no}.{seq}"
                    cur.execute(f"UPDATE hot SET n = n + 1 WHERE id = %s /*m:{tok}*/", (r,))
                    h.check_eq(cur.statusmessage, "UPDATE 1", "hot update tag")
                    log.append((tok, "hot", r))
                    stats.op("hot_update")
        except Exception as e:
            stats.error(no, "write", e)
            try:
                conn.close()
                conn = dw.connect(db)
            except Exception as e2:
                stats.error(no, "reconnect", e2)
                time.sleep(0.2)
        time.sleep(0.005)
    conn.close()


def check_new_store_killed(ctx):
    new_store_killed(ctx, "sync")


def check_new_store_killed_async(ctx):
    """The same with mirror: async: what was queued for new when it died is journaled too."""
    new_store_killed(ctx, "async")


def new_store_killed(ctx, mirror):
    db = f"kill_{mirror}"
    fresh_db(ctx, db)
    dw = DualWrite(ctx, writes="dual", mirror=mirror, reads_new_percent=100)
    conn = dw.connect(db)
    with conn.cursor() as cur:
        cur.execute(KILL_SCHEMA)
    conn.close()
    if not dw.direct:
        # async: another session's reads ramped to new do not wait for this session's queue
        # (only its own reads do), so the schema must be on new before the readers start.
        wait_drained(dw, "the schema")
        h.check_eq(dw.metrics().get("cutover_store_up", store="new"), 1, "store_up{new} at start")
    stats, log = Stats(), []
    deadline = time.monotonic() + KILL_BEFORE_S + KILL_DOWN_S
    threads = [threading.Thread(target=kill_workload, daemon=True, name=f"kill-client-{no}",
                                args=(dw, db, no, deadline, stats, log))
               for no in range(READER + 1)]
    for t in threads:
        t.start()
    time.sleep(KILL_BEFORE_S)
    if dw.direct:
        skip(ctx, "stopping new (not behind a --direct target); workload and accounting run on "
                  "old alone")
    else:
        t0 = time.monotonic()
        ctx.new.stop(mode="immediate")
        ctx.log(f"new stopped -m immediate in {time.monotonic() - t0:.2f}s")
    join_all(threads, KILL_DOWN_S + MIRROR_TIMEOUT_MS / 1000 + 60, [ctx.old, ctx.new])
    ctx.log(f"workload: {stats.summary()}")
    h.check(not stats.errors, f"{len(stats.errors)} client errors while new was down, first: "
                              f"{stats.errors[:5]}")

    if not dw.direct:
        m = dw.metrics()
        h.check_eq(m.get("cutover_store_up", store="new"), 0, "store_up{new} while new is down")
        h.check_eq(m.get("cutover_store_up", store="old"), 1, "store_up{old} while new is down")
        h.check(m.get("cutover_divergences_total") > 0,
                "cutover_divergences_total is 0 after writes missed new")
        h.check(m.get("cutover_statements_total", kind="read", served_by="new") > 0,
                "no read served by new before it was stopped (reads_new_percent: 100)")
        h.check(m.get("cutover_read_fallbacks_total") > 0,
                "cutover_read_fallbacks_total is 0: reads for the dead new store not counted")
        ctx.log(f"while down: divergences_total={m.get('cutover_divergences_total'):.0f}, "
                f"read_fallbacks={m.get('cutover_read_fallbacks_total'):.0f}, "
                f"mirror_writes error={m.get('cutover_mirror_writes_total', result='error'):.0f}"
                f" dropped={m.get('cutover_mirror_writes_total', result='dropped'):.0f}")
        ctx.new.start()
        t0 = time.monotonic()
        while True:
            up = dw.metrics().get("cutover_store_up", store="new")
            if up == 1 or time.monotonic() - t0 > RECONNECT_LIMIT_S:
                break
            time.sleep(0.2)
        h.check_eq(up, 1, f"store_up{{new}} {RECONNECT_LIMIT_S}s after new was restarted")
        ctx.log(f"store_up{{new}} back to 1 {time.monotonic() - t0:.1f}s after the restart")

    # Every write on old that new lacks must be journaled (secondary_unavailable/_timeout).
    newer = peer(ctx)
    journal = [] if dw.direct else dw.journal()
    kinds = collections.Counter(d.get("kind") for d in journal)
    bad_kinds = {k for k in kinds if k not in ("secondary_unavailable", "secondary_timeout")}
    h.check(not bad_kinds, "journal kinds other than secondary_unavailable/_timeout: "
                           f"{bad_kinds}; first: "
                           f"{[d for d in journal if d.get('kind') in bad_kinds][:3]}")
    journaled = collections.Counter()
    for d in journal:
        for tok in re.findall(r"/\*m:([\w.]+)\*/", d.get("statement", "")):
            journaled[tok] += 1

    def ids(cluster, q):
        return set(cluster.psql(q, db=db).split())
    missing_events = ids(ctx.old, "SELECT id FROM events") - ids(newer, "SELECT id FROM events")
    extra_events = ids(newer, "SELECT id FROM events") - ids(ctx.old, "SELECT id FROM events")
    h.check(not extra_events, f"events on new that old does not have: {sorted(extra_events)[:5]}")
    unjournaled = sorted(i for i in missing_events if journaled[f"e{i}"] == 0)
    h.check(not unjournaled, f"{len(unjournaled)} of {len(missing_events)} inserts missing on new "
                             f"have no journal line, first ids: {unjournaled[:5]}")
    missing_txns = (ids(ctx.old, "SELECT DISTINCT txn FROM txn_rows")
                    - ids(newer, "SELECT DISTINCT txn FROM txn_rows"))
    unjournaled = sorted(t for t in missing_txns if journaled[t] == 0)
    h.check(not unjournaled, f"{len(unjournaled)} of {len(missing_txns)} transactions missing on "
                             f"new have no journal line, first: {unjournaled[:5]}")
    hot_old = dict(r.split("|") for r in ctx.old.psql("SELECT id, n FROM hot", db=db).split())
    hot_new = dict(r.split("|") for r in newer.psql("SELECT id, n FROM hot", db=db).split())
    hot_journaled = collections.Counter(r for tok, kind, r in log
                                        if kind == "hot" and journaled[tok])
    for r in sorted(hot_old):
        lost = int(hot_old[r]) - int(hot_new[r])
        h.check(0 <= lost <= hot_journaled[int(r)],
                f"hot row {r}: old n={hot_old[r]}, new n={hot_new[r]}, but only "
                f"{hot_journaled[int(r)]} of its updates journaled")
    ctx.log(f"missed on new: {len(missing_events)} inserts, {len(missing_txns)} transactions, "
            f"{sum(int(hot_old[r]) - int(hot_new[r]) for r in hot_old)} hot updates; journal: "
            f"{len(journal)} lines {dict(kinds)}")
    if not dw.direct:
        h.check(missing_events or missing_txns, "no write missed new: was it really stopped?")

    # A session opened after the restart mirrors again.
    conn = dw.connect(db)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO events VALUES (-1, -1, 'after restart')")
    conn.close()
    if not dw.direct:
        wait_drained(dw, "the write after the restart")
    h.check_eq(newer.psql("SELECT note FROM events WHERE id = -1", db=db).strip(),
               "after restart", "write of a session opened after the restart, read on new")
    dw.stop()


# ---------------------------------------------------------------------------------------------
# A divergence the proxy must report


def check_divergence_detected(ctx):
    db = "div"
    fresh_db(ctx, db)
    dw = DualWrite(ctx, writes="dual", mirror="sync")
    conn = dw.connect(db)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)")
    cur.execute("INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)")
    check_same_contents(ctx, db)
    if dw.direct:
        skip(ctx, "changing new behind the proxy's back, tag_mismatch and error_one_side")
        conn.close()
        return dw.stop()
    h.check_eq(dw.journal(), [], "journal before the divergence")
    ctx.new.psql("DELETE FROM t WHERE id = 1; INSERT INTO t VALUES (4, 40)", db=db)

    cur.execute("UPDATE t SET v = v + 1 WHERE id = 1")
    h.check_eq(cur.statusmessage, "UPDATE 1", "tag the client got (old's)")
    # sync: the journal line is appended and fsync'd before the client is answered.
    lines = [d for d in dw.journal() if "UPDATE t SET v = v + 1" in d.get("statement", "")]
    h.check(lines, f"no journal line for the UPDATE; journal: {dw.journal()}")
    d = lines[0]
    h.check_eq((d.get("kind"), d.get("authoritative_store"), d.get("secondary_store"),
                d.get("authoritative_outcome"), d.get("secondary_outcome")),
               ("tag_mismatch", "old", "new", "UPDATE 1", "UPDATE 0"), "tag_mismatch journal line")
    for key in ("time", "session_id", "statement"):
        h.check(d.get(key) not in (None, ""), f"journal line without {key}: {d}")

    cur.execute("INSERT INTO t VALUES (4, 41)")  # duplicate key on new only
    h.check_eq(cur.statusmessage, "INSERT 0 1", "tag the client got (old's)")
    lines = [d for d in dw.journal() if "INSERT INTO t VALUES (4, 41)" in d.get("statement", "")]
    h.check(lines, f"no journal line for the INSERT failing on new only; journal: {dw.journal()}")
    h.check_eq(lines[0].get("kind"), "error_one_side", f"journal line kind: {lines[0]}")
    h.check("23505" in lines[0].get("secondary_outcome", ""),
            f"secondary outcome does not name 23505: {lines[0]}")
    h.check_eq(lines[0].get("session_id"), d.get("session_id"), "session_id of both lines")
    conn.close()

    m = dw.metrics()
    h.check(m.get("cutover_divergences_total") >= 2,
            f"cutover_divergences_total {m.get('cutover_divergences_total')}, want >= 2")
    h.check(m.get("cutover_mirror_writes_total", result="diverged")
            + m.get("cutover_mirror_writes_total", result="error") >= 2,
            "cutover_mirror_writes_total{result=diverged|error} < 2 after two divergences")
    h.check_eq(dw.journal()[0].get("authoritative_outcome"), "UPDATE 1", "first journal line")
    h.check_eq(ctx.old.psql("SELECT id, v FROM t ORDER BY id", db=db).split(),
               ["1|11", "2|20", "3|30", "4|41"], "old (authoritative) after the statements")
    dw.stop()


def check_cancel_reaches_every_store(ctx):
    """A client's cancel reaches every store the session works on: a mirrored UPDATE stuck on a
    row lock held on new (behind the proxy's back) is cancelled there, so the client is answered
    (old's tag) well before mirror_timeout_ms, and the miss is journaled with new's 57014."""
    db = "cancel"
    fresh_db(ctx, db)
    dw = DualWrite(ctx, writes="dual", mirror="sync", mirror_timeout_ms=20000)
    if dw.direct:
        skip(ctx, "a lock held on new only")
        return dw.stop()
    conn = dw.connect(db)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)")
    cur.execute("INSERT INTO t VALUES (1, 10)")
    locker = ctx.new.connect(db=db)
    lcur = locker.cursor()
    lcur.execute("SELECT * FROM t WHERE id = 1 FOR UPDATE")   # psycopg2 opens a transaction: the lock stays
    try:
        canceller = threading.Timer(1.0, conn.cancel)
        canceller.start()
        t0 = time.monotonic()
        cur.execute("UPDATE t SET v = v + 1 WHERE id = 1")
        elapsed = time.monotonic() - t0
        canceller.join()
        h.check_eq(cur.statusmessage, "UPDATE 1", "the client's answer (old's)")
        h.check(elapsed < 10, f"the client waited {elapsed:.1f} s: the cancel did not reach new")
        lines = [d for d in dw.journal() if "UPDATE t SET v = v + 1" in d.get("statement", "")]
        h.check(lines and "57014" in lines[0].get("secondary_outcome", ""),
                f"journal line for the cancelled mirror: {dw.journal()}")
        ctx.log(f"mirrored UPDATE stuck on new answered {elapsed:.2f} s after it was sent (cancel at 1 s)")
    finally:
        locker.rollback()
        locker.close()
        conn.close()
    dw.stop()


def altered_copy_is_reported(ctx, db):
    """--direct: the workload's own database against a copy with one hot row's md5 chain and
    one pgbench_history row changed: both differences are reported."""
    copy = db + "_altered"
    ctx.old.psql(f'DROP DATABASE IF EXISTS "{copy}"; CREATE DATABASE "{copy}" TEMPLATE "{db}"')
    ctx.old.psql("UPDATE counters SET h = md5(h) WHERE id = 3;"
                 "DELETE FROM pgbench_history WHERE ctid = (SELECT min(ctid) FROM pgbench_history)",
                 db=copy)
    problems = compare_dumps(dump_store(ctx.old, db), dump_store(ctx.old, copy), db, copy)
    h.check_eq([p.split()[0] for p in problems], ["public.counters", "public.pgbench_history"],
               f"tables reported different in an altered copy: {problems}")
    ctx.log(f"altered copy of {db}: " + " | ".join(p[:200] for p in problems))
    ctx.old.psql(f'DROP DATABASE "{copy}"')


def check_comparison_catches_difference(ctx):
    """The comparison itself: a store equals itself, and an altered copy is reported."""
    db, copy = "cmp", "cmp_copy"
    h.fresh_database(db, ctx.old)
    ctx.old.psql("CREATE TABLE a (id int PRIMARY KEY, v text, n numeric);"
                 "INSERT INTO a SELECT g, 'v' || g, g / 3.0 FROM generate_series(1, 1000) g;"
                 "INSERT INTO a VALUES (0, NULL, NULL);"
                 "CREATE TABLE nokey (x int, y text);"
                 "INSERT INTO nokey VALUES (1, 'dup'), (1, 'dup'), (2, NULL);"
                 "CREATE SCHEMA s; CREATE TABLE s.b (k text);"
                 "INSERT INTO s.b VALUES ('é'), ('e'), ('Z')", db=db)
    ctx.old.psql(f'DROP DATABASE IF EXISTS "{copy}"; CREATE DATABASE "{copy}" TEMPLATE "{db}"')
    h.check_eq(compare_dumps(dump_store(ctx.old, db), dump_store(ctx.old, db)), [],
               "a store compared with itself")
    h.check_eq(compare_dumps(dump_store(ctx.old, db), dump_store(ctx.old, copy)), [],
               "a store compared with an unaltered copy")
    ctx.old.psql("UPDATE a SET v = 'changed' WHERE id = 500;"
                 "DELETE FROM nokey WHERE ctid = (SELECT min(ctid) FROM nokey WHERE x = 1);"
                 "ALTER TABLE s.b ADD COLUMN extra int", db=copy)
    problems = compare_dumps(dump_store(ctx.old, db), dump_store(ctx.old, copy), "orig", "copy")
    h.check_eq(len(problems), 3, f"differences found: {problems}")
    h.check("public.a" in problems[0] and "('500', 'v500'" in problems[0]
            and "('500', 'changed'" in problems[0], f"row difference in a: {problems[0]}")
    h.check("public.nokey" in problems[1] and "1 only in orig" in problems[1]
            and "('1', 'dup')" in problems[1], f"duplicate-row difference: {problems[1]}")
    h.check("s.b" in problems[2] and "columns differ" in problems[2],
            f"column difference: {problems[2]}")
    ctx.log("comparison reports: " + " | ".join(p[:160] for p in problems))
    ctx.old.psql(f'DROP DATABASE "{copy}"; DROP DATABASE "{db}"')


def check_large_batches(ctx):
    """Routed mode takes a client's messages a unit at a time: a psycopg3 pipeline far larger
    than the proxy's input buffer before its Sync (executemany, 20,000 rows, about 5 MB), and a
    single 3 MB message, must neither stall nor be gathered whole before the serve store starts.
    With mirror_queue_bytes at its minimum (64 KiB) the secondary cannot have the big batch: the
    miss is journaled as queue_full, and the client still succeeds."""
    if psycopg is None:
        raise h.CheckFailed("psycopg3 is not installed (python3-psycopg)")
    for mirror, queue_bytes in (("sync", None), ("async", None), ("sync", 65536), ("async", 65536)):
        db = f"big_{mirror}_{queue_bytes or 'default'}"
        fresh_db(ctx, db)
        extra = {} if queue_bytes is None else {"mirror_queue_bytes": queue_bytes}
        dw = DualWrite(ctx, writes="dual", mirror=mirror, mirror_timeout_ms=WORKLOAD_MIRROR_TIMEOUT_MS, **extra)
        ep = dw.endpoint()
        with psycopg.connect(host=ep.host, port=ep.port, user=ep.fixed_user or "postgres", dbname=db, autocommit=True,
                             connect_timeout=10) as conn:
            conn.execute("CREATE TABLE big (id int PRIMARY KEY, v text, b bytea)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO big (id, v) VALUES (%s, %s)",
                                [(i, f"row {i} " + "x" * 200) for i in range(20000)])
            conn.execute("INSERT INTO big (id, b) VALUES (%s, %s)", (-1, bytes(range(256)) * 12288))
            h.check_eq(conn.execute("SELECT count(*), sum(length(b)) FROM big").fetchone(), (20001, 3145728),
                       f"{db}: rows and bytes the client reads back")
        if dw.direct:
            dw.stop()
            continue
        if mirror == "async":
            wait_drained(dw, "the large batches")
        kinds = collections.Counter(d.get("kind") for d in dw.journal())
        if queue_bytes is None:
            check_same_contents(ctx, db, dw=dw)
            h.check_eq(dict(kinds), {}, f"{db}: divergences.jsonl")
        else:
            h.check(kinds.get("queue_full", 0) >= 1 and set(kinds) == {"queue_full"},
                    f"{db}: the batches too large for mirror_queue_bytes are journaled as queue_full: {dict(kinds)}")
            h.check(dw.metrics().get("cutover_mirror_writes_total", result="dropped") >= 1,
                    f"{db}: mirror_writes_total{{dropped}}")
        ctx.log(f"{db}: 20,000-row pipeline and a 3 MB message through mirror {mirror}; journal {dict(kinds)}")
        dw.stop()


def check_temp_tables_and_the_ramp(ctx):
    """A temporary table exists only on the connections that created it. One created before the
    session was routed (pass-through, writes: old) lives on old alone: after a flip to
    `reads_new_percent: 100` that session's reads of it must still work (they stay on old). One
    created once the session mirrors to new exists on both: its reads may go to new."""
    if ctx.direct:
        return skip(ctx, "temporary tables across a flag flip (needs the proxy's admin API)")
    db = "temp_ramp"
    fresh_db(ctx, db)
    token = "dual-write-test-token"
    dw = DualWrite(ctx, writes="old", admin={"token_env": "DW_TOKEN"}, env={"DW_TOKEN": token})
    early = dw.connect(db)
    with early.cursor() as cur:
        cur.execute("CREATE TEMP TABLE early_tmp (a int)")
        cur.execute("INSERT INTO early_tmp VALUES (1), (2)")
    status, answer = h.admin_request(dw.admin_port, "PUT", "/flags",
                                     {"writes": "dual", "reads_new_percent": 100, "reason": "temp table test"},
                                     token=token)
    h.check_eq(status, 200, f"PUT /flags: {answer}")
    with early.cursor() as cur:
        cur.execute("SELECT count(*) FROM early_tmp")
        h.check_eq(cur.fetchone()[0], 2, "the early session reads its temporary table after the flip")
        cur.execute("SELECT 1")   # and its other reads stay on old too
    late = dw.connect(db)
    m0 = dw.metrics()
    with late.cursor() as cur:
        cur.execute("CREATE TEMP TABLE late_tmp (a int)")
        cur.execute("INSERT INTO late_tmp VALUES (1)")
        cur.execute("SELECT count(*) FROM late_tmp")
        h.check_eq(cur.fetchone()[0], 1, "a session routed from the start reads its temporary table")
    m1 = dw.metrics()
    h.check_eq(m1.since(m0, "cutover_statements_total", kind="read", served_by="new"), 1.0,
               "its read went to new, where the mirrored CREATE TEMP TABLE made the table too")
    early.close()
    late.close()
    h.check_eq([d for d in dw.journal()], [], "divergences.jsonl")
    dw.stop()


def _wait_idle_on(cluster, db, pid, limit=10.0):
    """Polls new's pg_stat_activity until backend `pid` is idle; its last state otherwise."""
    deadline = time.monotonic() + limit
    state = None
    while time.monotonic() < deadline:
        state = cluster.psql(f"SELECT state FROM pg_stat_activity WHERE pid = {pid}", db=db).strip()
        if state.startswith("idle"):
            return state
        time.sleep(0.1)
    return state


def _session_backends(cluster, db):
    """Pids of `cluster`'s client backends in `db` other than psql's own: the proxy session's
    connection there, in a check with one client (pg_backend_pid() through the proxy is a catalog
    read, answered by old; a ramped read's last statement there is the proxy's COMMIT)."""
    deadline = time.monotonic() + 5   # a closed session's backend may take a moment to exit
    while True:
        out = cluster.psql("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                           "AND backend_type = 'client backend' AND pid <> pg_backend_pid() ORDER BY pid", db=db)
        pids = [int(line) for line in out.split()]
        if len(pids) <= 1 or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def check_ramped_read_timeout(ctx):
    """ramp_read_timeout_ms. A read ramped to new that sends nothing in time is cancelled on new
    and served by old, with no client error. A slow new (a lock held there behind the proxy's
    back) keeps its connection: once the cancel is through, writes mirror and reads ramp as
    before, and nothing is journaled. A stalled new (its backend SIGSTOPped) answers nothing:
    the session's next reads go to old at once, and a write waits at most mirror_timeout_ms before
    it runs on old alone, its miss journaled; the next write waits for the session's reconnection
    and reaches new. (Without the timeout both reads hang.) A driver's
    first execution of a statement it prepares runs on both stores, answered by old: with new
    stalled it returns once mirror_timeout_ms passed."""
    if ctx.direct:
        return skip(ctx, "reads ramped to a store that does not answer")
    db = "ramp_timeout"
    fresh_db(ctx, db)
    old_port, new_port = ctx.old.port, ctx.new.port
    probe = "SELECT v, inet_server_port() FROM t WHERE id = 1"

    # A slow new: a lock held there. Every read is shadowed on old too.
    dw = DualWrite(ctx, reads_new_percent=100, ramp_read_timeout_ms=1000, mirror_timeout_ms=20000,
                   shadow_percent=100, log_level="debug")
    conn = dw.connect(db)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)")
    cur.execute("INSERT INTO t VALUES (1, 10)")
    m0 = dw.metrics()   # the writes above are not shadowed; every read from here on is
    cur.execute(probe)
    v, port = cur.fetchone()
    h.check_eq((v, port), (10, new_port), "the probe read is ramped to new")
    pids = _session_backends(ctx.new, db)
    h.check_eq(len(pids), 1, f"new's backends that ran the probe: {pids}")
    new_pid = pids[0]
    locker = ctx.new.connect(db=db)
    lcur = locker.cursor()
    lcur.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")   # psycopg2 opened a transaction: held
    try:
        cur.execute(probe)
        v, port = cur.fetchone()
        h.check_eq((v, port), (10, old_port), "the read stuck on new's lock is answered by old")
        state = _wait_idle_on(ctx.new, db, new_pid)
        h.check(state is not None and state.startswith("idle"),
                f"the read given up on new is cancelled there (backend {new_pid}: {state!r})")
    finally:
        locker.rollback()
        locker.close()
    cur.execute("UPDATE t SET v = 11 WHERE id = 1")
    h.check_eq(cur.statusmessage, "UPDATE 1", "a write after the given-up read")
    h.check_eq(ctx.new.psql("SELECT v FROM t WHERE id = 1", db=db).strip(), "11",
               "the write reached new (the cancel did not hit it)")
    cur.execute(probe)
    v, port = cur.fetchone()
    h.check_eq((v, port, _session_backends(ctx.new, db)), (11, new_port, [new_pid]),
               "reads ramp to new again, on the same connection")
    for _ in range(10):
        cur.execute("SELECT v FROM t WHERE id = 1")
        h.check_eq(cur.fetchone(), (11,), "a plain read after the fallback")
    # Every shadow started since m0 is counted once (the two probes', the given-up read's, the
    # ten reads'), whether compared or shed by the session's bound; a shadow left waiting forever
    # for its given-up side would be missing. A shadow may finish just after its client's answer.
    results = ("match", "noisy", "dropped", "error", "mismatch")
    deadline = time.monotonic() + 10
    while True:
        m1 = dw.metrics()
        delta = {r: m1.since(m0, "cutover_shadow_comparisons_total", result=r) for r in results}
        if sum(delta.values()) >= 13 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    ctx.log(f"shadow results since before the first probe: {delta}")
    h.check_eq(m1.since(m0, "cutover_read_fallbacks_total"), 1.0,
               "cutover_read_fallbacks_total increase")
    h.check_eq(sum(delta.values()), 13.0, f"shadow results counted since before the first probe ({delta})")
    h.check(delta["dropped"] >= 1 and delta["error"] == 0 and delta["mismatch"] == 0, f"shadow results: {delta}")
    h.check("dropped: its served read was given up" in dw.tgt.stderr_text(),
            "the given-up read's shadow is dropped (debug log)")
    log = dw.tgt.stderr_text()
    h.check("did not answer a ramped read within ramp_read_timeout_ms (1000 ms)" in log,
            f"the fallback is logged: {log[-1500:]}")
    h.check("lost the new store" not in log, f"the slow store's connection was kept: {log[-1500:]}")
    h.check_eq(dw.journal(), [], "divergences.jsonl")
    conn.close()
    dw.stop()

    # A stalled new: the session's backend there is stopped.
    dw = DualWrite(ctx, reads_new_percent=100, ramp_read_timeout_ms=1000, mirror_timeout_ms=2000)
    conn = dw.connect(db)
    cur = conn.cursor()
    cur.execute(probe)
    v, port = cur.fetchone()
    h.check_eq(port, new_port, "the probe read is ramped to new")
    pids = _session_backends(ctx.new, db)
    h.check_eq(len(pids), 1, f"new's backends that ran the probe: {pids}")
    pid = pids[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        cur.execute(probe)
        h.check_eq(cur.fetchone()[:2], (11, old_port), "the read sent to the stalled new is answered by old")
        cur.execute(probe)
        h.check_eq(cur.fetchone()[:2], (11, old_port), "the next read goes to old (new is fenced)")
        cur.execute("UPDATE t SET v = 12 WHERE id = 1")
        h.check_eq(cur.statusmessage, "UPDATE 1", "a write while new is stalled: old's answer")
        h.check_eq(ctx.old.psql("SELECT v FROM t WHERE id = 1", db=db).strip(), "12", "the write on old")
        lines = [d for d in dw.journal() if "SET v = 12" in d.get("statement", "")]
        h.check(len(lines) == 1 and lines[0].get("kind") == "secondary_timeout",
                f"the write new did not get is journaled as secondary_timeout: {dw.journal()}")
        h.check("lost the new store" in dw.tgt.stderr_text(), "the stalled store is given up for the session")
        # New's postmaster still answers the health check: the session reconnects at its next
        # statement, and (sync) that write waits for the login rather than missing new.
        cur.execute("UPDATE t SET v = 13 WHERE id = 1")
        h.check_eq(ctx.new.psql("SELECT v FROM t WHERE id = 1", db=db).strip(), "13",
                   "the next write reached new over a new connection")
        h.check_eq([d for d in dw.journal() if "SET v = 13" in d.get("statement", "")], [],
                   "journal lines for the write after the reconnection")
    finally:
        os.kill(pid, signal.SIGCONT)
    conn.close()

    # A driver's first execution of a statement it prepares (psycopg3 prepare=True: a named Parse,
    # Bind, Execute, Sync) runs on both stores; with new stalled it is answered by old once
    # mirror_timeout_ms passed, never left waiting for new.
    if psycopg is None:
        raise h.CheckFailed("python3-psycopg (psycopg3) is not installed: run scripts/setup.sh")
    conn3 = psycopg.connect(dw.endpoint().dsn(db=db), autocommit=True)
    pid3 = None
    try:
        (port3,) = conn3.execute("SELECT inet_server_port()").fetchone()
        h.check_eq(port3, new_port, "psycopg3's unnamed read is ramped to new")
        ran = _session_backends(ctx.new, db)
        h.check_eq(len(ran), 1, f"new's backends that ran psycopg3's read: {ran}")
        pid3 = ran[0]
        os.kill(pid3, signal.SIGSTOP)
        result = {}

        def prepared_read():
            try:
                result["row"] = conn3.execute("SELECT v, inet_server_port() FROM t WHERE id = %s", (1,),
                                              prepare=True).fetchone()
            except Exception as e:  # noqa: BLE001 (reported below)
                result["error"] = repr(e)

        t = threading.Thread(target=prepared_read, daemon=True)
        t.start()
        t.join(30)
        h.check(not t.is_alive(), "a named-statement read waited for the stalled new store (no answer in 30 s)")
        h.check_eq(result.get("row"), (13, old_port), f"the named-statement read's answer ({result})")
    finally:
        if pid3 is not None:
            os.kill(pid3, signal.SIGCONT)
        conn3.close()
    dw.stop()


def _rows_on_both(ctx, db, sql, want, timeout=10):
    """`sql`'s rows (psql -At lines) on old and on new, polled until both are `want` (async
    mirroring lands after the client's answer) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [c.psql(sql, db=db).split() for c in (ctx.old, ctx.new)]
        if rows == [want, want] or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def _message(kind, body):
    return kind + struct.pack("!i", len(body) + 4) + body


def _parse(name, sql):
    return _message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def _bind_execute_sync(statement, params=()):
    body = b"\0" + statement.encode() + b"\0" + struct.pack("!hh", 0, len(params))
    for p in params:
        body += struct.pack("!i", len(p)) + p.encode()
    bind = _message(b"B", body + struct.pack("!h", 0))
    return bind + _message(b"E", b"\0" + struct.pack("!i", 0)) + _message(b"S", b"")


def _until_ready(sock):
    """(tags, SQLSTATEs) of the messages up to ReadyForQuery."""
    tags, errors = [], []
    while True:
        kind, body = h.read_message(sock)
        if kind == b"C":
            tags.append(body.rstrip(b"\0").decode())
        elif kind == b"E":
            errors.append(h.error_fields(body).get("C"))
        elif kind == b"Z":
            return tags, errors


def _bind_execute_flush(statement, max_rows):
    bind = _message(b"B", b"\0" + statement.encode() + b"\0" + struct.pack("!hhh", 0, 0, 0))
    return bind + _message(b"E", b"\0" + struct.pack("!i", max_rows)) + _message(b"H", b"")


def _rows_until(sock, ends):
    """(first column of each DataRow, the type of the message that ended it) up to one of `ends`."""
    rows = []
    while True:
        kind, body = h.read_message(sock)
        if kind == b"D":
            n = struct.unpack("!i", body[2:6])[0]
            rows.append(body[6:6 + n].decode())
        elif kind == b"E":
            raise h.CheckFailed(f"error: {h.error_fields(body)}")
        elif kind in ends:
            return rows, kind


def check_cursor_read_on_a_slow_store(ctx):
    """A cursor read (Execute with a row limit, then Flush, as pg-cursor sends it) ramped to a new
    whose table is locked: nothing comes back within ramp_read_timeout_ms, so it is cancelled there
    and served by old — the client's later Executes and its Sync follow it to old, and new's
    discarded answer ends with a Sync of cutover's. The connection to new stays in step: the
    next write is mirrored, the next reads ramp to new again, nothing is journaled (before: new
    never answered the discarded read and the session gave up its connection to new)."""
    if ctx.direct:
        return skip(ctx, "cursor reads ramped to a slow store")
    db = "cursor_slow"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 25)", db=db)
    dw = DualWrite(ctx, reads_new_percent=100, ramp_read_timeout_ms=500, mirror_timeout_ms=20000)
    try:
        sock, _, _ = h.raw_login(dw.endpoint().port, database=db)
        query = "SELECT id::text || ':' || inet_server_port() FROM t ORDER BY id"
        sock.sendall(_parse("", query) + _bind_execute_flush("", 10))
        rows, end = _rows_until(sock, (b"s",))
        h.check_eq((len(rows), rows[0]), (10, f"1:{ctx.new.port}"), "a cursor's first 10 rows, from new")
        sock.sendall(_message(b"E", b"\0" + struct.pack("!i", 10)) + _message(b"H", b""))
        h.check_eq(len(_rows_until(sock, (b"s",))[0]), 10, "its next 10")
        sock.sendall(_message(b"S", b""))
        h.check_eq(_until_ready(sock), ([], []), "its Sync")
        locker = ctx.new.connect(db=db)
        locker.cursor().execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")   # held: psycopg2 opened a transaction
        try:
            sock.sendall(_parse("", query) + _bind_execute_flush("", 10))
            rows, end = _rows_until(sock, (b"s",))
            h.check_eq((len(rows), rows[0]), (10, f"1:{ctx.old.port}"), "stuck on new: served by old")
            sock.sendall(_message(b"E", b"\0" + struct.pack("!i", 10)) + _message(b"H", b""))
            h.check_eq(len(_rows_until(sock, (b"s",))[0]), 10, "its next 10, from old")
            sock.sendall(_message(b"E", b"\0" + struct.pack("!i", 10)) + _message(b"S", b""))
            rows, end = _rows_until(sock, (b"C",))
            h.check_eq((len(rows), rows[-1]), (5, f"25:{ctx.old.port}"), "its last rows")
            h.check_eq(_until_ready(sock), ([], []), "its Sync")
        finally:
            locker.rollback()
            locker.close()
        sock.sendall(_message(b"Q", b"INSERT INTO t VALUES (26)\0"))
        h.check_eq(_until_ready(sock), (["INSERT 0 1"], []), "a write after the given-up cursor")
        sock.sendall(_parse("", "SELECT inet_server_port()::text") + _bind_execute_flush("", 0) + _message(b"S", b""))
        rows, _ = _rows_until(sock, (b"C",))
        h.check_eq(rows, [str(ctx.new.port)], "reads ramp to new again")
        _until_ready(sock)
        sock.close()
        want = ["26"]
        h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM t", want), [want, want], "the write on both stores")
        h.check_eq(dw.journal(), [], "divergences.jsonl")
        h.check("lost" not in dw.tgt.stderr_text(), f"the connection to new stayed: {dw.tgt.stderr_text()[-1500:]}")
    finally:
        dw.stop()


def check_wrap_keeps_the_unnamed_statement(ctx):
    """pgx's describe-exec mode: Parse(unnamed) + Describe + Sync, then Bind(unnamed) + Execute +
    Sync. The proxy's BEGIN … COMMIT around the autocommit write must leave the client's unnamed
    statement alone (before: the injected COMMIT, a simple Query, dropped it; the Bind failed with
    26000 on old and ran on new)."""
    if ctx.direct:
        return skip(ctx, "the autocommit wrap")
    db = "wrap_unnamed"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY)", db=db)
    for n, mirror in enumerate(("sync", "async")):
        dw = DualWrite(ctx, mirror=mirror)
        try:
            sock, _, _ = h.raw_login(dw.endpoint().port, database=db)
            try:
                for i in range(2):
                    value = str(10 * (n + 1) + i)
                    sock.sendall(_parse("", "INSERT INTO t VALUES ($1::int)") +
                                 _message(b"D", b"S\0") + _message(b"S", b""))
                    h.check_eq(_until_ready(sock), ([], []), f"{mirror}: Parse + Describe of the unnamed statement")
                    sock.sendall(_bind_execute_sync("", [value]))
                    h.check_eq(_until_ready(sock), (["INSERT 0 1"], []), f"{mirror}: Bind + Execute of it")
            finally:
                sock.close()
            want = [str(10 * (n + 1)), str(10 * (n + 1) + 1)]
            rows = _rows_on_both(ctx, db, f"SELECT id FROM t WHERE id / 10 = {n + 1} ORDER BY id", want)
            h.check_eq(rows, [want, want], f"{mirror}: rows on old and new")
            h.check_eq(dw.journal(), [], f"{mirror}: divergences.jsonl")
        finally:
            dw.tgt.stop()


def check_refused_prepare_not_recorded(ctx):
    """A PREPARE or Parse the store refused (42P05: the name is taken) does not change what the
    name runs: with every read ramped to new, EXECUTE/Bind of the name still runs the INSERT it was
    first prepared as on both stores (before: the refused text was recorded, the EXECUTE taken for
    a read and the INSERT run on new only)."""
    if ctx.direct:
        return skip(ctx, "what the proxy records of prepared statements")
    db = "prepared_refused"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY, src text)", db=db)
    dw = DualWrite(ctx, reads_new_percent=100)
    try:
        conn = dw.connect(db)
        cur = conn.cursor()
        cur.execute("PREPARE p AS INSERT INTO t VALUES (1, 'sql')")
        try:
            cur.execute("PREPARE p AS SELECT 1")
            raise h.CheckFailed("a second PREPARE p was accepted")
        except psycopg2.Error as e:
            h.check_eq(e.pgcode, "42P05", f"the second PREPARE p: {e}")
        cur.execute("EXECUTE p")
        h.check_eq(cur.statusmessage, "INSERT 0 1", "EXECUTE p runs the INSERT")
        conn.close()

        sock, _, _ = h.raw_login(dw.endpoint().port, database=db)
        try:
            sock.sendall(_parse("s1", "INSERT INTO t VALUES (2, 'parse')") + _message(b"S", b""))
            h.check_eq(_until_ready(sock), ([], []), "Parse s1")
            sock.sendall(_parse("s1", "SELECT 1") + _message(b"S", b""))
            h.check_eq(_until_ready(sock), ([], ["42P05"]), "a second Parse s1")
            sock.sendall(_bind_execute_sync("s1"))
            h.check_eq(_until_ready(sock), (["INSERT 0 1"], []), "Bind s1 runs the INSERT")
        finally:
            sock.close()
        for c in (ctx.old, ctx.new):
            h.check_eq(c.psql("SELECT id, src FROM t ORDER BY id", db=db).split(), ["1|sql", "2|parse"],
                       f"rows on {c.name}")
        h.check_eq(dw.journal(), [], "divergences.jsonl")
    finally:
        dw.tgt.stop()


def check_missed_write_keeps_reads_home(ctx):
    """A write new refused (a row put there behind the proxy's back: 23505 on new only) is
    journaled; from then on that session's reads are served by old even at reads_new_percent 100,
    and not shadow-compared; other sessions still read from new; /status counts the session."""
    if ctx.direct:
        return skip(ctx, "read routing after a missed write")
    db = "missed_write"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY, v int)", db=db)
    ctx.new.psql("INSERT INTO t VALUES (5, 0)", db=db)   # new only: the proxy's INSERT of 5 fails there
    dw = DualWrite(ctx, reads_new_percent=100, shadow_percent=100)
    try:
        conn = dw.connect(db)
        cur = conn.cursor()
        probe = "SELECT count(*), inet_server_port() FROM t"
        cur.execute(probe)
        h.check_eq(cur.fetchone()[1], ctx.new.port, "reads are ramped to new before the miss")
        cur.execute("INSERT INTO t VALUES (5, 1)")
        h.check_eq(cur.statusmessage, "INSERT 0 1", "old's answer to the client")
        kinds = [d["kind"] for d in dw.journal()]
        h.check_eq(kinds, ["error_one_side"], "the write new refused is journaled")
        m0 = dw.metrics()
        for _ in range(5):
            cur.execute(probe)
            h.check_eq(cur.fetchone(), (1, ctx.old.port), "the session's reads after the miss: old's rows")
        other = dw.connect(db)
        with other.cursor() as ocur:
            ocur.execute(probe)
            h.check_eq(ocur.fetchone()[1], ctx.new.port, "another session still reads from new")
        status, body = h.admin_request(dw.admin_port, "GET", "/status")
        h.check_eq(body.get("sessions_missed_writes"), 1, f"/status: {body}")
        def compared():
            m = dw.metrics()
            return sum(m.since(m0, "cutover_shadow_comparisons_total", result=r)
                       for r in ("match", "mismatch", "transient", "noisy", "error", "dropped"))
        deadline = time.monotonic() + 10
        while compared() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        h.check_eq(compared(), 1.0, "only the other session's read was shadowed")
        conn.close()
        other.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status, body = h.admin_request(dw.admin_port, "GET", "/status")
            if body.get("sessions_missed_writes") == 0:
                break
            time.sleep(0.1)
        h.check_eq(body.get("sessions_missed_writes"), 0, "the count once the session closed")
        h.check("missed a write of this session" in dw.tgt.stderr_text(), "the log says why its reads stay on old")
    finally:
        dw.tgt.stop()


def check_explain_analyze_of_a_write(ctx):
    """EXPLAIN ANALYZE runs the write: mirrored, its plan rows (timings) not compared, so no
    returning_mismatch; EXPLAIN (ANALYZE false, ANALYZE true) runs it too (PostgreSQL takes the
    last value; before: taken for a plain EXPLAIN, a read, and new never got the row)."""
    if ctx.direct:
        return skip(ctx, "mirroring of EXPLAIN ANALYZE")
    db = "explain_analyze"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY)", db=db)
    for mirror in ("sync", "async"):
        dw = DualWrite(ctx, mirror=mirror)
        try:
            conn = dw.connect(db)
            cur = conn.cursor()
            base = 10 if mirror == "sync" else 20
            cur.execute(f"EXPLAIN ANALYZE INSERT INTO t VALUES ({base + 1})")
            h.check(any("Insert on t" in r[0] for r in cur.fetchall()), "the plan")
            cur.execute(f"EXPLAIN (ANALYZE false, ANALYZE true) INSERT INTO t VALUES ({base + 2})")
            cur.fetchall()
            conn.close()
            want = [str(base + 1), str(base + 2)]
            rows = _rows_on_both(ctx, db, f"SELECT id FROM t WHERE id > {base} ORDER BY id", want)
            h.check_eq(rows, [want, want], f"{mirror}: rows on old and new")
            h.check_eq(dw.journal(), [], f"{mirror}: divergences.jsonl")
        finally:
            dw.tgt.stop()


def check_pipelined_reads_beside_writes(ctx):
    """A pipelined batch (psycopg3 pipeline mode: one Sync) of an UPDATE and a SELECT of a table
    that differs between the stores: the batch is mirrored, only the write's rows are compared —
    no returning_mismatch for the SELECT's rows (before: every row of the batch was compared)."""
    if ctx.direct:
        return skip(ctx, "mirroring of pipelined batches")
    if psycopg is None:
        raise h.CheckFailed("python3-psycopg (psycopg3) is not installed: run scripts/setup.sh")
    for mirror in ("sync", "async"):
        db = f"pipelined_{mirror}"
        fresh_db(ctx, db)
        for c in (ctx.old, ctx.new):
            c.psql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0);"
                   "CREATE TABLE other (id int PRIMARY KEY, note text); INSERT INTO other VALUES (1, 'same')", db=db)
        ctx.new.psql("INSERT INTO other VALUES (2, 'on new only')", db=db)
        dw = DualWrite(ctx, mirror=mirror)
        try:
            conn = psycopg.connect(dw.endpoint().dsn(db=db), autocommit=True)
            try:
                for _ in range(5):
                    with conn.pipeline():
                        conn.execute("UPDATE t SET v = v + 1 WHERE id = 1 RETURNING v")
                        cur = conn.execute("SELECT id, note FROM other ORDER BY id")
                    h.check_eq(cur.fetchall(), [(1, "same")], f"{mirror}: the client gets old's rows")
            finally:
                conn.close()
            h.check_eq(_rows_on_both(ctx, db, "SELECT v FROM t", ["5"]), [["5"], ["5"]],
                       f"{mirror}: the writes on both stores")
            if mirror == "async":
                wait_drained(dw, "the pipelines")
            h.check_eq([(d["kind"], d["statement"][:40]) for d in dw.journal()], [], f"{mirror}: divergences.jsonl")
        finally:
            dw.tgt.stop()


def check_batch_divergence_names_its_statement(ctx):
    """A pipelined batch of three writes whose second one differs between the stores (its row is
    on old only): the journal line names that statement and its place in the batch (before: the
    batch's first statement, which agreed). Sync and async alike judge the batch; the line of a
    sync batch says which statement."""
    if ctx.direct:
        return skip(ctx, "the journal of pipelined batches")
    if psycopg is None:
        raise h.CheckFailed("python3-psycopg (psycopg3) is not installed: run scripts/setup.sh")
    db = "batch_names"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE a (id int PRIMARY KEY, v int); INSERT INTO a VALUES (1, 0);"
               "CREATE TABLE b (id int PRIMARY KEY, v int); CREATE TABLE c (id int PRIMARY KEY, v int);"
               "INSERT INTO c VALUES (1, 0)", db=db)
    ctx.old.psql("INSERT INTO b VALUES (1, 0)", db=db)
    dw = DualWrite(ctx)
    try:
        conn = psycopg.connect(dw.endpoint().dsn(db=db), autocommit=True)
        try:
            with conn.pipeline():
                conn.execute("UPDATE a SET v = v + 1 WHERE id = %s", [1])
                conn.execute("UPDATE b SET v = v + 1 WHERE id = %s", [1])
                conn.execute("UPDATE c SET v = v + 1 WHERE id = %s", [1])
        finally:
            conn.close()
        lines = dw.journal()
        h.check_eq([(d["kind"], d["statement"]) for d in lines],
                   [("tag_mismatch", "UPDATE b SET v = v + 1 WHERE id = $1")], "divergences.jsonl")
        h.check_eq(lines[0].get("reason"), "statement 2 of the 3 writes of one pipelined batch (up to its Sync)",
                   "the line's place in the batch")
        h.check_eq((lines[0]["authoritative_outcome"], lines[0]["secondary_outcome"]),
                   ("UPDATE 1; UPDATE 1; UPDATE 1", "UPDATE 1; UPDATE 0; UPDATE 1"), "both outcomes, whole")
    finally:
        dw.stop()


def check_reconnect_replay_and_prepared_statements(ctx):
    """psycopg 3 prepares every statement (prepare_threshold 0: named Parses _pg3_N). New's
    connection for the session is killed between writes; the next write waits for the
    reconnection, whose replay holds only the statements new had accepted, so neither the
    replayed Parses nor the client's own next Parse collide (42P05) and no write is lost there:
    old and new end with the same rows, nothing journaled (before: a replayed statement collided
    with the client's Parse and that write ran on old only)."""
    if ctx.direct:
        return skip(ctx, "reconnection replay")
    if psycopg is None:
        raise h.CheckFailed("python3-psycopg (psycopg3) is not installed: run scripts/setup.sh")
    db = "replay_prepared"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY, v int)", db=db)
    dw = DualWrite(ctx)
    try:
        conn = psycopg.connect(dw.endpoint().dsn(db=db), autocommit=True, prepare_threshold=0)
        try:
            n = 0
            for round_ in range(3):
                for _ in range(3):
                    n += 1
                    conn.execute("INSERT INTO t VALUES (%s, %s)", [n, round_])       # prepared once, then bound
                    conn.execute("UPDATE t SET v = v + %s WHERE id = %s", [1, n])
                pids = _session_backends(ctx.new, db)
                h.check_eq(len(pids), 1, f"round {round_}: new's backend of the session")
                ctx.new.psql(f"SELECT pg_terminate_backend({pids[0]})", db=db)
                deadline = time.monotonic() + 5
                while _session_backends(ctx.new, db) and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(1)   # a session reconnects at most every 500 ms (a flapping store's misses are journaled)
                # The unit that finds new gone and waits for the reconnection parses a statement of
                # its own: the replay must not hold it too.
                conn.execute(f"UPDATE t SET v = v * 1 WHERE id > %s AND {round_} >= 0", [0])
            n += 1
            conn.execute("INSERT INTO t VALUES (%s, %s)", [n, 9])
        finally:
            conn.close()
        check_same_contents(ctx, db, dw=dw)
        h.check_eq(ctx.old.psql("SELECT count(*) FROM t", db=db).strip(), str(n), "rows on old")
        h.check_eq([(d["kind"], d["statement"][:50], d["secondary_outcome"][:80]) for d in dw.journal()], [],
                   "divergences.jsonl")
    finally:
        dw.stop()


def check_ramped_read_that_writes(ctx):
    """A read the classifier cannot see writing (a view over a function that inserts) ramped to
    new at 100 %: it runs there in a read-only transaction, PostgreSQL refuses it (25006), and it
    runs again as a mirrored write on old — both stores get the row once, the client gets old's
    answer. With the shadow on too (its copy on old is read-only as well). The shape is then
    remembered as a write: refused once per session's worker, mirrored from then on. Before: the
    INSERT ran on new only. The view is made behind the proxy's back after it read the catalog
    (whose facts would otherwise have made it a write from the start: hidden_write_forms)."""
    if ctx.direct:
        return skip(ctx, "read-only enforcement of ramped reads")
    db = "ramp_writes"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE log (n int); CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);"
               "CREATE FUNCTION note() RETURNS int LANGUAGE sql AS 'INSERT INTO log VALUES (1) RETURNING 1'", db=db)
    expected = 0
    for n, (mirror, shadow) in enumerate((("sync", 0), ("sync", 100), ("async", 0))):
        dw = DualWrite(ctx, mirror=mirror, reads_new_percent=100, shadow_percent=shadow)
        try:
            conn = dw.connect(db)
            cur = conn.cursor()
            cur.execute("SELECT id, inet_server_port() FROM t")
            h.check_eq(cur.fetchall(), [(1, ctx.new.port)], f"{mirror}/{shadow}: a plain read is served by new")
            for c in (ctx.old, ctx.new):
                c.psql(f"CREATE VIEW v{n} AS SELECT note() AS n", db=db)
            for _ in range(3):
                cur.execute(f"SELECT n FROM v{n}")
                h.check_eq(cur.fetchall(), [(1,)], f"{mirror}/{shadow}: the view's answer")
                expected += 1
            if mirror == "async":
                time.sleep(1)   # reads stay on old while the session's queued writes are not on new
            cur.execute("SELECT id, inet_server_port() FROM t")
            h.check_eq(cur.fetchall(), [(1, ctx.new.port)], f"{mirror}/{shadow}: reads still served by new")
            conn.close()
            want = [str(expected)]
            h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM log", want), [want, want],
                       f"{mirror}/{shadow}: the view's INSERTs on old and new")
            h.check_eq(dw.journal(), [], f"{mirror}/{shadow}: divergences.jsonl")
            # Refused once, then remembered as a write (mirrored from the start, wherever served).
            h.check_eq(dw.tgt.stderr_text().count("refused a ramped read as a write"), 1,
                       f"{mirror}/{shadow}: refusals in the log")
        finally:
            dw.tgt.stop()


HIDDEN_WRITES_SCHEMA = """
CREATE TABLE log (form text);
CREATE FUNCTION note(f text) RETURNS int LANGUAGE sql AS $$INSERT INTO log VALUES (f) RETURNING 1$$;
CREATE VIEW v AS SELECT note('view') AS n;
CREATE FUNCTION op_note(a int, b int) RETURNS int LANGUAGE sql
  AS $$INSERT INTO log VALUES ('operator') RETURNING a + b$$;
CREATE OPERATOR ### (LEFTARG = int, RIGHTARG = int, FUNCTION = op_note);
CREATE FUNCTION dom_ok(int) RETURNS bool LANGUAGE sql AS $$INSERT INTO log VALUES ('domain') RETURNING true$$;
CREATE DOMAIN wdom AS int CHECK (dom_ok(VALUE));
CREATE TYPE wt AS (x int);
CREATE FUNCTION to_wt(int) RETURNS wt LANGUAGE sql AS $$INSERT INTO log VALUES ('cast') RETURNING ROW($1)::wt$$;
CREATE CAST (int AS wt) WITH FUNCTION to_wt(int);
CREATE TABLE t1 (id int PRIMARY KEY);
INSERT INTO t1 VALUES (1);
CREATE FUNCTION f(t1) RETURNS int LANGUAGE sql AS $$INSERT INTO log VALUES ('attribute') RETURNING $1.id$$;
CREATE FUNCTION public.lower(int) RETURNS int LANGUAGE sql AS $$INSERT INTO log VALUES ('lower') RETURNING $1$$;
CREATE SCHEMA app;
CREATE FUNCTION app.now() RETURNS timestamptz LANGUAGE sql
  AS $$INSERT INTO public.log VALUES ('search_path') RETURNING '2000-01-01 00:00:00+00'::timestamptz$$;
"""

# Each form of a write the classifier cannot see (issue 14), as a client sends it: a list of
# statements run in order on one connection (errors expected where PostgreSQL refuses).
HIDDEN_WRITE_FORMS = [
    ("view", ["SELECT * FROM v"]),
    ("table", ["TABLE v"]),
    ("operator", ["SELECT 1 ### 2"]),
    ("domain", ["SELECT 1::wdom"]),
    ("cast", ["SELECT 1::wt"]),
    ("attribute", ["SELECT t1.f FROM t1"]),
    ("lower", ["SELECT lower(5)"]),
    ("search_path", ["SET search_path = app, pg_catalog", "SELECT now()", "RESET search_path"]),
    ("explain", ["EXPLAIN (ANALYZE false, ANALYZE true, COSTS false, TIMING false, SUMMARY false) "
                 "INSERT INTO log VALUES ('explain')"]),
    ("prepare", ["PREPARE p AS INSERT INTO log VALUES ('prepare')", "PREPARE p AS SELECT 1", "EXECUTE p",
                 "DEALLOCATE p"]),
    ("prepared_view", ["PREPARE pv AS SELECT * FROM v", "EXECUTE pv", "DEALLOCATE pv"]),
]


def _run_forms(conn, rounds):
    """Every hidden write form `rounds` times on `conn` (autocommit): each statement's answer
    (rows, or the SQLSTATE it failed with), in order."""
    answers = []
    cur = conn.cursor()
    for _ in range(rounds):
        for form, statements in HIDDEN_WRITE_FORMS:
            for sql in statements:
                try:
                    cur.execute(sql)
                    answers.append((form, sql, cur.fetchall() if cur.description else cur.statusmessage))
                except psycopg2.Error as e:
                    answers.append((form, sql, e.pgcode))
    return answers


def check_hidden_write_forms(ctx):
    """Every write form the classifier cannot see (a view or TABLE over a writing function, a user
    operator, a domain CHECK, a user cast, attribute notation, a user `lower(int)` shadowing the
    built-in by argument type, `now()` found first in another schema by search_path, EXPLAIN with
    its last ANALYZE true, a refused PREPARE), at reads_new_percent 100 — sync, sync with every
    read shadowed, async: old gets every write, new the same rows, and the client's answers are
    the ones direct PostgreSQL gives. Each form runs twice (the second run is classified from
    what the first one taught). The same at reads_new_percent 0, where old serves every read: the
    database's catalog says what can make a read write (router/read_hazards.h), so each form runs
    as a mirrored write from its first run (before: old alone had them, nothing said)."""
    if ctx.direct:
        return skip(ctx, "hidden writes under the read ramp")
    direct_db = "hidden_writes_direct"
    h.fresh_database(direct_db, ctx.old)
    ctx.old.psql(HIDDEN_WRITES_SCHEMA, db=direct_db)
    conn = psycopg2.connect(host="127.0.0.1", port=ctx.old.port, user="postgres", dbname=direct_db)
    conn.autocommit = True
    want = _run_forms(conn, 2)
    conn.close()
    want_log = sorted(ctx.old.psql("SELECT form FROM log", db=direct_db).split())
    h.check_eq(len(want_log), 22, f"direct: every form wrote once per round ({want_log})")
    for mirror, shadow, ramp in (("sync", 0, 100), ("sync", 100, 100), ("async", 0, 100), ("sync", 0, 0),
                                 ("async", 0, 0), ("sync", 100, 0)):
        db = f"hidden_writes_{mirror}_{shadow}_{ramp}"
        fresh_db(ctx, db)
        for c in (ctx.old, ctx.new):
            c.psql(HIDDEN_WRITES_SCHEMA, db=db)
        dw = DualWrite(ctx, mirror=mirror, reads_new_percent=ramp, shadow_percent=shadow)
        try:
            conn = dw.connect(db)
            got = _run_forms(conn, 2)
            conn.close()
            for g, w in zip(got, want):
                h.check_eq(g, w, f"{mirror}/{shadow}/{ramp}: the client's answer to {w[1]!r}")
            h.check_eq(len(got), len(want), f"{mirror}/{shadow}/{ramp}: answers")
            if mirror == "async":
                wait_drained(dw, "the hidden writes")
            h.check_eq(sorted(ctx.old.psql("SELECT form FROM log", db=db).split()), want_log,
                       f"{mirror}/{shadow}/{ramp}: every hidden write on old (the authoritative store)")
            check_same_contents(ctx, db, dw=dw)
            # `now()` resolved to app.now() is mirrored as its text: said so (the proxy cannot
            # tell what a function of that name writes), once per run; nothing else.
            h.check_eq(sorted((d["kind"], d["statement"]) for d in dw.journal()),
                       [("nondeterministic", "SELECT now()")] * 2, f"{mirror}/{shadow}/{ramp}: divergences.jsonl")
        finally:
            dw.stop()


def check_hidden_write_in_a_shadow(ctx):
    """A read served by old (not ramped) whose shadow runs on new: the shadow is read-only there
    too. A view over a writing function created behind the proxy's back, after it read the
    catalog (its facts are up to 30 s old), shadowed: new refuses it (25006), so old alone has
    that write — journaled as error_one_side naming the statement (before: the shadow ran the
    INSERT on new, unordered, and nothing was said). The shape is then a write: the next run is
    mirrored to both stores."""
    if ctx.direct:
        return skip(ctx, "read-only shadows")
    db = "hidden_shadow"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE log (n int)", db=db)
    dw = DualWrite(ctx, shadow_percent=100)
    try:
        conn = dw.connect(db)
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM log")   # the proxy reads what can make a read write: nothing yet
        for c in (ctx.old, ctx.new):
            c.psql("CREATE FUNCTION note() RETURNS int LANGUAGE sql AS 'INSERT INTO log VALUES (1) RETURNING 1';"
                   "CREATE VIEW v AS SELECT note() AS n", db=db)
        cur.execute("SELECT n FROM v")
        h.check_eq(cur.fetchall(), [(1,)], "the view's answer (old's)")
        deadline = time.monotonic() + 10
        while not dw.journal() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = dw.journal()
        h.check_eq([(d["kind"], d["statement"], d["authoritative_store"]) for d in lines],
                   [("error_one_side", "SELECT n FROM v", "old")], "divergences.jsonl after the shadowed run")
        h.check("25006" in lines[0]["secondary_outcome"], f"the line says why: {lines[0]}")
        h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM log", ["1"], timeout=1), [["1"], ["0"]],
                   "the first run's INSERT: on old only (new refused its read-only shadow)")
        cur.execute("SELECT n FROM v")
        h.check_eq(cur.fetchall(), [(1,)], "the second run's answer")
        h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM log", ["2"], timeout=1), [["2"], ["1"]],
                   "the second run's INSERT: mirrored to both stores")
        # DDL through the proxy: the catalog is read again at once, the new view is a write from
        # its first run (mirrored, nothing journaled).
        cur.execute("CREATE VIEW v2 AS SELECT note() + 1 AS n")
        cur.execute("SELECT n FROM v2")
        h.check_eq(cur.fetchall(), [(2,)], "the new view's answer")
        conn.close()
        h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM log", ["3"], timeout=1), [["3"], ["2"]],
                   "the new view's INSERT: mirrored to both stores")
        h.check_eq(len(dw.journal()), 1, "nothing more journaled")
    finally:
        dw.stop()


def check_refused_read_follows_table_overrides(ctx):
    """A ramped read refused as a write (25006) runs again routed as the write it is, per-table
    `writes` overrides included: with `tables.v.writes: dual-new`, a view over a function that
    inserts is served by new (authoritative for v) and mirrored to old; the client gets new's
    answer. Before: it always ran on the global authority (old). The view is made behind the
    proxy's back after it read the catalog, as in ramped_read_that_writes."""
    if ctx.direct:
        return skip(ctx, "read-only enforcement of ramped reads")
    db = "ramp_writes_table"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE log (n int);"
               "CREATE FUNCTION note_port() RETURNS int LANGUAGE sql AS "
               "'INSERT INTO log VALUES (1); SELECT inet_server_port()'", db=db)
    dw = DualWrite(ctx, reads_new_percent=100, tables={"v": {"writes": "dual-new"}})
    try:
        conn = dw.connect(db)
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM log")   # the proxy reads the catalog: no hazard yet
        for c in (ctx.old, ctx.new):
            c.psql("CREATE VIEW v AS SELECT note_port() AS port", db=db)
        cur.execute("SELECT port FROM v")
        h.check_eq(cur.fetchall(), [(ctx.new.port,)], "the view's answer comes from new, v's authority")
        conn.close()
        h.check_eq(_rows_on_both(ctx, db, "SELECT count(*) FROM log", ["1"]), [["1"], ["1"]],
                   "the view's INSERT on old and new")
        h.check_eq(dw.tgt.stderr_text().count("refused a ramped read as a write"), 1, "refusals in the log")
        h.check_eq([d["kind"] for d in dw.journal()], ["returning_mismatch"],
                   "divergences.jsonl (the returned ports differ by design)")
    finally:
        dw.tgt.stop()


def check_reads_missed_by_a_down_store_are_not_journaled(ctx):
    """With new down, a transaction's reads are not journaled as secondary_unavailable (before:
    one line per SELECT, twice the writes' lines under pgbench); its writes still are."""
    if ctx.direct:
        return skip(ctx, "journal of a down store")
    db = "down_reads"
    fresh_db(ctx, db)
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)", db=db)
    dw = DualWrite(ctx)
    try:
        conn = dw.connect(db, autocommit=False)
        cur = conn.cursor()
        cur.execute("SELECT v FROM t")   # the session's connection to new is open
        conn.commit()
        ctx.new.stop()
        for n in range(3):
            cur.execute("SELECT v FROM t WHERE id = 1")
            cur.execute("SELECT count(*) FROM t")
            cur.execute("UPDATE t SET v = v + 1 WHERE id = 1")
            conn.commit()
        conn.close()
        # A miss is journaled behind the client's answer (the writer thread fsyncs it): poll.
        deadline = time.monotonic() + 10
        while True:
            journal = dw.journal()
            statements = [d.get("statement", "") for d in journal]
            if sum(1 for s in statements if s.startswith("UPDATE")) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        h.check(not any(s.startswith("SELECT") for s in statements), f"reads journaled: {statements}")
        h.check_eq(sum(1 for s in statements if s.startswith("UPDATE")), 3, f"the writes journaled: {statements}")
        h.check(all(d.get("kind") in ("secondary_unavailable", "secondary_timeout") for d in journal),
                f"kinds: {[d.get('kind') for d in journal]}")
    finally:
        dw.tgt.stop()
        ctx.new.start()


def check_catalog_reads_in_a_transaction(ctx):
    """psql's \\d inside a transaction (PostgreSQL's regression tests do it): psql reads the table's
    OID from the authoritative store, then names it in its catalog queries. Those reads are the
    store's own facts — the other store has other OIDs — so they are not run there: nothing is
    journaled, psql prints what it prints directly (before: each query ran on new too, answered
    "SELECT 0" there, and was journaled tag_mismatch / returning_mismatch: 88 lines in one run of
    the suite). A read of the application's table in the same transaction still runs on both."""
    db = "dw_catalog_txn"
    fresh_db(ctx, db)
    if not ctx.direct:
        # Other OIDs on new, as on any two clusters with their own history.
        ctx.new.psql("CREATE TABLE pad (x int); DROP TABLE pad;", db=db)
    for c in ([ctx.old] if ctx.direct else [ctx.old, ctx.new]):
        c.psql("CREATE TABLE parent (a int) PARTITION BY RANGE (a);"
               "CREATE TABLE part1 PARTITION OF parent FOR VALUES FROM (0) TO (10);", db=db)
    script = ("BEGIN;\n\\d part1\nSELECT c.relname FROM pg_catalog.pg_class c "
              "WHERE c.oid = 'part1'::regclass::oid::text::oid;\nSELECT count(*) FROM part1;\nCOMMIT;\n")
    outputs = []
    for target in ("direct", "proxy"):
        if target == "proxy" and ctx.direct:
            break
        dw = DualWrite(ctx) if target == "proxy" else None
        ep = dw.tgt if dw else h.DirectTarget(ctx.old)
        try:
            argv, env = ep.psql_args(db=db)
            p = subprocess.run(argv + ["-v", "ON_ERROR_STOP=1"], input=script, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, timeout=60)
            h.check_eq(p.returncode, 0, f"psql through {target}: {p.stdout}")
            outputs.append(p.stdout)
            if dw:
                h.check_eq(dw.journal(), [], "divergences.jsonl")
        finally:
            if dw:
                dw.stop()
    if len(outputs) == 2:
        h.check_eq(outputs[1], outputs[0], "psql's output through the proxy")
    h.check("Partition of: parent FOR VALUES FROM (0) TO (10)" in outputs[0], f"psql's \\d output: {outputs[0]}")


CHECKS = [check_catalog_reads_in_a_transaction, check_comparison_catches_difference, check_divergence_detected, check_cancel_reaches_every_store,
          check_mixed_workload_sync, check_mixed_workload_async, check_dual_new_sync,
          check_read_ramp, check_new_store_killed, check_new_store_killed_async, check_large_batches,
          check_temp_tables_and_the_ramp, check_ramped_read_timeout, check_wrap_keeps_the_unnamed_statement, check_refused_prepare_not_recorded,
          check_missed_write_keeps_reads_home, check_explain_analyze_of_a_write,
          check_reads_missed_by_a_down_store_are_not_journaled, check_pipelined_reads_beside_writes,
          check_ramped_read_that_writes, check_refused_read_follows_table_overrides,
          check_hidden_write_forms, check_cursor_read_on_a_slow_store, check_hidden_write_in_a_shadow,
          check_batch_divergence_names_its_statement, check_reconnect_replay_and_prepared_statements]

if __name__ == "__main__":
    h.run(CHECKS, setup)
