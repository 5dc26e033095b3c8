#!/usr/bin/python3
"""The autocommit wrap of dual-write (writes: dual): a write outside a transaction runs inside
BEGIN … COMMIT on the authoritative store so its row locks are held until the secondary applied
it. The wrap must never change what PostgreSQL answers: statements that behave otherwise inside
a transaction block are not wrapped (router::StatementInfo::wrappable, from the parse tree).

For `mirror: sync` and `mirror: async`, and against PostgreSQL itself with --direct:
- lock_outside_transaction: `LOCK TABLE t` outside a transaction fails with 25P01, as PostgreSQL
  answers ("LOCK TABLE can only be used in transaction blocks"); inside one it succeeds, and the
  secondary's session runs it too (its lock is seen in new's pg_locks while the transaction runs).
- declare_outside_transaction: `DECLARE c CURSOR FOR SELECT … FOR UPDATE` outside a transaction
  fails with 25P01.
- procedure_that_commits: `CALL p()` of a procedure that COMMITs between two inserts succeeds
  (inside a block it would fail with 2D000) and both stores hold both rows.
- vacuum_and_row_writes: VACUUM (refused inside a block: 25001) succeeds; INSERT/UPDATE/DELETE,
  TRUNCATE and COPY FROM still run and both stores end with the same rows.
- failed_commit_then_writes: an autocommit INSERT that a DEFERRABLE INITIALLY DEFERRED unique
  constraint fails at its COMMIT answers 23505 as PostgreSQL does, and the session's next writes
  (autocommit and in a transaction) succeed: both stores hold the same rows, nothing journaled
  (before: the failed injected COMMIT left cutover's statement behind, and every later wrapped
  write failed with 42P05 "prepared statement \"cutover:inject\" already exists").
- failed_write_stays_off_the_secondary: old holds a row new lacks; an autocommit INSERT of its
  key fails on old (23505) and would succeed on new; so would the same INSERT in a transaction
  the client then COMMITs (ROLLBACK, as PostgreSQL answers in a failed transaction). Neither
  stays on new — the client was told it failed — and each is journaled `error_one_side` (the
  autocommit one saying the secondary's part was rolled back; the transaction's COMMIT ends as
  ROLLBACK on both, no line); COMMIT AND CHAIN of a failed transaction chains on both (the
  chained transaction's INSERT is rolled back with it on new too). Before: new kept the rows,
  and the COMMIT was a tag_mismatch.
- notices_at_commit: the NOTICE a deferred constraint trigger raises at an autocommit INSERT's
  commit reaches the client (before: the wrap's COMMIT dropped it).
"""

import io
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()
DRAIN_S = 120   # async: a loaded CI machine under AddressSanitizer applies slowly


def setup(ctx):
    return {"old": ctx.cluster("old"), "new": ctx.cluster("new")}


class Target:
    """The dual-write proxy with `mirror`, or with --direct the old store itself."""

    def __init__(self, ctx, db, mirror):
        self.ctx, self.db, self.mirror = ctx, db, mirror
        h.fresh_database(db, *([ctx.old] if ctx.direct else [ctx.old, ctx.new]))
        self.admin_port = None
        if ctx.direct:
            self.tgt = h.DirectTarget(ctx.old)
            return
        tmp = h.TmpDir("wrap-journal").path
        journal_dir = os.path.join(tmp, "journal")
        os.makedirs(journal_dir)
        if h.IS_ROOT:
            shutil.chown(tmp, "postgres", "postgres")
            shutil.chown(journal_dir, "postgres", "postgres")
        self.journal_path = os.path.join(journal_dir, "divergences.jsonl")
        self.admin_port = h.free_port()
        self.tgt = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new,
                           flags={"writes": "dual", "mirror": mirror},
                           journal_dir=journal_dir, admin={"listen": f"127.0.0.1:{self.admin_port}"})

    def connect(self):
        conn = self.tgt.connect(db=self.db)
        conn.autocommit = True
        return conn

    def drained(self):
        """async: waits until the proxy's mirror queue is empty."""
        if self.ctx.direct or self.mirror != "async":
            return
        deadline = time.monotonic() + DRAIN_S
        while h.Metrics(self.admin_port).get("cutover_mirror_queue_units") > 0:
            h.check(time.monotonic() < deadline, f"the async mirror queue did not drain in {DRAIN_S} s")
            time.sleep(0.05)

    def journal(self):
        return [] if self.ctx.direct else [line for line in h.read_text(self.journal_path).splitlines() if line]

    def stores(self):
        return [self.ctx.old] if self.ctx.direct else [self.ctx.old, self.ctx.new]

    def stop(self):
        if not self.ctx.direct:
            h.check_eq(self.tgt.stop(), 0, f"proxy exit code; stderr:\n{self.tgt.stderr_text()[-3000:]}")


def sqlstate_of(cur, sql):
    try:
        cur.execute(sql)
    except psycopg2.Error as e:
        return e.pgcode, str(e).strip().splitlines()[0]
    return None, cur.statusmessage


def each_mode(ctx, name, fn):
    for mirror in ("sync",) if ctx.direct else ("sync", "async"):
        t = Target(ctx, f"{name}_{mirror}", mirror)
        try:
            fn(ctx, t)
            t.stop()
        except h.CheckFailed as e:
            raise h.CheckFailed(f"mirror: {mirror}: {e}") from None


def lock_outside_transaction(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    h.check_eq(sqlstate_of(cur, "LOCK TABLE t"),
               ("25P01", "LOCK TABLE can only be used in transaction blocks"), "LOCK TABLE outside a transaction")
    h.check_eq(sqlstate_of(cur, "LOCK t IN SHARE MODE"),
               ("25P01", "LOCK TABLE can only be used in transaction blocks"), "LOCK … IN SHARE MODE outside a transaction")
    cur.execute("SELECT 1")   # the session goes on
    h.check_eq(cur.fetchone(), (1,), "the session answers after the refused LOCK")
    cur.execute("BEGIN")
    h.check_eq(sqlstate_of(cur, "LOCK TABLE t IN EXCLUSIVE MODE"), (None, "LOCK TABLE"), "LOCK TABLE in a transaction")
    held = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation " \
           "WHERE c.relname = 't' AND l.mode = 'ExclusiveLock' AND l.granted"
    if t.mirror == "sync":   # async applies the transaction's statements at its COMMIT
        for store in t.stores():
            h.check_eq(store.psql(held, db=t.db).strip(), "1", f"the transaction's lock is held on {store.name}")
    cur.execute("COMMIT")
    conn.close()
    t.drained()
    h.check_eq(t.journal(), [], "divergences.jsonl")


def declare_outside_transaction(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    h.check_eq(sqlstate_of(cur, "DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE"),
               ("25P01", "DECLARE CURSOR can only be used in transaction blocks"),
               "DECLARE … FOR UPDATE outside a transaction")
    cur.execute("SELECT count(*) FROM t")
    h.check_eq(cur.fetchone(), (1,), "the session answers after the refused DECLARE")
    conn.close()
    t.drained()
    h.check_eq(t.journal(), [], "divergences.jsonl")


def procedure_that_commits(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY)")
    cur.execute("CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN INSERT INTO t VALUES (1); COMMIT; "
                "INSERT INTO t VALUES (2); END $$")
    h.check_eq(sqlstate_of(cur, "CALL p()"), (None, "CALL"), "CALL of a procedure that commits")
    conn.close()
    t.drained()
    for store in t.stores():
        h.check_eq(store.psql("SELECT string_agg(id::text, ',' ORDER BY id) FROM t", db=t.db).strip(), "1,2",
                   f"rows on {store.name}")
    h.check_eq(t.journal(), [], "divergences.jsonl")


def vacuum_and_row_writes(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    h.check_eq(sqlstate_of(cur, "VACUUM t"), (None, "VACUUM"), "VACUUM outside a transaction")
    cur.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g")
    cur.execute("UPDATE t SET v = 'u' WHERE id <= 3")
    cur.execute("DELETE FROM t WHERE id = 10")
    cur.execute("TRUNCATE t")
    cur.copy_expert("COPY t FROM STDIN", io.StringIO("".join(f"{i}\tc{i}\n" for i in range(1, 6))))
    cur.execute("UPDATE t SET v = 'x' WHERE id = 2")
    conn.close()
    t.drained()
    want = "1:c1,2:x,3:c3,4:c4,5:c5"
    for store in t.stores():
        h.check_eq(store.psql("SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM t", db=t.db).strip(), want,
                   f"rows on {store.name}")
    h.check_eq(t.journal(), [], "divergences.jsonl")


def failed_commit_then_writes(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE d (f1 int, CONSTRAINT d_u UNIQUE (f1) DEFERRABLE INITIALLY DEFERRED)")
    cur.execute("INSERT INTO d VALUES (1)")
    # Checked at the commit: through the wrap, cutover's COMMIT is what fails.
    h.check_eq(sqlstate_of(cur, "INSERT INTO d VALUES (1)"),
               ("23505", 'duplicate key value violates unique constraint "d_u"'), "a write failing at its COMMIT")
    for v in (2, 3):   # the session's next writes run as before (the failed COMMIT left nothing behind)
        h.check_eq(sqlstate_of(cur, f"INSERT INTO d VALUES ({v})"), (None, "INSERT 0 1"), f"INSERT {v} after it")
    cur.execute("BEGIN")
    cur.execute("INSERT INTO d VALUES (4)")
    h.check_eq(sqlstate_of(cur, "COMMIT"), (None, "COMMIT"), "an explicit transaction after it")
    conn.close()
    t.drained()
    for store in t.stores():
        h.check_eq(store.psql("SELECT string_agg(f1::text, ',' ORDER BY f1) FROM d", db=t.db).strip(), "1,2,3,4",
                   f"rows on {store.name}")
    h.check_eq(t.journal(), [], "divergences.jsonl")


def notices_at_commit(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE n (id int PRIMARY KEY)")
    cur.execute("CREATE FUNCTION said() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE NOTICE 'deferred check of %', NEW.id; RETURN NULL; END $$")
    cur.execute("CREATE CONSTRAINT TRIGGER n_said AFTER INSERT ON n DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW EXECUTE FUNCTION said()")
    del conn.notices[:]
    cur.execute("INSERT INTO n VALUES (7)")   # its trigger fires at the commit
    h.check_eq([n.strip() for n in conn.notices], ["NOTICE:  deferred check of 7"],
               "the notice a deferred trigger raised at the autocommit INSERT's commit")
    conn.close()
    t.drained()
    h.check_eq(t.journal(), [], "divergences.jsonl")


def failed_write_stays_off_the_secondary(ctx, t):
    conn = t.connect()
    cur = conn.cursor()
    cur.execute("CREATE TABLE f (id int PRIMARY KEY, note text)")
    t.drained()
    # The stores differ (as after any journaled divergence): old has a row new lacks.
    ctx.old.psql("INSERT INTO f VALUES (1, 'on old only')", db=t.db)
    h.check_eq(sqlstate_of(cur, "INSERT INTO f VALUES (1, 'autocommit')"),
               ("23505", 'duplicate key value violates unique constraint "f_pkey"'), "an autocommit INSERT")
    cur.execute("BEGIN")
    h.check_eq(sqlstate_of(cur, "INSERT INTO f VALUES (1, 'in a transaction')")[0], "23505",
               "an INSERT in a transaction")
    h.check_eq(sqlstate_of(cur, "COMMIT"), (None, "ROLLBACK"), "COMMIT of the failed transaction")
    # COMMIT AND CHAIN of a failed transaction: ROLLBACK, and a new transaction begins at once
    # on both stores; what it writes goes with its own end (a ROLLBACK here).
    cur.execute("BEGIN")
    h.check_eq(sqlstate_of(cur, "INSERT INTO f VALUES (1, 'chained')")[0], "23505", "an INSERT before AND CHAIN")
    h.check_eq(sqlstate_of(cur, "COMMIT AND CHAIN"), (None, "ROLLBACK"), "COMMIT AND CHAIN of the failed transaction")
    h.check_eq(sqlstate_of(cur, "INSERT INTO f VALUES (5, 'in the chained transaction')"), (None, "INSERT 0 1"),
               "an INSERT in the chained transaction")
    h.check_eq(sqlstate_of(cur, "ROLLBACK"), (None, "ROLLBACK"), "ROLLBACK of the chained transaction")
    conn.close()
    t.drained()
    if ctx.direct:
        return
    # The client was told each write failed: the secondary does not keep it either.
    h.check_eq(ctx.new.psql("SELECT count(*) FROM f", db=t.db).strip(), "0", "rows on new")
    lines = [json.loads(line) for line in t.journal()]
    h.check_eq(sorted({d["kind"] for d in lines}), ["error_one_side"], f"journal kinds: {lines}")
    # One line each (each COMMIT ended alike, ROLLBACK on both); async names a transaction whole.
    h.check_eq(len(lines), 3, f"journal lines: {lines}")
    h.check(any(d["statement"] == "INSERT INTO f VALUES (1, 'autocommit')" for d in lines) and
            any("INSERT INTO f VALUES (1, 'in a transaction')" in d["statement"] for d in lines),
            f"the journaled statements: {[d['statement'] for d in lines]}")
    autocommit = next(d for d in lines if "autocommit" in d["statement"])
    h.check("rolled back" in autocommit["secondary_outcome"],
            f"the autocommit line says the secondary's part was rolled back: {autocommit}")


def check_failed_write_stays_off_the_secondary(ctx):
    each_mode(ctx, "wrap_failed_write", failed_write_stays_off_the_secondary)


def check_lock_outside_transaction(ctx):
    each_mode(ctx, "wrap_lock", lock_outside_transaction)


def check_declare_outside_transaction(ctx):
    each_mode(ctx, "wrap_declare", declare_outside_transaction)


def check_procedure_that_commits(ctx):
    each_mode(ctx, "wrap_call", procedure_that_commits)


def check_vacuum_and_row_writes(ctx):
    each_mode(ctx, "wrap_vacuum", vacuum_and_row_writes)


def check_failed_commit_then_writes(ctx):
    each_mode(ctx, "wrap_failed_commit", failed_commit_then_writes)


def check_notices_at_commit(ctx):
    each_mode(ctx, "wrap_notices", notices_at_commit)


CHECKS = [check_failed_write_stays_off_the_secondary, check_lock_outside_transaction, check_declare_outside_transaction, check_procedure_that_commits,
          check_vacuum_and_row_writes, check_failed_commit_then_writes, check_notices_at_commit]

if __name__ == "__main__":
    h.run(CHECKS, setup)
