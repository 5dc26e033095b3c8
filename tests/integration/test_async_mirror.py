#!/usr/bin/python3
"""`mirror: async` through cutover (issue 4): the client is answered as soon as the authoritative
store has finished, the secondary applies each session's writes later, in order, from a bounded
queue.

Each check holds a lock on the new store directly (outside the proxy) so the mirror cannot make
progress, and looks at what the client and the proxy do meanwhile; then it releases the lock and
waits for `cutover_mirror_queue_units` to drain. Nothing asserts on timings: "the client was
answered without waiting" means every statement returned while new's lock was still held.

- answers_without_waiting: 20 inserts return while new is locked; the queue gauge counts them;
  old has them, new not yet; after the lock is released new catches up, row for row.
- read_your_writes: `reads_new_percent: 100`: a session with queued writes reads from old and
  sees its own insert; a session with an empty queue reads from new (stale, as async allows).
- queue_full_is_journaled: `mirror_queue_units: 5`: writes beyond the queue are not lost silently:
  each is a `queue_full` line in divergences.jsonl naming its statement, and counted as dropped;
  exactly those rows are missing on new afterwards.
- client_leaves_with_queue: a client disconnects with writes queued; they are applied anyway.
- flag_change_waits_for_drain: authority moved to new (`writes: dual-new`, reads to new) while a
  session has writes queued: its next statement waits until new has them, then reads them there.
- shutdown_with_queue: SIGTERM while new cannot take the queued writes: the proxy stops anyway
  and journals each of them.
- secondary_timeout: new stalls beyond `mirror_timeout_ms`: the client never notices; the queued
  writes are journaled as `secondary_timeout`.

- health_probe_is_quiet: the stores' logs show the health check logging in, never a FATAL for it.

`--direct`: there is no proxy to test; every check prints SKIP.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

DRAIN_S = 120
TOKEN = "async-mirror-test-token"   # generous: a loaded CI machine under AddressSanitizer


def setup(ctx):
    return {"old": ctx.cluster("old"), "new": ctx.cluster("new")}


class AsyncProxy:
    def __init__(self, ctx, db, flags=None, **overrides):
        self.ctx, self.db = ctx, db
        h.fresh_database(db, ctx.old, ctx.new)
        tmp = h.TmpDir("async-journal").path
        self.journal_dir = os.path.join(tmp, "journal")
        os.makedirs(self.journal_dir)
        if h.IS_ROOT:
            import shutil
            shutil.chown(tmp, "postgres", "postgres")
            shutil.chown(self.journal_dir, "postgres", "postgres")
        self.admin_port = h.free_port()
        f = {"writes": "dual", "mirror": "async"}
        f.update(flags or {})
        self.proxy = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new, flags=f, journal_dir=self.journal_dir,
                             admin={"listen": f"127.0.0.1:{self.admin_port}", "token_env": "AM_TOKEN"},
                             env={"AM_TOKEN": TOKEN}, **overrides)

    def connect(self):
        conn = self.proxy.connect(db=self.db)
        conn.autocommit = True
        return conn

    def metrics(self):
        return h.Metrics(self.admin_port)

    def queued(self):
        return self.metrics().get("cutover_mirror_queue_units")

    def wait_drained(self, what):
        deadline = time.monotonic() + DRAIN_S
        while True:
            n = self.queued()
            if n == 0:
                return
            h.check(time.monotonic() < deadline, f"{what}: {n:.0f} writes still queued after {DRAIN_S}s")
            time.sleep(0.1)

    def journal(self):
        path = os.path.join(self.journal_dir, "divergences.jsonl")
        if not os.path.exists(path):
            return []
        return [json.loads(line) for line in h.read_text(path).splitlines() if line.strip()]

    def journal_lines(self, kind, want, timeout=30):
        """The journal's `kind` lines once there are `want` of them (or the timeout passed): a
        line is appended by the journal's own thread, after the write it is about was dropped."""
        deadline = time.monotonic() + timeout
        while True:
            journal = self.journal()
            lines = [d for d in journal if d.get("kind") == kind]
            if len(lines) >= want or time.monotonic() > deadline:
                return lines, journal
            time.sleep(0.1)

    def stop(self):
        rc = self.proxy.stop()
        h.check_eq(rc, 0, "proxy exit status")


def direct(cluster, db):
    conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="postgres", dbname=db)
    conn.autocommit = True
    return conn


def rows(cluster, db, sql="SELECT id, v FROM t ORDER BY id"):
    return h.fetch_all(cluster, sql, db=db)


class NewLocked:
    """Holds EXCLUSIVE on `table` in new (a transaction outside the proxy): every mirrored write
    to it waits there until release(), while plain reads of it still answer."""

    def __init__(self, ctx, db, table="t"):
        self.conn = direct(ctx.new, db)
        self.conn.autocommit = False
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        self.held = True

    def release(self):
        if self.held:
            self.conn.rollback()
            self.conn.close()
            self.held = False


def skip_direct(ctx, name):
    if ctx.direct:
        print(f"  SKIP {name}: --direct has no proxy and no mirror", flush=True)
        return True
    return False


def locked(ctx, name, db, **kw):
    """A proxy (mirror: async) in front of fresh databases `db` holding table t on both stores,
    and new's t locked (NewLocked); None with --direct."""
    if skip_direct(ctx, name):
        return None
    ap = AsyncProxy(ctx, db, **kw)
    conn = ap.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
    conn.close()
    ap.wait_drained("CREATE TABLE")
    return ap, NewLocked(ctx, db)


def check_answers_without_waiting(ctx):
    db = "am_wait"
    setup = locked(ctx, "answers_without_waiting", db, mirror_timeout_ms=600000)
    if setup is None:
        return
    ap, lock = setup
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(20):
                cur.execute("INSERT INTO t VALUES (%s, %s)", (i, f"v{i}"))
                h.check_eq(cur.statusmessage, "INSERT 0 1", "insert tag")
        # Every insert returned while new was locked (none of them applied there yet, all 20
        # queued): the client did not wait for the mirror.
        h.check_eq(ap.queued(), 20.0, "cutover_mirror_queue_units while new is locked")
        h.check_eq(len(rows(ctx.old, db)), 20, "rows on old")
        h.check_eq(rows(ctx.new, db, "SELECT count(*) FROM t")[0][0], 0,
                   "rows on new while it is locked (nothing applied yet)")
        conn.close()
    finally:
        lock.release()
    ap.wait_drained("after the lock on new was released")
    h.check_eq(rows(ctx.new, db), rows(ctx.old, db), "new's rows after the queue drained")
    m = ap.metrics()
    h.check(m.get("cutover_mirror_writes_total", result="ok") >= 20, "mirror_writes_total{ok}")
    h.check_eq(m.get("cutover_mirror_writes_total", result="dropped"), 0.0, "mirror_writes_total{dropped}")
    h.check_eq(ap.journal(), [], "divergences.jsonl")
    ap.stop()


def check_read_your_writes(ctx):
    db = "am_ryw"
    setup = locked(ctx, "read_your_writes", db, flags={"reads_new_percent": 100}, mirror_timeout_ms=600000)
    if setup is None:
        return
    ap, lock = setup
    try:
        writer, other = ap.connect(), ap.connect()
        m0 = ap.metrics()
        with writer.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1, 'mine')")
            cur.execute("SELECT v FROM t WHERE id = 1")
            h.check_eq(cur.fetchall(), [("mine",)], "a session reads its own queued write")
        m1 = ap.metrics()
        h.check_eq(m1.since(m0, "cutover_statements_total", kind="read", served_by="old"), 1.0,
                   "reads served by old for the session with queued writes")
        with other.cursor() as cur:
            # Its own queue is empty: the ramp sends it to new, which has not applied the insert.
            cur.execute("SELECT count(*) FROM t")
            h.check_eq(cur.fetchall(), [(0,)], "a session with nothing queued reads new (not caught up yet)")
        m2 = ap.metrics()
        h.check_eq(m2.since(m1, "cutover_statements_total", kind="read", served_by="new"), 1.0,
                   "reads served by new for a session with nothing queued")
        writer.close()
        other.close()
    finally:
        lock.release()
    ap.wait_drained("after the lock on new was released")
    h.check_eq(rows(ctx.new, db), rows(ctx.old, db), "new's rows after the queue drained")
    ap.stop()


def check_queue_full_is_journaled(ctx):
    db = "am_full"
    setup = locked(ctx, "queue_full_is_journaled", db, mirror_timeout_ms=600000, mirror_queue_units=5)
    if setup is None:
        return
    ap, lock = setup
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(12):
                cur.execute("INSERT INTO t VALUES (%s, %s)", (i, f"v{i}"))   # never an error
        h.check_eq(ap.queued(), 5.0, "cutover_mirror_queue_units at its bound")
        conn.close()
    finally:
        lock.release()
    ap.wait_drained("after the lock on new was released")
    full, journal = ap.journal_lines("queue_full", 7)
    h.check_eq(len(full), 7, f"queue_full lines in divergences.jsonl: {journal}")
    for d in full:
        h.check("mirror_queue_units" in d.get("secondary_outcome", ""), f"queue_full line names the limit: {d}")
        h.check_eq(d.get("authoritative_store"), "old", "authoritative_store")
    # psycopg2 binds parameters client-side: each journaled statement carries its id.
    journaled = sorted(int(d["statement"].split("VALUES (")[1].split(",")[0]) for d in full)
    old_ids = {r[0] for r in rows(ctx.old, db)}
    new_ids = {r[0] for r in rows(ctx.new, db)}
    h.check_eq(sorted(old_ids - new_ids), journaled, "rows missing on new are exactly the journaled ones")
    m = ap.metrics()
    h.check_eq(m.get("cutover_mirror_writes_total", result="dropped"), 7.0, "mirror_writes_total{dropped}")
    h.check(m.get("cutover_divergences_total") >= 7, "divergences_total")
    ap.stop()


def check_client_leaves_with_queue(ctx):
    db = "am_leave"
    setup = locked(ctx, "client_leaves_with_queue", db, mirror_timeout_ms=600000)
    if setup is None:
        return
    ap, lock = setup
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(10):
                cur.execute("INSERT INTO t VALUES (%s, 'left behind')", (i,))
            cur.execute("UPDATE t SET v = v || ' and updated' WHERE id < 5")
        conn.close()   # the client is gone; its writes are still queued
        h.check_eq(ap.queued(), 11.0, "cutover_mirror_queue_units after the client left")
    finally:
        lock.release()
    ap.wait_drained("after the lock on new was released")
    h.check_eq(rows(ctx.new, db), rows(ctx.old, db), "new's rows: the departed client's writes applied")
    h.check_eq(ap.journal(), [], "divergences.jsonl")
    ap.stop()


def check_flag_change_waits_for_drain(ctx):
    db = "am_flip"
    setup = locked(ctx, "flag_change_waits_for_drain", db, mirror_timeout_ms=600000)
    if setup is None:
        return
    ap, lock = setup
    result = {}
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(5):
                cur.execute("INSERT INTO t VALUES (%s, 'before the flip')", (i,))
        status, answer = h.admin_request(ap.admin_port, "PUT", "/flags",
                                         {"writes": "dual-new", "reads_new_percent": 100,
                                          "reason": "async flip test"}, token=TOKEN)
        h.check_eq(status, 200, f"PUT /flags writes dual-new, reads_new_percent 100: {answer}")

        def read():
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM t")
                    result["count"] = cur.fetchone()[0]
            except Exception as e:  # reported by the check below
                result["error"] = e
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(1.0)
        # While new lacks the session's writes, the session must not switch to it.
        h.check(reader.is_alive() or "error" in result,
                f"the read after the flip answered while new still lacked the session's writes: {result}")
    finally:
        lock.release()
    reader.join(DRAIN_S)
    h.check(not reader.is_alive(), "the read after the flip never answered")
    h.check("error" not in result, f"the read after the flip failed: {result.get('error')}")
    h.check_eq(result.get("count"), 5, "count(*) read after the flip (served by new, the authority now)")
    m = ap.metrics()
    h.check(m.get("cutover_statements_total", kind="read", served_by="new") >= 1, "the read was served by new")
    conn.close()
    ap.wait_drained("end")
    ap.stop()


def check_shutdown_with_queue(ctx):
    """SIGTERM while writes are queued and new cannot take them: the proxy still stops (after
    shutdown_timeout_ms) and every write it could not apply is in the journal."""
    db = "am_stop"
    setup = locked(ctx, "shutdown_with_queue", db, mirror_timeout_ms=600000)
    if setup is None:
        return
    ap, lock = setup
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(3):
                cur.execute("INSERT INTO t VALUES (%s, 'at shutdown')", (i,))
        conn.close()
        h.check_eq(ap.queued(), 3.0, "cutover_mirror_queue_units before SIGTERM")
        ap.stop()
    finally:
        lock.release()
    lines = ap.journal()
    h.check_eq(len(lines), 3, f"divergences.jsonl after the stop: {lines}")
    h.check(all("at shutdown" in d.get("statement", "") for d in lines), f"journaled statements: {lines}")
    h.check("outcome unknown" in lines[0].get("secondary_outcome", ""),
            f"the write that was running on new is marked unknown: {lines[0]}")
    h.check(all(d.get("kind") == "secondary_unavailable" for d in lines), f"kinds: {lines}")


def check_secondary_timeout(ctx):
    db = "am_timeout"
    setup = locked(ctx, "secondary_timeout", db, mirror_timeout_ms=1000)
    if setup is None:
        return
    ap, lock = setup
    try:
        conn = ap.connect()
        with conn.cursor() as cur:
            for i in range(3):
                cur.execute("INSERT INTO t VALUES (%s, 'slow new')", (i,))
        deadline = time.monotonic() + DRAIN_S
        while ap.queued() > 0:
            h.check(time.monotonic() < deadline, "queued writes never timed out")
            time.sleep(0.1)
        with conn.cursor() as cur:   # the client goes on, on old alone
            cur.execute("INSERT INTO t VALUES (100, 'after the timeout')")
            cur.execute("SELECT count(*) FROM t")
            h.check_eq(cur.fetchone()[0], 4, "rows the client sees")
        conn.close()
    finally:
        lock.release()
    kinds = [d.get("kind") for d in ap.journal()]
    h.check(kinds.count("secondary_timeout") == 3,
            f"divergences.jsonl: every queued write journaled as secondary_timeout: {kinds}")
    h.check(len(kinds) == 4, f"divergences.jsonl: and the write after it, not mirrored: {kinds}")
    ap.stop()


def check_health_probe_is_quiet(ctx):
    """The once-a-second store health check logs in as the store's user (here none is
    configured: "postgres"), not as the proxy's OS user, which made every store log a FATAL
    "role does not exist" each second."""
    if skip_direct(ctx, "health_probe_is_quiet"):
        return
    ap = AsyncProxy(ctx, "am_health")
    probes = {}
    deadline = time.monotonic() + 30
    while True:
        for name, cluster in (("old", ctx.old), ("new", ctx.new)):
            lines = [l for l in h.read_text(cluster.logfile).splitlines() if "cutover-health" in l]
            probes[name] = lines
        if all(any("connection authorized" in l for l in lines) for lines in probes.values()):
            break
        h.check(time.monotonic() < deadline, f"no health probe logged in within 30 s: {probes}")
        time.sleep(0.2)
    for name, cluster in (("old", ctx.old), ("new", ctx.new)):
        # The probe's backends, by the "[pid]" of its log lines; then any FATAL of theirs.
        pids = {l.split("[", 1)[1].split("]", 1)[0] for l in probes[name] if "[" in l}
        fatal = [l for l in h.read_text(cluster.logfile).splitlines()
                 if "FATAL" in l and any(f"[{pid}]" in l for pid in pids)]
        h.check(not fatal, f"the health probe's logins fail on {name}: {fatal[:3]}")
    ap.stop()


if __name__ == "__main__":
    h.run([check_answers_without_waiting, check_read_your_writes, check_queue_full_is_journaled,
           check_client_leaves_with_queue, check_flag_change_waits_for_drain, check_shutdown_with_queue,
           check_secondary_timeout, check_health_probe_is_quiet],
          setup=setup)
