#!/usr/bin/python3
"""The control plane (issue 6): the admin API, flag flips reaching live sessions, rollback.

Two real PostgreSQL 15 clusters, `old` and `new`, and the real proxy with an admin section.
Which store served a read is told by the store itself: `SELECT current_setting('port')`.

- endpoints_and_auth: every endpoint with and without the bearer token; invalid flag bodies are
  400 naming the key; what this build cannot route is 409; a change bumps the version, persists
  to the state file, moves flags_version / flag_changes_total and writes an audit line.
- pass_through_session_follows_flip: a session that logged in under `writes: old` (pure
  pass-through, nothing parsed) with a search_path, a SQL prepared statement and a LISTEN; the
  flags flip to `dual`; its next statements are mirrored to new, using that search_path and
  prepared statement (copied from old), and NOTIFY still reaches it.
- authority_moves_and_rollback: one live session through dual → dual-new → POST /rollback:
  reads and writes follow the authority at each flip; the rollback counts in
  rollbacks_total{trigger="manual"}; `writes: new` refuses rollback with 409 unless forced.
- flip_latency: 200 PUT /flags alternating reads_new_percent 0/100 (sticky: statement); after
  every answer the next read of a live session is served by the store the flags name (asserted
  every time); the PUT → all-workers-applied time is reported as p50/p99 (not asserted).
- rollback_under_load: pgbench -S through the proxy at reads_new_percent 50; `cutover ctl
  rollback` mid-run; pgbench sees no error and, from the rollback's answer on, no read is served by new
  (statements_total{kind="read",served_by="new"} does not move).
- metrics_move: every metric DESIGN.md names is exported, and the ones traffic drives move.
- fleet: two proxy instances sharing a flag store in a third PostgreSQL (flags.store: postgres);
  a PUT through one instance's API takes effect on the other within 1 s (measured, reported);
  the control database stopped: both keep serving with their last flags, /status says so, a PUT
  is refused with 503 and a rollback still applies locally; back up: that rollback reaches the
  fleet store and the other instance within seconds, and flips through either instance work again.
- auto_rollback_on_errors: reads ramped to new where a table is missing on new: the new store's
  error rate trips auto_rollback; the flip, its log line naming the figure and
  rollbacks_total{trigger="auto"} are asserted, and reads succeed on old afterwards; no re-ramp.
- auto_rollback_on_mismatches: reads shadowed at 100 % while 20 % of them are served by new;
  rows changed on new behind the proxy's back: the confirmed-mismatch rate trips auto_rollback
  (log line naming the figure, rollbacks_total{trigger="auto"}).
- auto_rollback_on_latency: a view that sleeps on new only: the new/old p99 ratio trips it.
- auto_rollback_on_stalled_reads: a lock held on new stalls reads ramped there: the reads
  ramp_read_timeout_ms gives up count as new's errors and trip the error rate; clients get old's
  answers throughout.
- sighup_reloads_config: SIGHUP applies a new max_client_connections to the next login without
  dropping sessions; a changed listen address is reported as needing a restart and not applied;
  a broken file is refused with the error and the running config kept.
- flags_survive_restart: the proxy restarted on the same state file comes back with the flags
  an API call set.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

TOKEN = "control-plane-test-token"


def setup(ctx):
    if ctx.direct:
        return {}
    old = ctx.cluster("old", max_connections=100)
    new = ctx.cluster("new", max_connections=100)
    for c in (old, new):
        c.psql("CREATE DATABASE cp")
        c.psql("CREATE SCHEMA app; CREATE TABLE app.t (id int PRIMARY KEY, v text);"
               "CREATE TABLE public.t (id int PRIMARY KEY, v text)", db="cp")
    return {"old": old, "new": new}


class Cp:
    """A proxy with an admin API in front of old and new."""

    def __init__(self, ctx, state_dir=None, auto_rollback=None, compare=None, extra=None, **flags):
        tmp = state_dir or h.TmpDir("cp").path
        self.tmp = tmp
        self.journal_dir = os.path.join(tmp, "journal")
        os.makedirs(self.journal_dir, exist_ok=True)
        if h.IS_ROOT:
            for root, dirs, files in os.walk(tmp):
                shutil.chown(root, "postgres", "postgres")
        self.admin_port = h.free_port()
        self.state_file = os.path.join(tmp, "flags.json")
        all_flags = {"writes": "old", "state_file": self.state_file}
        all_flags.update(flags)
        self.proxy = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new, flags=all_flags,
                             journal_dir=self.journal_dir,
                             admin={"listen": f"127.0.0.1:{self.admin_port}", "token_env": "CP_TOKEN"},
                             env={"CP_TOKEN": TOKEN},
                             **({"auto_rollback": auto_rollback} if auto_rollback else {}),
                             **({"compare": compare} if compare else {}), **(extra or {}))

    def api(self, method, path, body=None, token=TOKEN):
        return h.admin_request(self.admin_port, method, path, body=body, token=token)

    def put_flags(self, **body):
        status, answer = self.api("PUT", "/flags", body)
        h.check_eq(status, 200, f"PUT /flags {body} -> {answer}")
        return answer

    def metrics(self):
        return h.Metrics(self.admin_port)

    def connect(self, db="cp"):
        conn = self.proxy.connect(db=db)
        conn.autocommit = True
        return conn

    def stop(self):
        rc = self.proxy.stop()
        h.check_eq(rc, 0, f"proxy exit code; stderr tail:\n{self.proxy.stderr_text()[-3000:]}")


def served_by(ctx, cur):
    cur.execute("SELECT current_setting('port')")
    port = int(cur.fetchone()[0])
    return {ctx.old.port: "old", ctx.new.port: "new"}[port]


def rows(cluster, sql, db="cp"):
    return h.fetch_all(cluster, sql, db=db)


def reset_tables(ctx):
    for c in (ctx.old, ctx.new):
        c.psql("TRUNCATE app.t, public.t", db="cp")


def proxy_only(ctx, what):
    if ctx.direct:
        ctx.log(f"skipped (--direct, proxy only): {what}")
        return True
    return False


# ---------------------------------------------------------------------------------------------


def check_endpoints_and_auth(ctx):
    if proxy_only(ctx, "the admin API"):
        return
    cp = Cp(ctx)
    try:
        # Reads need no token.
        for path in ("/healthz", "/readyz", "/flags", "/status", "/divergences", "/mismatches?limit=5"):
            status, body = cp.api("GET", path, token=None)
            h.check_eq(status, 200, f"GET {path} without a token: {body}")
        status, text = h.admin_request(cp.admin_port, "GET", "/metrics")
        h.check(status == 200 and "cutover_flags_version" in text, f"GET /metrics: {status}")
        status, body = cp.api("GET", "/status")
        for key in ("flags", "stores", "sessions", "divergences", "mismatches", "flag_store"):
            h.check(key in body, f"/status has no '{key}': {body}")
        h.check_eq(body["stores"]["new"]["up"], True, "/status stores.new.up")
        status, body = cp.api("GET", "/divergences?limit=abc")
        h.check_eq(status, 400, f"GET /divergences?limit=abc: {body}")

        # Mutations need the token: none, a wrong one → 401, and nothing changes.
        before = cp.api("GET", "/flags")[1]
        for token in (None, "wrong-token", TOKEN + "x"):
            for method, path, body in (("PUT", "/flags", {"reads_new_percent": 5}), ("POST", "/rollback", {})):
                status, answer = cp.api(method, path, body, token=token)
                h.check_eq(status, 401, f"{method} {path} with token {token!r}: {answer}")
        h.check_eq(cp.api("GET", "/flags")[1]["version"], before["version"], "version after refused calls")

        # Invalid bodies: 400 naming the key; nothing published.
        for body, names in (({"colour": "blue"}, "colour"),
                            ({"reads_new_percent": 101}, "reads_new_percent"),
                            ({"reads_new_percent": "ten"}, "reads_new_percent"),
                            ({"writes": "sideways"}, "writes"),
                            ({"mirror": "strict"}, "mirror"),
                            ({"tables": {"orders": {"reads_new_percent": -1}}}, "reads_new_percent"),
                            ({"version": before["version"] + 7, "reads_new_percent": 1}, "version")):
            status, answer = cp.api("PUT", "/flags", body)
            h.check_eq(status, 400, f"PUT /flags {body}: {answer}")
            h.check(names in answer.get("error", ""), f"PUT /flags {body}: error does not name {names}: {answer}")
        status, answer = cp.api("PUT", "/flags", "{not json")
        h.check_eq(status, 400, f"PUT /flags with a body that is not JSON: {answer}")
        status, answer = cp.api("POST", "/rollback", {"force": "yes"})
        h.check_eq(status, 400, f"POST /rollback with force 'yes': {answer}")
        h.check_eq(cp.api("GET", "/flags")[1]["version"], before["version"], "version after invalid bodies")

        m0 = cp.metrics()
        answer = cp.put_flags(reads_new_percent=25, reason="ramp step one")
        h.check_eq(answer["version"], before["version"] + 1, "version after PUT")
        h.check_eq(answer["reads_new_percent"], 25, "reads_new_percent after PUT")
        h.check_eq(answer["reason"], "ramp step one", "reason after PUT")
        h.check(answer["changed_by"].startswith("admin 127.0.0.1:"), f"changed_by: {answer['changed_by']}")
        m1 = cp.metrics()
        h.check_eq(m1.get("cutover_flags_version"), float(answer["version"]), "cutover_flags_version")
        h.check_eq(m1.get("cutover_reads_new_percent"), 25.0, "cutover_reads_new_percent")
        h.check_eq(m1.since(m0, "cutover_flag_changes_total"), 1.0,
                   "cutover_flag_changes_total increase")
        state = h.read_text(cp.state_file)
        h.check(f'"version": {answer["version"]}' in state, f"state file has not v{answer['version']}:\n{state}")
        audit = [line for line in h.read_text(os.path.join(cp.journal_dir, "audit.jsonl")).splitlines() if line]
        h.check(audit, "audit.jsonl is empty")
        last = __import__("json").loads(audit[-1])
        h.check_eq(last["version"], answer["version"], "audit version")
        h.check_eq(last["reason"], "ramp step one", "audit reason")
        h.check_eq((last["before"]["reads_new_percent"], last["after"]["reads_new_percent"]), (0, 25), "audit before/after")
        h.check(last["changed_by"].startswith("admin 127.0.0.1:"), f"audit caller: {last}")

        # Optimistic concurrency: the current version is accepted.
        answer = cp.put_flags(version=answer["version"], reads_new_percent=0, reason="back")
        h.check_eq(answer["reads_new_percent"], 0, "reads_new_percent after versioned PUT")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_pass_through_session_follows_flip(ctx):
    if proxy_only(ctx, "flag flips"):
        return
    reset_tables(ctx)
    cp = Cp(ctx)
    try:
        conn = cp.connect()
        listener = cp.connect()
        with conn.cursor() as cur, listener.cursor() as lcur:
            cur.execute("SET search_path = app, public")
            cur.execute("PREPARE ins (int, text) AS INSERT INTO t VALUES ($1, $2)")
            lcur.execute("LISTEN cp_channel")
            cur.execute("INSERT INTO t VALUES (1, 'before flip')")
            h.check_eq(served_by(ctx, cur), "old", "pass-through read")

            cp.put_flags(writes="dual", reason="start dual-write")

            cur.execute("INSERT INTO t VALUES (2, 'after flip')")
            cur.execute("EXECUTE ins (3, 'prepared after flip')")
            cur.execute("SELECT count(*) FROM t")
            h.check_eq(cur.fetchone()[0], 3, "rows the session sees in app.t")
            h.check_eq(served_by(ctx, cur), "old", "read under writes: dual")
            # NOTIFY through the other (flipped) session reaches the listener, once.
            cur.execute("NOTIFY cp_channel, 'hello'")
            lcur.execute("SELECT 1")
            deadline = time.monotonic() + 5
            while not listener.notifies and time.monotonic() < deadline:
                listener.poll()
                time.sleep(0.05)
            h.check_eq([n.payload for n in listener.notifies], ["hello"], "notifications after the flip")
        conn.close()
        listener.close()
        h.check_eq(rows(ctx.old, "SELECT id FROM app.t ORDER BY id"), [(1,), (2,), (3,)], "old app.t")
        h.check_eq(rows(ctx.new, "SELECT id FROM app.t ORDER BY id"), [(2,), (3,)],
                   "new app.t (row 1 predates dual-write)")
        h.check_eq(rows(ctx.new, "SELECT count(*) FROM public.t"), [(0,)], "new public.t (search_path copied)")
        text = cp.proxy.stderr_text()
        h.check("copying the session's state" in text, "the proxy log does not mention the state copy")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_authority_moves_and_rollback(ctx):
    if proxy_only(ctx, "authority flips"):
        return
    reset_tables(ctx)
    cp = Cp(ctx, writes="dual")
    try:
        conn = cp.connect()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1, 'dual')")
            h.check_eq(served_by(ctx, cur), "old", "read under dual")
            cp.put_flags(writes="dual-new", reads_new_percent=100, reason="authority to new")
            h.check_eq(served_by(ctx, cur), "new", "read under dual-new")
            cur.execute("INSERT INTO t VALUES (2, 'dual-new') RETURNING current_setting('port')")
            h.check_eq(int(cur.fetchone()[0]), ctx.new.port, "RETURNING answered by (authoritative) new")
            # A transaction keeps its route across a flip.
            cur.execute("BEGIN")
            h.check_eq(served_by(ctx, cur), "new", "read in a transaction begun under dual-new")
            m0 = cp.metrics()
            status, answer = cp.api("POST", "/rollback", {"reason": "incident 42"})
            h.check_eq(status, 200, f"POST /rollback: {answer}")
            h.check_eq((answer["flags"]["writes"], answer["flags"]["reads_new_percent"]), ("dual", 0),
                       "writes, reads_new_percent after rollback from dual-new")
            h.check_eq(answer["workers"], 2, "workers that confirmed the rollback")
            h.check_eq(served_by(ctx, cur), "new", "read in the same transaction after the rollback")
            cur.execute("INSERT INTO t VALUES (3, 'in txn')")
            cur.execute("COMMIT")
            h.check_eq(served_by(ctx, cur), "old", "read after the transaction")
            cur.execute("INSERT INTO t VALUES (4, 'dual again')")
            m1 = cp.metrics()
            h.check_eq(m1.since(m0, "cutover_rollbacks_total", trigger="manual"),
                       1.0, "rollbacks_total{trigger=manual} increase")
        conn.close()
        for c in (ctx.old, ctx.new):
            h.check_eq(rows(c, "SELECT id FROM public.t ORDER BY id"), [(1,), (2,), (3,), (4,)], f"{c.name} public.t")

        # From writes: new the old store is stale: refused unless forced.
        cp.put_flags(writes="new", reason="old retired")
        status, answer = cp.api("POST", "/rollback", {"reason": "oops"})
        h.check_eq(status, 409, f"POST /rollback from writes: new: {answer}")
        h.check("point of no return" in answer.get("error", ""), f"409 text: {answer}")
        h.check_eq(cp.api("GET", "/flags")[1]["writes"], "new", "writes after the refused rollback")
        status, answer = cp.api("POST", "/rollback", {"reason": "forced", "force": True})
        h.check_eq(status, 200, f"POST /rollback force: {answer}")
        h.check_eq(answer["flags"]["writes"], "dual", "writes after a forced rollback")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_flip_latency(ctx):
    if proxy_only(ctx, "flip latency"):
        return
    cp = Cp(ctx, writes="old", sticky="statement")
    try:
        conns = [cp.connect() for _ in range(4)]   # sessions on both workers
        curs = [c.cursor() for c in conns]
        applied = []
        wall = []
        for i in range(200):
            percent = 100 if i % 2 == 0 else 0
            t0 = time.perf_counter()
            status, answer = cp.api("PUT", "/flags", {"reads_new_percent": percent})
            wall.append((time.perf_counter() - t0) * 1000)
            h.check_eq(status, 200, f"PUT /flags #{i}: {answer}")
            want = "new" if percent == 100 else "old"
            for n, cur in enumerate(curs):
                got = served_by(ctx, cur)
                h.check_eq(got, want, f"flip #{i}: session {n}'s next read after reads_new_percent {percent}")
        for c in conns:
            c.close()
        # applied_ms is measured inside the proxy: publish (state file fsync excluded) → every
        # worker confirmed. Read back from the audit journal.
        import json
        for line in h.read_text(os.path.join(cp.journal_dir, "audit.jsonl")).splitlines():
            if line:
                applied.append(json.loads(line)["applied_ms"])
        applied.sort()
        wall.sort()
        p = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
        ctx.log(f"flip applied to every worker: p50 {p(applied, 0.5):.3f} ms, p99 {p(applied, 0.99):.3f} ms "
                f"(n={len(applied)}); PUT round trip incl. state-file fsync: p50 {p(wall, 0.5):.2f} ms, "
                f"p99 {p(wall, 0.99):.2f} ms")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_rollback_under_load(ctx):
    if proxy_only(ctx, "rollback under load"):
        return
    pgbench = h.require_tool("pgbench", "postgresql-client-15")
    for c in (ctx.old, ctx.new):
        c.psql("DROP DATABASE IF EXISTS bench")
        c.psql("CREATE DATABASE bench")
        subprocess.run([pgbench, "-i", "-q", "-s", "1", "-h", "127.0.0.1", "-p", str(c.port), "-U", "postgres", "bench"],
                       check=True, capture_output=True)
    cp = Cp(ctx, writes="dual", reads_new_percent=50, sticky="statement")
    try:
        ep = cp.proxy.endpoint()
        proc = subprocess.Popen([pgbench, "-S", "-c", "4", "-j", "2", "-T", "8", "-n", "-h", ep.host, "-p", str(ep.port),
                                 "-U", "postgres", "bench"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        before = cp.metrics().get("cutover_statements_total", kind="read", served_by="new")
        ctl = subprocess.run([ctx.binary, "ctl", "--admin", f"http://127.0.0.1:{cp.admin_port}", "--token", TOKEN,
                              "--reason", "rollback under load", "rollback"], capture_output=True, text=True, timeout=30)
        h.check_eq(ctl.returncode, 0, f"cutover ctl rollback: {ctl.stdout}{ctl.stderr}")
        h.check("rolled back" in ctl.stdout and "reads_new_percent 0" in ctl.stdout, f"ctl output: {ctl.stdout}")
        at_rollback = cp.metrics().get("cutover_statements_total", kind="read", served_by="new")
        out, _ = proc.communicate(timeout=60)
        after = cp.metrics().get("cutover_statements_total", kind="read", served_by="new")
        h.check_eq(proc.returncode, 0, f"pgbench exit code; output:\n{out[-2000:]}")
        failed = re.search(r"number of failed transactions: (\d+)", out)
        h.check(failed is None or failed.group(1) == "0", f"pgbench failed transactions:\n{out[-2000:]}")
        h.check(before > 0, f"no read was served by new before the rollback ({before})")
        h.check_eq(after, at_rollback, "reads served by new after the rollback answered")
        total = cp.metrics().get("cutover_statements_total", kind="read")
        ctx.log(f"reads by new before rollback {before:.0f}, at rollback {at_rollback:.0f}, at end {after:.0f}; "
                f"reads in all {total:.0f}; ctl: {ctl.stdout.strip()}")
        cp.stop()
    finally:
        cp.proxy.cleanup()


DESIGN_METRICS = ["cutover_client_connections", "cutover_backend_connections", "cutover_statements_total",
                  "cutover_statement_duration_seconds_bucket", "cutover_mirror_writes_total",
                  "cutover_divergences_total", "cutover_shadow_comparisons_total", "cutover_flag_changes_total",
                  "cutover_rollbacks_total", "cutover_flags_version", "cutover_reads_new_percent",
                  "cutover_store_up"]


def check_metrics_move(ctx):
    if proxy_only(ctx, "metrics"):
        return
    reset_tables(ctx)
    cp = Cp(ctx, writes="dual", shadow_percent=100)
    try:
        m0 = cp.metrics()
        for name in DESIGN_METRICS:
            m0.get(name)   # fails when not exported
        conn = cp.connect()
        with conn.cursor() as cur:
            m_open = cp.metrics()
            h.check(m_open.get("cutover_client_connections") >= 1, "client_connections while a client is connected")
            h.check(m_open.get("cutover_backend_connections", store="new") >= 1, "backend_connections{store=new}")
            for i in range(20):
                cur.execute("INSERT INTO t VALUES (%s, 'x')", (i,))
                cur.execute("SELECT v FROM t WHERE id = %s", (i,))
        conn.close()
        # A divergence: the row exists on new only, so the mirrored insert fails there.
        ctx.new.psql("INSERT INTO public.t VALUES (1000, 'only on new')", db="cp")
        conn = cp.connect()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1000, 'x')")
        conn.close()
        cp.put_flags(reads_new_percent=10)
        cp.api("POST", "/rollback", {"reason": "metrics"})
        m1 = cp.metrics()
        moved = {
            "cutover_statements_total{kind=write,served_by=old}": (m0.get("cutover_statements_total", kind="write", served_by="old"),
                                                                   m1.get("cutover_statements_total", kind="write", served_by="old")),
            "cutover_statements_total{kind=read}": (m0.get("cutover_statements_total", kind="read"),
                                                    m1.get("cutover_statements_total", kind="read")),
            "cutover_statement_duration_seconds_count{store=old}": (m0.get("cutover_statement_duration_seconds_count", store="old"),
                                                                    m1.get("cutover_statement_duration_seconds_count", store="old")),
            "cutover_statement_duration_seconds_count{store=new}": (m0.get("cutover_statement_duration_seconds_count", store="new"),
                                                                    m1.get("cutover_statement_duration_seconds_count", store="new")),
            "cutover_mirror_writes_total{result=ok}": (m0.get("cutover_mirror_writes_total", result="ok"),
                                                       m1.get("cutover_mirror_writes_total", result="ok")),
            "cutover_divergences_total": (m0.get("cutover_divergences_total"), m1.get("cutover_divergences_total")),
            "cutover_shadow_comparisons_total{result=match}": (m0.get("cutover_shadow_comparisons_total", result="match"),
                                                               m1.get("cutover_shadow_comparisons_total", result="match")),
            "cutover_flag_changes_total": (m0.get("cutover_flag_changes_total"), m1.get("cutover_flag_changes_total")),
            "cutover_rollbacks_total{trigger=manual}": (m0.get("cutover_rollbacks_total", trigger="manual"),
                                                        m1.get("cutover_rollbacks_total", trigger="manual")),
            "cutover_flags_version": (m0.get("cutover_flags_version"), m1.get("cutover_flags_version")),
        }
        stuck = {k: v for k, v in moved.items() if not v[1] > v[0]}
        h.check(not stuck, f"metrics that did not move with traffic: {stuck}")
        h.check_eq(m1.get("cutover_store_up", store="old"), 1.0, "store_up{old}")
        h.check_eq(m1.get("cutover_store_up", store="new"), 1.0, "store_up{new}")
        h.check_eq(m1.get("cutover_reads_new_percent"), 0.0, "reads_new_percent after rollback")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_flags_survive_restart(ctx):
    if proxy_only(ctx, "state file"):
        return
    state_dir = h.TmpDir("cp-restart").path
    cp = Cp(ctx, state_dir=state_dir)
    try:
        answer = cp.put_flags(writes="dual", reads_new_percent=7, reason="before restart")
        cp.stop()
    finally:
        cp.proxy.cleanup()
    cp = Cp(ctx, state_dir=state_dir)   # the config says writes: old; the state file wins
    try:
        now = cp.api("GET", "/flags")[1]
        h.check_eq((now["version"], now["writes"], now["reads_new_percent"]), (answer["version"], "dual", 7),
                   "flags after restart")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_fleet(ctx):
    if proxy_only(ctx, "fleet flag store"):
        return
    control = h.PgCluster("control")
    try:
        fleet = {"store": "postgres",
                 "control": {"host": "127.0.0.1", "port": control.port, "user": "postgres", "database": "postgres"}}
        a = Cp(ctx, **fleet)
        b = Cp(ctx, **fleet)
        try:
            conn = b.connect()
            cur = conn.cursor()
            h.check_eq(served_by(ctx, cur), "old", "instance b before the flip")
            latencies = []
            for i, percent in enumerate((100, 0, 100, 0, 100)):
                t0 = time.monotonic()
                answer = a.put_flags(reads_new_percent=percent, sticky="statement", reason=f"fleet flip {i}")
                while True:
                    seen = b.api("GET", "/flags")[1]
                    if seen["version"] >= answer["version"]:
                        break
                    h.check(time.monotonic() - t0 < 5, f"instance b still has v{seen['version']} 5 s after "
                                                       f"a published v{answer['version']}")
                    time.sleep(0.005)
                latencies.append((time.monotonic() - t0) * 1000)
                h.check_eq(seen["reads_new_percent"], percent, "instance b's reads_new_percent")
                h.check_eq(served_by(ctx, cur), "new" if percent else "old", f"instance b's next read after flip {i}")
            ctx.log("flip through a, in force on b after: " + ", ".join(f"{x:.0f} ms" for x in latencies)
                    + f" (max {max(latencies):.0f} ms)")
            h.check(max(latencies) < 1000, f"a flip took {max(latencies):.0f} ms to reach the other instance")
            status = b.api("GET", "/status")[1]["flag_store"]
            h.check(status["kind"] == "postgres" and status["connected"], f"/status flag_store: {status}")

            control.stop()
            deadline = time.monotonic() + 10
            while b.api("GET", "/status")[1]["flag_store"]["connected"] and time.monotonic() < deadline:
                time.sleep(0.1)
            status = b.api("GET", "/status")[1]["flag_store"]
            h.check(not status["connected"] and "unreachable" in status.get("detail", ""), f"/status while down: {status}")
            h.check_eq(served_by(ctx, cur), "new", "instance b serves with its last flags while the control DB is down")
            conn_a = a.connect()
            with conn_a.cursor() as cur_a:
                h.check_eq(served_by(ctx, cur_a), "new", "instance a serves with its last flags")
            conn_a.close()
            status_code, answer = a.api("PUT", "/flags", {"reads_new_percent": 50})
            h.check_eq(status_code, 503, f"PUT /flags while the control DB is down: {answer}")
            status_code, answer = b.api("POST", "/rollback", {"reason": "incident while control DB down"})
            h.check_eq(status_code, 200, f"POST /rollback while the control DB is down: {answer}")
            h.check_eq(answer["fleet"]["shared"], False, f"rollback answer says it was not shared: {answer}")
            h.check_eq(served_by(ctx, cur), "old", "instance b after its local rollback")

            control.start()
            deadline = time.monotonic() + 15
            while not a.api("GET", "/status")[1]["flag_store"]["connected"] and time.monotonic() < deadline:
                time.sleep(0.1)
            h.check(a.api("GET", "/status")[1]["flag_store"]["connected"], "instance a reconnected to the control DB")
            # b's local rollback goes to the fleet store once it answers, and a follows it.
            deadline = time.monotonic() + 15
            while a.api("GET", "/flags")[1]["reads_new_percent"] != 0:
                h.check(time.monotonic() < deadline, "instance a did not follow b's rollback within 15 s of the "
                                                     f"control DB's return: {a.api('GET', '/status')[1]['flag_store']}")
                time.sleep(0.1)
            conn_a = a.connect()
            with conn_a.cursor() as cur_a:
                h.check_eq(served_by(ctx, cur_a), "old", "instance a after b's rollback reached the fleet")
            conn_a.close()
            h.check_eq(b.api("GET", "/status")[1]["flag_store"]["unshared_rollback"], False, "b's rollback shared")
            # Flips through either instance work again (once both listen again).
            deadline = time.monotonic() + 20
            while not b.api("GET", "/status")[1]["flag_store"]["connected"]:
                h.check(time.monotonic() < deadline, "instance b did not reconnect to the control DB")
                time.sleep(0.1)
            answer = a.put_flags(reads_new_percent=100, reason="ramp again")
            deadline = time.monotonic() + 15
            while b.api("GET", "/flags")[1]["version"] < answer["version"]:
                h.check(time.monotonic() < deadline, "b did not follow a's flip within 15 s after the resync")
                time.sleep(0.05)
            conn.close()
            a.stop()
            b.stop()
        finally:
            a.proxy.cleanup()
            b.proxy.cleanup()
    finally:
        control.cleanup()


def wait_metric_increase(cp, m0, name, by=1.0, timeout=15, **labels):
    """The scrape in which `name` has grown by `by` since m0 (a change is published before its
    counters and audit line are final, so a test polls rather than reads once)."""
    deadline = time.monotonic() + timeout
    while True:
        m = cp.metrics()
        if m.since(m0, name, **labels) >= by or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


def wait_auto_rollback(cp, deadline_s, work):
    """Runs work() until the flags show an automatic rollback; returns the flags."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        work()
        flags = cp.api("GET", "/flags")[1]
        if flags["reads_new_percent"] == 0:
            return flags
    raise h.CheckFailed(f"no auto-rollback within {deadline_s} s; proxy log tail:\n{cp.proxy.stderr_text()[-2000:]}")


def check_auto_rollback_on_errors(ctx):
    if proxy_only(ctx, "auto-rollback"):
        return
    ctx.old.psql("DROP TABLE IF EXISTS only_old; CREATE TABLE only_old (id int); INSERT INTO only_old VALUES (1)", db="cp")
    ctx.new.psql("DROP TABLE IF EXISTS only_old", db="cp")
    cp = Cp(ctx, writes="dual", reads_new_percent=100, sticky="statement",
            auto_rollback={"window_s": 5, "max_new_error_rate": 0.05, "max_p99_ratio": 1000})
    try:
        m0 = cp.metrics()
        conn = cp.connect()
        cur = conn.cursor()
        errors = []

        def work():
            for _ in range(20):
                try:
                    cur.execute("SELECT id FROM only_old")
                    cur.fetchall()
                except psycopg2.Error as e:
                    errors.append(e.pgcode)
            time.sleep(0.1)

        flags = wait_auto_rollback(cp, 20, work)
        h.check(errors and set(errors) == {"42P01"}, f"reads served by new before the rollback failed with {set(errors)}")
        h.check_eq(flags["changed_by"], "auto-rollback", "changed_by of the rolled-back flags")
        cur.execute("SELECT id FROM only_old")
        h.check_eq(cur.fetchall(), [(1,)], "the read after the auto-rollback (served by old)")
        m1 = wait_metric_increase(cp, m0, "cutover_rollbacks_total", trigger="auto")
        h.check_eq(m1.since(m0, "cutover_rollbacks_total", trigger="auto"),
                   1.0, "rollbacks_total{trigger=auto} increase")
        h.check(m1.get("cutover_store_errors_total", store="new") >= 1, "store_errors_total{store=new}")
        log = cp.proxy.stderr_text()
        h.check(re.search(r"auto-rollback: new store error rate [0-9.]+ > 0\.05", log),
                f"no auto-rollback log line naming the error rate:\n{log[-2000:]}")
        time.sleep(3)   # no automatic re-ramp
        h.check_eq(cp.api("GET", "/flags")[1]["reads_new_percent"], 0, "reads_new_percent 3 s after auto-rollback")
        conn.close()
        ctx.log(f"{len(errors)} client errors (42P01 from new) before the auto-rollback tripped")
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_auto_rollback_on_mismatches(ctx):
    if proxy_only(ctx, "auto-rollback"):
        return
    for c in (ctx.old, ctx.new):
        c.psql("DROP TABLE IF EXISTS drift; CREATE TABLE drift (id int PRIMARY KEY, v text);"
               "INSERT INTO drift SELECT g, 'v' || g FROM generate_series(1, 100) g", db="cp")
    ctx.new.psql("UPDATE drift SET v = 'drifted' WHERE id % 10 = 0", db="cp")   # behind the proxy's back
    # Each difference is rechecked once before it counts (confirmed): quick rechecks keep up.
    cp = Cp(ctx, writes="dual", reads_new_percent=20, shadow_percent=100, sticky="statement",
            auto_rollback={"window_s": 10, "max_mismatch_rate": 0.01, "max_new_error_rate": 0.5, "max_p99_ratio": 1000},
            compare={"recheck": {"attempts": 1, "delay_ms": 20}})
    try:
        m0 = cp.metrics()
        conn = cp.connect()
        cur = conn.cursor()
        n = [0]

        def work():
            for _ in range(20):
                cur.execute("SELECT id, v FROM drift WHERE id = %s", (n[0] % 100 + 1,))
                cur.fetchall()
                n[0] += 1
            time.sleep(0.2)

        wait_auto_rollback(cp, 30, work)
        m1 = wait_metric_increase(cp, m0, "cutover_rollbacks_total", trigger="auto")
        h.check_eq(m1.since(m0, "cutover_rollbacks_total", trigger="auto"),
                   1.0, "rollbacks_total{trigger=auto} increase")
        h.check(m1.get("cutover_shadow_comparisons_total", result="mismatch") >= 1, "confirmed mismatches counted")
        log = cp.proxy.stderr_text()
        line = re.search(r"auto-rollback: confirmed mismatch rate [0-9.e+-]+ > 0\.01 \(([^)]*)\)", log)
        h.check(line, f"no auto-rollback log line naming the mismatch rate:\n{log[-2000:]}")
        ctx.log(f"tripped after {n[0]} reads: {line.group(0)}")
        conn.close()
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_auto_rollback_on_latency(ctx):
    if proxy_only(ctx, "auto-rollback"):
        return
    ctx.old.psql("CREATE OR REPLACE VIEW slow_on_new AS SELECT 1 AS one", db="cp")
    ctx.new.psql("CREATE OR REPLACE VIEW slow_on_new AS SELECT 1 AS one FROM (SELECT pg_sleep(0.1)) s", db="cp")
    cp = Cp(ctx, writes="dual", reads_new_percent=50, sticky="statement",
            auto_rollback={"window_s": 5, "max_new_error_rate": 0.5, "max_p99_ratio": 3})
    try:
        m0 = cp.metrics()
        conn = cp.connect()
        cur = conn.cursor()
        n = [0]

        def work():
            for i in range(20):
                cur.execute("SELECT one FROM slow_on_new WHERE %s >= 0", (n[0],))   # varied text: both stores
                cur.fetchall()
                n[0] += 1

        wait_auto_rollback(cp, 30, work)
        m1 = wait_metric_increase(cp, m0, "cutover_rollbacks_total", trigger="auto")
        h.check_eq(m1.since(m0, "cutover_rollbacks_total", trigger="auto"),
                   1.0, "rollbacks_total{trigger=auto} increase")
        log = cp.proxy.stderr_text()
        line = re.search(r"auto-rollback: p99 latency ratio new/old [0-9.e+]+ > 3 \(([^)]*)\)", log)
        h.check(line, f"no auto-rollback log line naming the p99 ratio:\n{log[-2000:]}")
        ctx.log(f"tripped after {n[0]} reads: {line.group(0)}")
        conn.close()
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_sighup_reloads_config(ctx):
    if proxy_only(ctx, "SIGHUP reload"):
        return
    import signal as _signal
    cp = Cp(ctx)
    try:
        proxy = cp.proxy
        session = cp.connect()

        def rewrite(**changes):
            with open(proxy.config_path, "w") as f:
                f.write(h.to_yaml(h.deep_merge(proxy.config, changes)) + "\n")

        def wait_log(text, after):
            deadline = time.monotonic() + 5
            while text not in proxy.stderr_text()[after:]:
                h.check(time.monotonic() < deadline, f"no '{text}' in the log 5 s after SIGHUP:\n"
                                                     f"{proxy.stderr_text()[-1500:]}")
                time.sleep(0.05)

        mark = len(proxy.stderr_text())
        rewrite(max_client_connections=1, listen=f"127.0.0.1:{h.free_port()}")
        proxy.send_signal(_signal.SIGHUP)
        wait_log("SIGHUP: reloaded", mark)
        h.check("the running values stay: listen" in proxy.stderr_text()[mark:], "listen change not reported as kept")
        try:
            extra = cp.connect()
            extra.close()
            raise h.CheckFailed("a second client connected with max_client_connections 1 after SIGHUP")
        except psycopg2.OperationalError as e:
            h.check("53300" in str(e) or "too many" in str(e), f"second login refused with: {e}")
        with session.cursor() as cur:   # the open session survived
            cur.execute("SELECT 41")
            h.check_eq(cur.fetchone(), (41,), "session opened before the reload")

        mark = len(proxy.stderr_text())
        with open(proxy.config_path, "w") as f:
            f.write("listen: [unclosed\n")
        proxy.send_signal(_signal.SIGHUP)
        wait_log("SIGHUP: reload failed", mark)
        try:
            cp.connect().close()
            raise h.CheckFailed("the limit of the last good config was dropped by a broken reload")
        except psycopg2.OperationalError:
            pass
        session.close()
        time.sleep(0.2)
        cp.connect().close()   # one connection is still allowed
        cp.stop()
    finally:
        cp.proxy.cleanup()


def check_auto_rollback_on_stalled_reads(ctx):
    """A stalled new store never completes a statement, so only its given-up reads can show it:
    each read ramped to new that ramp_read_timeout_ms gives up counts as an error of new (and as a
    statement that took at least that long), and the error rate trips auto_rollback. Clients get
    old's answers throughout."""
    if proxy_only(ctx, "auto-rollback"):
        return
    ctx.old.psql("DELETE FROM public.t; INSERT INTO public.t VALUES (1, 'one')", db="cp")
    ctx.new.psql("DELETE FROM public.t; INSERT INTO public.t VALUES (1, 'one')", db="cp")
    cp = Cp(ctx, writes="dual", reads_new_percent=100,
            auto_rollback={"window_s": 30, "max_new_error_rate": 0.02, "max_p99_ratio": 1000},
            extra={"ramp_read_timeout_ms": 500})
    locker = None
    try:
        m0 = cp.metrics()
        conn = cp.connect()
        cur = conn.cursor()
        # The error rate needs 20 statements of new inside the window: let the window's first
        # sample (once a second) come before these reads, or it would take 20 given-up reads.
        time.sleep(1.5)
        for _ in range(30):
            cur.execute("SELECT v, inet_server_port() FROM public.t WHERE id = 1")
            h.check_eq(cur.fetchone(), ("one", ctx.new.port), "a read ramped to new")
        locker = ctx.new.connect(db="cp")
        locker.cursor().execute("LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE")   # held: new stalls on t

        def work():
            cur.execute("SELECT v, inet_server_port() FROM public.t WHERE id = 1")
            h.check_eq(cur.fetchone(), ("one", ctx.old.port), "a read while new is stalled (old's answer)")
            time.sleep(0.2)

        flags = wait_auto_rollback(cp, 40, work)
        h.check_eq(flags["changed_by"], "auto-rollback", "changed_by of the rolled-back flags")
        cur.execute("SELECT v, inet_server_port() FROM public.t WHERE id = 1")
        h.check_eq(cur.fetchone(), ("one", ctx.old.port), "the read after the auto-rollback (served by old)")
        m1 = wait_metric_increase(cp, m0, "cutover_rollbacks_total", trigger="auto")
        ctx.log(f"given-up reads before the auto-rollback: "
                f"{m1.since(m0, 'cutover_read_fallbacks_total'):.0f}")
        h.check(m1.since(m0, "cutover_store_errors_total", store="new") >= 1,
                "store_errors_total{store=new} counts the given-up read")
        log = cp.proxy.stderr_text()
        h.check(re.search(r"auto-rollback: new store error rate [0-9.]+ > 0\.02", log),
                f"no auto-rollback log line naming the error rate:\n{log[-2000:]}")
        conn.close()
        cp.stop()
    finally:
        if locker is not None:
            locker.rollback()
            locker.close()
        cp.proxy.cleanup()


CHECKS = [check_endpoints_and_auth, check_pass_through_session_follows_flip, check_authority_moves_and_rollback,
          check_flip_latency, check_rollback_under_load, check_metrics_move, check_fleet,
          check_auto_rollback_on_errors, check_auto_rollback_on_mismatches, check_auto_rollback_on_latency,
          check_auto_rollback_on_stalled_reads, check_sighup_reloads_config,
          check_flags_survive_restart]

if __name__ == "__main__":
    sys.exit(h.main(CHECKS, setup))
