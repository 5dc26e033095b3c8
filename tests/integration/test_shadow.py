#!/usr/bin/python3
"""Shadow-read comparison (issue 5): real old and new stores, the real proxy, real clients.

- identical_data: reads at shadow_percent 100 with 30 % of them served by new (so shadows run on
  new and on old), pgbench -M prepared and psycopg2 simple queries, until 10,000 have been
  compared (a shadow the proxy sheds under load is counted as dropped, not compared): no
  mismatch, no error; what the client sees through the proxy is byte-identical to what psql
  shows directly from old.
- physical_order: the same rows stored in another order on new: no mismatch without ORDER BY;
  under an ORDER BY with ties the other order is noise (kind order), not a mismatch, unless
  compare.strict_order, where it is a mismatch of kind order.
- changed_and_deleted_rows: a row changed on new behind the proxy's back is a confirmed `values`
  mismatch naming the column (after the recheck); a deleted row is `row_count`; the records are
  in mismatches.jsonl and GET /mismatches, values redacted.
- error_one_side: a table missing on new: `error_one_side` with new's SQLSTATE.
- hot_rows_are_transient: other sessions update the rows being read: differences are rechecked
  and come out `transient`, never confirmed.
- noisy: ORDER BY random() / LIMIT without ORDER BY differ between stores: counted as noisy,
  never journaled as mismatches.
- new_store_stalled: new's backends SIGSTOPped while a client reads: reads keep their latency,
  shadows are dropped and counted, the proxy's memory does not grow; SIGCONT: shadows resume.
- set_transaction_not_replayed: after a transaction that ran SET TRANSACTION ISOLATION LEVEL
  and SET LOCAL, a changed row's shadow mismatch is rechecked and confirmed (before: the recheck
  replayed SET TRANSACTION after its own first query, failed with 25001, and the mismatch was
  counted as an error).
- shadow_then_write: a shadow read still running on new (a view that sleeps there) when the
  session's next write starts: 20 writes, no divergence (before: the shadow's "SELECT 1" tag
  was counted in the write's outcome on new, a tag_mismatch for most of them).
- user_types: an enum, its array and a composite type have other OIDs on new (created after
  another type there): reads returning them, aliased or aggregated, match (compared by value,
  not by the store-local type OID).
- catalog_reads (also with sticky: statement at 50 %, psql's dependent catalog queries): with
  reads_new_percent and shadow_percent 100 and a table whose OID differs
  between the stores, psql's \d, \d+, \dt, \df, information_schema, regclass casts and pg_*
  functions are served by old and never shadowed: no mismatch (before: 8 confirmed for \d and
  \d+); a read of a user table is still served by new and compared.
- million_rows: a 1,000,000-row read shadowed: compared (match) with bounded proxy memory.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

ROWS = 2000


def setup(ctx):
    if ctx.direct:
        return {}
    old = ctx.cluster("old", max_connections=100)
    new = ctx.cluster("new", max_connections=100)
    for c in (old, new):
        c.psql("CREATE DATABASE sh")
        c.psql(f"""CREATE TABLE items (id int PRIMARY KEY, grp int NOT NULL, name text, price numeric(10,2),
                                       weight float8, seen timestamptz);
                  INSERT INTO items SELECT g, g % 10, 'item ' || g, g * 1.25, g / 7.0,
                                           timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
                  FROM generate_series(1, {ROWS}) g;""", db="sh")
    return {"old": old, "new": new}


class Sh:
    def __init__(self, ctx, compare=None, **flags):
        tmp = h.TmpDir("sh").path
        self.journal_dir = os.path.join(tmp, "journal")
        os.makedirs(self.journal_dir)
        self.admin_port = h.free_port()
        all_flags = {"writes": "dual", "shadow_percent": 100}
        all_flags.update(flags)
        extra = {"compare": compare} if compare else {}
        self.proxy = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new, flags=all_flags, journal_dir=self.journal_dir,
                             admin={"listen": f"127.0.0.1:{self.admin_port}"}, **extra)

    def connect(self):
        conn = self.proxy.connect(db="sh")
        conn.autocommit = True
        return conn

    def metrics(self):
        return h.Metrics(self.admin_port)

    def shadow(self, m=None):
        m = m or self.metrics()
        return {r: m.get("cutover_shadow_comparisons_total", result=r)
                for r in ("match", "mismatch", "transient", "error", "dropped", "noisy")}

    def mismatches(self):
        path = os.path.join(self.journal_dir, "mismatches.jsonl")
        if not os.path.exists(path):
            return []
        return [json.loads(line) for line in h.read_text(path).splitlines() if line.strip()]

    def settle(self, timeout=15):
        """Waits until the shadow counters have not moved for 1.5 s (shadows and rechecks done)."""
        return h.settled(self.shadow, timeout)

    def wait_mismatches(self, n, timeout=15):
        deadline = time.monotonic() + timeout
        while len(self.mismatches()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.mismatches()

    def stop(self):
        rc = self.proxy.stop()
        h.check_eq(rc, 0, f"proxy exit code; stderr tail:\n{self.proxy.stderr_text()[-3000:]}")


def proxy_only(ctx, what):
    if ctx.direct:
        ctx.log(f"skipped (--direct, proxy only): {what}")
        return True
    return False


def reset_new(ctx):
    """new := old's items, row for row (after a check that changed new)."""
    ctx.new.psql(f"""TRUNCATE items;
        INSERT INTO items SELECT g, g % 10, 'item ' || g, g * 1.25, g / 7.0,
                                 timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(1, {ROWS}) g;""", db="sh")


def run_queries(conn, queries):
    out = []
    with conn.cursor() as cur:
        for q in queries:
            cur.execute(q)
            out.append(cur.fetchall())
    return out


# ---------------------------------------------------------------------------------------------


def check_identical_data(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    pgbench = h.require_tool("pgbench", "postgresql-client-15")
    sh = Sh(ctx, reads_new_percent=30, sticky="statement")
    try:
        m0 = sh.shadow()
        script = os.path.join(sh.journal_dir, "select.sql")
        with open(script, "w") as f:
            f.write("\\set id random(1, %d)\nSELECT id, grp, name, price, weight, seen FROM items WHERE id = :id;\n" % ROWS)
        ep = sh.proxy.endpoint()
        out = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", "4", "-j", "2", "-t", "2000", "-f", script,
                              "-h", ep.host, "-p", str(ep.port), "-U", "postgres", "sh"],
                             capture_output=True, text=True, timeout=300)
        h.check_eq(out.returncode, 0, f"pgbench: {out.stdout[-1500:]}{out.stderr[-1500:]}")
        conn = sh.connect()
        queries = ["SELECT * FROM items WHERE id %% 97 = %d ORDER BY id" % i for i in range(500)]
        queries += ["SELECT grp, count(*), sum(price), avg(weight) FROM items GROUP BY grp ORDER BY grp"] * 500
        reads = 8000
        deadline = time.monotonic() + 120
        while True:
            run_queries(conn, queries)
            reads += len(queries)
            m1 = sh.settle()
            delta = {k: m1[k] - m0[k] for k in m1}
            compared = delta["match"] + delta["mismatch"] + delta["transient"] + delta["noisy"] + delta["error"]
            if compared >= 10000 or time.monotonic() > deadline:
                break
        conn.close()
        ctx.log(f"shadow results over {reads} reads: {delta}")
        h.check_eq(delta["mismatch"] + delta["transient"], 0, f"mismatches with identical data: {sh.mismatches()[:3]}")
        h.check_eq(delta["error"], 0, "shadows that could not be compared")
        h.check(compared >= 10000, f"only {compared:.0f} reads compared in 120 s ({delta})")
        h.check_eq(sh.mismatches(), [], "mismatches.jsonl")

        # What the client sees through the proxy is what old itself answers, byte for byte.
        sql = ("SELECT * FROM items WHERE id <= 50 ORDER BY id;\n"
               "SELECT grp, sum(price), min(seen), max(weight) FROM items GROUP BY grp ORDER BY grp;\n")
        direct = subprocess.run(["psql", "-X", "-A", "-h", "127.0.0.1", "-p", str(ctx.old.port), "-U", "postgres",
                                 "-d", "sh", "-c", sql], capture_output=True, text=True)
        through = subprocess.run(["psql", "-X", "-A", "-h", ep.host, "-p", str(ep.port), "-U", "postgres",
                                  "-d", "sh", "-c", sql], capture_output=True, text=True)
        h.check(direct.returncode == 0 and direct.stdout, f"psql direct: {direct.stderr}")
        h.check_eq(through.stdout, direct.stdout, "psql output through the proxy vs direct")
        sh.stop()
    finally:
        sh.proxy.cleanup()


def check_physical_order(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    # Same rows, inserted in reverse order on new.
    ctx.new.psql("""CREATE TEMP TABLE keep AS SELECT * FROM items; TRUNCATE items;
                    INSERT INTO items SELECT * FROM keep ORDER BY id DESC;""", db="sh")
    try:
        for strict in (False, True):
            sh = Sh(ctx, compare={"strict_order": strict, "recheck": {"attempts": 1, "delay_ms": 50}})
            try:
                conn = sh.connect()
                m0 = sh.shadow()
                run_queries(conn, ["SELECT id, name FROM items WHERE grp = 3",          # no ORDER BY
                                   "SELECT id, name FROM items ORDER BY id",             # total order
                                   "SELECT id, grp FROM items WHERE id <= 40 ORDER BY grp"])   # ties
                m1 = sh.settle()
                conn.close()
                delta = {k: m1[k] - m0[k] for k in m1}
                kinds = [m["kind"] for m in sh.mismatches()]
                if not strict:
                    h.check_eq(delta["match"], 2.0, f"matches (no ORDER BY, total ORDER BY): {delta}")
                    h.check_eq(delta["noisy"], 1.0, f"ties under ORDER BY as noise: {delta}")
                    h.check_eq(kinds, [], "mismatches without strict_order")
                else:
                    h.check_eq(kinds, ["order"], f"strict_order: the tie order is a mismatch of kind order ({delta})")
                sh.stop()
            finally:
                sh.proxy.cleanup()
    finally:
        reset_new(ctx)


def check_changed_and_deleted_rows(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    ctx.new.psql("UPDATE items SET name = 'changed behind the proxy' WHERE id = 42; DELETE FROM items WHERE id = 43",
                 db="sh")
    sh = Sh(ctx, compare={"recheck": {"attempts": 2, "delay_ms": 100}})
    try:
        conn = sh.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT id, grp, name, price FROM items WHERE id = 42")
            h.check_eq(cur.fetchall(), [(42, 2, "item 42", __import__("decimal").Decimal("52.50"))],
                       "the client gets old's row")
            cur.execute("SELECT id, name FROM items WHERE id BETWEEN 40 AND 45 ORDER BY id")
            h.check_eq(len(cur.fetchall()), 6, "rows the client gets (old's)")
        # Open until the shadows are done: a client that disconnects drops its shadows in flight.
        found = sh.wait_mismatches(2)
        conn.close()
        h.check_eq(sorted(m["kind"] for m in found), ["row_count", "values"],
                   f"mismatch kinds: {found}; shadow counts {sh.shadow()}")
        values = next(m for m in found if m["kind"] == "values")
        h.check_eq(values["result"], "mismatch", "a changed row is confirmed after the recheck")
        h.check_eq([v["column"] for r in values["rows"] for v in r["values"]], ["name"], "the differing column")
        h.check(all(v["old"].startswith("<redacted") for r in values["rows"] for v in r["values"]),
                f"values are redacted without log_values: {values['rows']}")
        h.check("42" not in values["query"] and "$1" in values["query"], f"literals removed: {values['query']}")
        h.check(re.fullmatch(r"[0-9a-f]{16}", values["fingerprint"]), f"fingerprint: {values['fingerprint']}")
        count = next(m for m in found if m["kind"] == "row_count")
        h.check_eq((count["old_rows"], count["new_rows"]), (6, 5), "row counts of the deleted row's read")
        status, body = h.admin_request(sh.admin_port, "GET", "/mismatches?limit=10")
        h.check_eq(status, 200, "GET /mismatches")
        h.check_eq(len(body["mismatches"]), 2, f"GET /mismatches: {body}")
        groups = {g["fingerprint"]: g for g in body["by_fingerprint"]}
        h.check_eq(groups[values["fingerprint"]]["kinds"], {"values": 1}, f"GET /mismatches grouped: {body}")
        m = sh.metrics()
        h.check_eq(m.get("cutover_shadow_comparisons_total", result="mismatch"), 2.0, "mismatch count")
        h.check(m.get("cutover_shadow_duration_seconds_count", store="new") >= 2, "shadow latency of new observed")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        reset_new(ctx)


def check_error_one_side(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    ctx.old.psql("CREATE TABLE IF NOT EXISTS only_old (id int); INSERT INTO only_old VALUES (1)", db="sh")
    ctx.new.psql("DROP TABLE IF EXISTS only_old", db="sh")
    sh = Sh(ctx, compare={"recheck": {"attempts": 1, "delay_ms": 50}})
    try:
        conn = sh.connect()
        run_queries(conn, ["SELECT id FROM only_old"])
        found = sh.wait_mismatches(1)
        conn.close()
        h.check_eq([m["kind"] for m in found], ["error_one_side"], f"mismatches: {found}")
        h.check_eq(found[0]["old_error"], "", "old answered")
        h.check(found[0]["new_error"].startswith("42P01"), f"new's SQLSTATE: {found[0]['new_error']}")
        sh.stop()
    finally:
        sh.proxy.cleanup()


def check_hot_rows_are_transient(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    sh = Sh(ctx, compare={"recheck": {"attempts": 3, "delay_ms": 300}})
    stop = threading.Event()
    errors = []

    def writer():
        try:
            conn = sh.connect()
            with conn.cursor() as cur:
                n = 0
                while not stop.is_set():
                    n += 1
                    # One row per statement: two writers can never deadlock each other.
                    cur.execute("UPDATE items SET price = price + 1 WHERE id = %s", (n % 5 + 1,))
        except Exception as e:   # noqa: BLE001
            errors.append(e)

    try:
        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        conn = sh.connect()
        t_end = time.monotonic() + 4
        reads = 0
        while time.monotonic() < t_end:
            run_queries(conn, ["SELECT id, price FROM items WHERE id BETWEEN 1 AND 5 ORDER BY id"])
            reads += 1
        stop.set()
        for t in threads:
            t.join(30)
        conn.close()
        h.check(not errors, f"writer errors: {errors[:2]}")
        final = sh.settle(timeout=20)
        ctx.log(f"{reads} reads of hot rows: {final}")
        confirmed = [m for m in sh.mismatches() if m["result"] == "mismatch"]
        h.check_eq(confirmed, [], "confirmed mismatches from writes in flight")
        h.check_eq(final["mismatch"], 0.0, "cutover_shadow_comparisons_total{result=mismatch}")
        sh.stop()
    finally:
        stop.set()
        sh.proxy.cleanup()


def check_noisy(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    ctx.new.psql("""CREATE TEMP TABLE keep AS SELECT * FROM items; TRUNCATE items;
                    INSERT INTO items SELECT * FROM keep ORDER BY id DESC;""", db="sh")
    sh = Sh(ctx)
    try:
        conn = sh.connect()
        m0 = sh.shadow()
        run_queries(conn, ["SELECT id FROM items ORDER BY random() LIMIT 5"] * 5 +
                          ["SELECT id FROM items LIMIT 5"] * 5)
        m1 = sh.settle()
        conn.close()
        delta = {k: m1[k] - m0[k] for k in m1}
        compared = delta["match"] + delta["mismatch"] + delta["transient"] + delta["noisy"] + delta["error"]
        h.check_eq(delta["mismatch"] + delta["transient"], 0.0, f"noisy statements counted as mismatches: {delta}")
        # Each compared one differed (new holds the rows in reverse order) and was noise; under
        # load some shadows are dropped instead (counted as such).
        h.check(compared >= 1 and delta["noisy"] == compared, f"noisy statements not counted as noisy: {delta}")
        h.check_eq(sh.mismatches(), [], "mismatches.jsonl")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        reset_new(ctx)


def backend_pids(cluster, db):
    out = cluster.psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()")
    return [int(x) for x in out.split()]


def check_new_store_stalled(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    sh = Sh(ctx)
    stopped = []
    try:
        conn = sh.connect()
        q = ["SELECT id, name FROM items WHERE id = %d" % i for i in range(1, 201)]

        def timed():
            t0 = time.perf_counter()
            run_queries(conn, q)
            return (time.perf_counter() - t0) / len(q) * 1000

        before_ms = statistics.median(timed() for _ in range(3))
        sh.settle()
        m0 = sh.shadow()
        stopped = backend_pids(ctx.new, "sh")
        h.check(stopped, "no backend of the session on new")
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        rss0 = sh.proxy.rss_kib()
        during_ms = statistics.median(timed() for _ in range(5))
        rss1 = sh.proxy.rss_kib()
        m1 = sh.shadow()
        dropped = m1["dropped"] - m0["dropped"]
        ctx.log(f"per-read latency before {before_ms:.3f} ms, new stalled {during_ms:.3f} ms; "
                f"{dropped:.0f} shadows dropped; RSS {rss0} → {rss1} KiB")
        h.check(dropped >= 900, f"shadows dropped while new is stalled: {dropped}")
        h.check(during_ms < max(5 * before_ms, before_ms + 2), f"reads slowed down: {before_ms:.3f} → {during_ms:.3f} ms")
        h.check_memory(rss1 - rss0 < 20 * 1024, f"proxy RSS grew {rss1 - rss0} KiB while new was stalled")
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        stopped = []
        sh.settle()
        m2 = sh.shadow()
        run_queries(conn, q[:20])
        m3 = sh.settle()
        # Resumed: reads are compared again (how many depends on how fast new catches up; the
        # rest are dropped by the per-session bound, as designed).
        h.check(m3["match"] - m2["match"] >= 1 and m3["error"] == m2["error"],
                f"shadows resumed after SIGCONT: {m2} → {m3}")
        conn.close()
        sh.stop()
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        sh.proxy.cleanup()


def check_million_rows(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    sh = Sh(ctx)
    try:
        conn = sh.connect()
        with h.RssSampler(sh.proxy.pid) as rss:
            with conn.cursor() as cur:
                cur.execute("SELECT g, 'row ' || g, g * 1.5 FROM generate_series(1, 1000000) g")
                n = 0
                while True:
                    rows = cur.fetchmany(10000)
                    if not rows:
                        break
                    n += len(rows)
            final = sh.settle()
        conn.close()
        h.check_eq(n, 1000000, "rows the client got")
        h.check(final["match"] >= 1, f"the million-row read was compared: {final}")
        ctx.log(f"1,000,000-row shadowed read: peak proxy RSS {rss.peak} KiB; {final}")
        sh.stop()
    finally:
        sh.proxy.cleanup()


def check_set_transaction_not_replayed(ctx):
    if proxy_only(ctx, "shadow rechecks"):
        return
    ctx.new.psql("UPDATE items SET name = 'changed on new' WHERE id = 77", db="sh")
    sh = Sh(ctx, compare={"recheck": {"attempts": 2, "delay_ms": 100}})
    try:
        # A startup setting, as node-postgres and pgx send: the recheck applies it first (a query).
        conn = sh.proxy.connect(db="sh", client_encoding="UTF8")
        with conn.cursor() as cur:   # psycopg2 begins the transaction itself
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SET LOCAL work_mem = '8MB'")
            cur.execute("SELECT count(*) FROM items")
        conn.commit()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT id, name FROM items WHERE id = 77")
            h.check_eq(cur.fetchall(), [(77, "item 77")], "the client gets old's row")
        found = sh.wait_mismatches(1)
        conn.close()
        h.check_eq([(m["kind"], m["result"]) for m in found], [("values", "mismatch")],
                   f"the changed row, rechecked and confirmed: {found}; shadow counts {sh.shadow()}")
        h.check_eq(sh.shadow()["error"], 0.0, "shadows that could not be compared")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        reset_new(ctx)


def check_shadow_then_write(ctx):
    if proxy_only(ctx, "shadow reads beside writes"):
        return
    ctx.old.psql("CREATE TABLE sw (id int PRIMARY KEY); CREATE VIEW slowv AS SELECT 1 AS one", db="sh")
    ctx.new.psql("CREATE TABLE sw (id int PRIMARY KEY); "
                 "CREATE VIEW slowv AS SELECT 1 AS one FROM pg_sleep(0.05)", db="sh")
    sh = Sh(ctx)
    try:
        conn = sh.connect()
        with conn.cursor() as cur:
            for i in range(20):
                cur.execute("SELECT one FROM slowv")
                cur.fetchall()
                cur.execute("INSERT INTO sw VALUES (%s)", (i,))
        conn.close()
        rows = [c.psql("SELECT count(*) FROM sw", db="sh").strip() for c in (ctx.old, ctx.new)]
        h.check_eq(rows, ["20", "20"], "rows on old and new")
        path = os.path.join(sh.journal_dir, "divergences.jsonl")
        lines = [json.loads(l) for l in h.read_text(path).splitlines() if l.strip()] if os.path.exists(path) else []
        h.check_eq([(d["kind"], d["secondary_outcome"]) for d in lines], [], "divergences")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        for c in (ctx.old, ctx.new):
            c.psql("DROP VIEW IF EXISTS slowv; DROP TABLE IF EXISTS sw", db="sh")


def check_user_types(ctx):
    if proxy_only(ctx, "shadow reads"):
        return
    ctx.new.psql("CREATE TYPE shift_oids AS (a int); CREATE TYPE shift_more AS ENUM ('x')", db="sh")
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE TYPE pair AS (a int, b text);"
               "CREATE TABLE feelings (id int PRIMARY KEY, m mood, p pair);"
               "INSERT INTO feelings SELECT g, (ARRAY['sad','ok','happy'])[g % 3 + 1]::mood, ROW(g, 'p' || g)::pair "
               "FROM generate_series(1, 50) g", db="sh")
    oids = [c.psql("SELECT 'mood'::regtype::oid", db="sh").strip() for c in (ctx.old, ctx.new)]
    h.check(oids[0] != oids[1], f"the enum's OID differs between the stores ({oids})")
    sh = Sh(ctx)
    try:
        m0 = sh.shadow()
        conn = sh.connect()
        run_queries(conn, ["SELECT id, m, p FROM feelings ORDER BY id",
                           "SELECT m AS feeling FROM feelings WHERE id = 7",
                           "SELECT array_agg(m ORDER BY id) FROM feelings",
                           "SELECT m, count(*) FROM feelings GROUP BY m ORDER BY m"])
        m1 = sh.settle()
        conn.close()
        delta = {k: m1[k] - m0[k] for k in m1}
        ctx.log(f"shadow results: {delta}")
        h.check_eq((delta["match"], delta["mismatch"], delta["transient"], delta["error"]), (4, 0, 0, 0),
                   f"user-defined types compared by value: {sh.mismatches()[:2]}")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        for c in (ctx.old, ctx.new):
            c.psql("DROP TABLE IF EXISTS feelings; DROP TYPE IF EXISTS mood; DROP TYPE IF EXISTS pair", db="sh")
        ctx.new.psql("DROP TYPE IF EXISTS shift_oids; DROP TYPE IF EXISTS shift_more", db="sh")


def check_catalog_reads(ctx):
    if proxy_only(ctx, "catalog routing"):
        return
    ctx.new.psql("CREATE TABLE shift_oids1 (a int); CREATE TABLE shift_oids2 (a int)", db="sh")
    for c in (ctx.old, ctx.new):
        c.psql("CREATE TABLE cat_t (id int PRIMARY KEY, name text DEFAULT 'x', n int CHECK (n > 0));"
               "CREATE INDEX cat_t_name ON cat_t (name); INSERT INTO cat_t VALUES (1, 'a', 1)", db="sh")
    oids = [c.psql("SELECT 'cat_t'::regclass::oid", db="sh").strip() for c in (ctx.old, ctx.new)]
    h.check(oids[0] != oids[1], f"cat_t's OID differs between the stores ({oids})")
    sh = Sh(ctx, reads_new_percent=100)
    try:
        m0 = sh.metrics()
        ep = sh.proxy.endpoint()
        outputs = {}
        for cmd in [r"\d cat_t", r"\d+ cat_t", r"\dt", r"\df", r"\dT", r"\di"]:
            r = subprocess.run(["psql", "-X", "-h", ep.host, "-p", str(ep.port), "-U", "postgres", "-d", "sh",
                                "-c", cmd], capture_output=True, text=True, timeout=60)
            h.check_eq((r.returncode, r.stderr), (0, ""), f"psql {cmd}")
            outputs[cmd] = r.stdout
        direct = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(ctx.old.port), "-U", "postgres", "-d",
                                 "sh", "-c", r"\d+ cat_t"], capture_output=True, text=True, timeout=60)
        h.check_eq(outputs[r"\d+ cat_t"], direct.stdout, "psql \\d+ through the proxy vs old directly")
        conn = sh.connect()
        rows = run_queries(conn, ["SELECT 'cat_t'::regclass::oid",
                                  "SELECT column_name FROM information_schema.columns WHERE table_name = 'cat_t' "
                                  "ORDER BY ordinal_position",
                                  "SELECT pg_relation_size('cat_t') >= 0",
                                  "SELECT id, name FROM cat_t"])
        h.check_eq(str(rows[0][0][0]), oids[0], "the regclass read is old's answer")
        m1 = sh.settle()
        after = sh.metrics()
        conn.close()
        delta = {k: m1[k] - {r: m0.get("cutover_shadow_comparisons_total", result=r) for r in m1}[k] for k in m1}
        ctx.log(f"shadow results: {delta}")
        h.check_eq((delta["mismatch"], delta["transient"], delta["error"]), (0, 0, 0),
                   f"catalog reads compared: {sh.mismatches()[:2]}")
        h.check_eq(delta["match"], 1.0, "only the user-table read was shadow-compared")
        served_new = after.since(m0, "cutover_statements_total", kind="read", served_by="new")
        h.check_eq(served_new, 1.0, "reads served by new: only the user-table read")
        sh.stop()
        # sticky: statement at 50 %: psql's dependent catalog queries (an OID from the first used
        # by the next) all stay on old (before: split across stores, "Did not find any relation").
        sh = Sh(ctx, reads_new_percent=50, sticky="statement")
        ep = sh.proxy.endpoint()
        for _ in range(5):
            r = subprocess.run(["psql", "-X", "-h", ep.host, "-p", str(ep.port), "-U", "postgres", "-d", "sh",
                                "-c", r"\d+ cat_t", "-c", r"\d cat_t_name"], capture_output=True, text=True, timeout=60)
            h.check_eq((r.returncode, r.stderr), (0, ""), "psql \\d+ with sticky: statement")
        sh.stop()
    finally:
        sh.proxy.cleanup()
        for c in (ctx.old, ctx.new):
            c.psql("DROP TABLE IF EXISTS cat_t", db="sh")
        ctx.new.psql("DROP TABLE IF EXISTS shift_oids1, shift_oids2", db="sh")


CHECKS = [check_identical_data, check_physical_order, check_changed_and_deleted_rows, check_error_one_side,
          check_hot_rows_are_transient, check_noisy, check_new_store_stalled, check_set_transaction_not_replayed, check_shadow_then_write,
          check_user_types,
          check_catalog_reads, check_million_rows]

if __name__ == "__main__":
    sys.exit(h.main(CHECKS, setup))
