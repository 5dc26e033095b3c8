#!/usr/bin/python3
"""PostgreSQL's own regression suite (src/test/regress, parallel_schedule) through cutover.

The suite comes from the Debian source package postgresql-15, prepared by
scripts/regress_suite.sh (setup.sh runs it): the sources, and regress.so, refint.so, autoinc.so
built with pgxs. `pg_regress --use-existing` runs the parallel schedule against a port; the
`regression` database and its `ALTER DATABASE … SET lc_*` are created first, directly on each
store, as pg_regress itself does without `--use-existing`. Every run has its own --outputdir and
compares its results/<test>.out (what psql, the client, printed) with other runs, paths of the
runs' own directories replaced by placeholders; pg_regress's own verdict against expected/ is
printed but not asserted (the suite's expected files are for a fresh `make check` instance).

- passthrough: the suite directly on a store (`direct`), then through cutover with only
  `stores.old`: every test's output must be identical. When some differ, the suite runs directly
  once more: a test whose output differs between the two direct runs is timing-sensitive and
  cannot be held against the proxy; it is printed and left out, every other difference fails.
- dual_sync, dual_async: `writes: dual` with `mirror: sync` / `mirror: async` on fresh stores.
  The suite must finish and the proxy must not crash (still running, exit 0 on SIGTERM). A test
  whose psql waits STALL_S for an answer while no store works on it is stalled in the proxy: it
  is printed (its last statement on each store) and ended, so that the rest of the suite still
  runs and is compared, and the check fails; a run past RUN_TIMEOUT_S as a whole prints the
  tests that never finished and every store's sessions, and fails. The client outputs are compared with pass-through's: the files
  that differ and their diffs are printed and counted, not asserted — these modes do not yet
  give the client exactly pass-through's output for every statement (see the report). Then
  (async: once `cutover_mirror_queue_units` is 0) `pg_dump regression` of old and new are
  diffed (pg_dump's random `\\restrict`/`\\unrestrict` lines aside): the number of differing
  lines, also with each table's COPY rows sorted (contents rather than physical order), and the
  journal's lines by `kind` are printed.

`--direct`: passthrough runs the suite directly three times (proves the comparison itself);
the dual checks print SKIP.
"""

import collections
import contextlib
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

PG_REGRESS = "/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress"
PG_DUMP = f"{h.PG_BIN}/pg_dump"
DB = "regression"
# One parallel-schedule run takes 1–3 minutes on two loaded cores; the sanitized proxy is
# several times slower. Past this a run is declared stuck.
RUN_TIMEOUT_S = 1800 if os.environ.get("CUTOVER_SANITIZED") == "1" else 900
DRAIN_S = 300
# A test whose psql waits while every store session of it has been idle this long is stalled in
# the proxy (the longest test takes ~45 s on two loaded cores, all of it active on a store).
STALL_S = 120
STALL_PROBE_S = 10
DIFF_LINES_SHOWN = 120   # per differing file
# pg_regress's temp-instance settings that change what the suite exercises (prepared_xacts
# needs max_prepared_transactions > 0); every other setting is the harness's.
STORE_SETTINGS = {"max_prepared_transactions": 2, "max_connections": 200}


def suite_dir():
    """Where scripts/regress_suite.sh put the suite (same search order as the script)."""
    candidates = [os.environ.get("CUTOVER_REGRESS_DIR"), "/var/cache/cutover/pg-regress",
                  os.path.join(os.environ.get("XDG_CACHE_HOME") or
                               os.path.expanduser("~/.cache"), "cutover/pg-regress")]
    for d in candidates:
        if d and os.path.exists(os.path.join(d, "READY")):
            return d
    raise h.HarnessError("PostgreSQL's regression suite is not prepared: run scripts/setup.sh "
                         "(scripts/regress_suite.sh; needs postgresql-server-dev-15, dpkg-dev "
                         "and a deb-src entry, which it adds)")


def setup(ctx):
    if not os.access(PG_REGRESS, os.X_OK):
        raise h.HarnessError(f"{PG_REGRESS} not found: install the Debian package postgresql-15")
    d = suite_dir()
    suite = {"dir": d, "src": os.path.join(d, "source/src/test/regress"),
             "lib": os.path.join(d, "lib"), "stamp": h.read_text(os.path.join(d, "READY")).split("\n")}
    print(f"  suite: {d} ({', '.join(s for s in suite['stamp'] if s)})", flush=True)
    return {"suite": suite, "runs": {}}


# ---------------------------------------------------------------------------------------------
# One pg_regress run


def create_regression_db(*clusters):
    """What pg_regress does before its tests unless --use-existing (create_database())."""
    sets = "".join(f"ALTER DATABASE \"{DB}\" SET {k} TO '{v}';\n" for k, v in (
        ("lc_messages", "C"), ("lc_monetary", "C"), ("lc_numeric", "C"), ("lc_time", "C"),
        ("bytea_output", "hex"), ("timezone_abbreviations", "Default")))
    for c in clusters:
        c.psql(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE);\n'
               f'CREATE DATABASE "{DB}" TEMPLATE=template0;\n{sets}')


class RegressRun:
    """Results of one `pg_regress --use-existing` run: {test: normalised output}."""

    def __init__(self, label, outputdir, outputs, stdout, seconds, stalled):
        self.label, self.outputdir, self.outputs = label, outputdir, outputs
        self.stdout, self.seconds = stdout, seconds
        self.stalled = stalled   # [(test, report)]: tests ended by the stall watch

    def verdict(self):
        """pg_regress's own summary line (against expected/), e.g. '2 of 214 tests failed.'"""
        for line in reversed(self.stdout.splitlines()):
            if "tests passed" in line or "tests failed" in line or "test failed" in line:
                return line.strip(" =")
        return "(no summary line)"

    def failed_vs_expected(self):
        return [m.group(1) for m in re.finditer(r"^\S*\s*(?:test\s+)?(\S+)\s+\.\.\. FAILED",
                                                self.stdout, re.M)]


def run_suite(ctx, label, port, stores, stall_watch=False):
    """Runs the parallel schedule against 127.0.0.1:port; `stores` are the clusters behind it
    (for the stuck-test report). Raises CheckFailed when the run does not finish in time.
    With stall_watch, a test the proxy stopped answering is ended (see end_stalled_tests) so
    that the rest of the suite still runs; the run's `stalled` lists them."""
    suite = ctx.suite
    base = h.TmpDir(f"regress-{label}").path
    out = os.path.join(base, "out")
    os.makedirs(out)
    if h.IS_ROOT:
        # The suite's server-side COPY writes into results/: the clusters run as postgres.
        for p in (base, out):
            shutil.chown(p, "postgres", "postgres")
    argv = h._as_postgres([PG_REGRESS, "--use-existing", f"--inputdir={suite['src']}",
                           f"--outputdir={out}", f"--dlpath={suite['lib']}",
                           f"--bindir={h.PG_BIN}", "--host=127.0.0.1", f"--port={port}",
                           "--user=postgres", f"--dbname={DB}",
                           f"--schedule={os.path.join(suite['src'], 'parallel_schedule')}"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    log_path = os.path.join(base, "pg_regress.log")
    t0 = time.monotonic()
    stalled = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, cwd=base, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        next_probe = time.monotonic() + STALL_PROBE_S
        while proc.poll() is None:
            if time.monotonic() - t0 > RUN_TIMEOUT_S:
                report = stuck_report(h.read_text(log_path), stores,
                                      os.path.join(suite["src"], "parallel_schedule"))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise h.CheckFailed(f"{label}: the suite did not finish within "
                                    f"{RUN_TIMEOUT_S}s\n{report}")
            if stall_watch and time.monotonic() >= next_probe:
                next_probe = time.monotonic() + STALL_PROBE_S
                stalled += end_stalled_tests(ctx, label, proc.pid, stores, out)
            time.sleep(1)
    seconds = time.monotonic() - t0
    stdout = h.read_text(log_path)
    results = os.path.join(out, "results")
    h.check(os.path.isdir(results), f"{label}: pg_regress wrote no results/ "
                                    f"(exit {proc.returncode}):\n{stdout[-3000:]}")
    outputs = {}
    for name in sorted(os.listdir(results)):
        if name.endswith(".out"):
            outputs[name[:-4]] = normalise(h.read_text(os.path.join(results, name)), out, suite)
    run = RegressRun(label, out, outputs, stdout, seconds, stalled)
    ctx.log(f"{label}: {len(outputs)} test outputs in {seconds:.0f}s; pg_regress against "
            f"expected/: {run.verdict()} "
            f"{run.failed_vs_expected()}")
    return run


def normalise(text, outputdir, suite):
    """Paths of this run's own directories become placeholders ("paths in messages aside")."""
    for path, name in ((outputdir, "@outputdir@"), (suite["src"], "@inputdir@"),
                       (suite["lib"], "@libdir@")):
        text = text.replace(path, name)
    return text


def end_stalled_tests(ctx, label, regress_pid, stores, out):
    """A test is stalled when its psql is still running, its output file has not changed for
    STALL_S, and every store session it opened (application_name pg_regress/<test>; there may
    be none left) has sat idle for as long: the client waits for an answer no store is working
    on, so the proxy holds it. Such a psql (a descendant of our pg_regress) is killed, pg_regress
    marks the test failed and goes on. Returns [(test, report)]."""
    sessions = collections.defaultdict(list)
    for name, cluster in stores:
        try:
            rows = h.fetch_all(cluster, "SELECT application_name, state = 'idle' AND "
                                        f"now() - state_change > interval '{STALL_S} s', "
                                        "left(query, 300) FROM pg_stat_activity "
                                        "WHERE application_name LIKE 'pg_regress/%'")
        except Exception:  # a store that cannot answer now is probed again next time
            return []
        for app, quiet, query in rows:
            sessions[app[len("pg_regress/"):]].append((name, quiet, query))
    found = []
    for test, pids in psql_pids(regress_pid).items():
        if not all(quiet for _, quiet, _ in sessions.get(test, [])):
            continue
        out_file = os.path.join(out, "results", f"{test}.out")
        if os.path.exists(out_file) and time.time() - os.path.getmtime(out_file) < STALL_S:
            continue
        tail = h.read_text(out_file)[-600:]
        report = (f"{label}: test {test} stalled: its psql waited over {STALL_S}s for an "
                  f"answer while no store worked on it; its sessions (store, last statement): "
                  f"{[(n, q) for n, _, q in sessions.get(test, [])] or 'none left'}; its "
                  f"output ends with:\n{tail}")
        print(f"  [{ctx.mode}] {report}", flush=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        found.append((test, report))
    return found


def psql_pids(regress_pid):
    """{test: [pid]} of the psql processes under our pg_regress (same session), by PGAPPNAME."""
    out = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != regress_pid:
                continue
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "psql":
                    continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                for var in f.read().split(b"\0"):
                    if var.startswith(b"PGAPPNAME=pg_regress/"):
                        out[var[len(b"PGAPPNAME=pg_regress/"):].decode()].append(int(entry))
        except (OSError, ValueError):
            continue
    return out


def schedule_groups(path):
    """The schedule's `test:` lines in order, each as its list of tests."""
    groups = []
    for line in h.read_text(path).splitlines():
        m = re.match(r"test:\s*(.*)", line)
        if m:
            groups.append(m.group(1).split())
    return groups


def stuck_report(stdout, stores, schedule):
    """Which tests of the running step never finished, and every store's sessions of the
    regression database (pg_regress names each psql `pg_regress/<test>`; a session the proxy
    stopped answering shows as idle on the stores)."""
    lines = [f"pg_regress output tail:\n{stdout[-2500:]}"]
    # pg_regress 15 prints "test NAME ... " for a single test and, for a parallel group,
    # "parallel group (N tests): " followed by each test's name as it finishes.
    step, done = -1, []
    for line in stdout.splitlines():
        m = re.match(r"(?:parallel group \(\d+ tests\):|test\s+\S+\s+\.\.\.)(.*)", line)
        if m:
            step += 1
            done = m.group(1).split() if line.startswith("parallel") else []
    groups = schedule_groups(schedule)
    if 0 <= step < len(groups):
        pending = [t for t in groups[step] if t not in done]
        lines.append(f"schedule step {step + 1} of {len(groups)}: tests that never finished: "
                     f"{pending}")
    for name, cluster in stores:
        try:
            rows = h.fetch_all(cluster, "SELECT pid, application_name, state, wait_event_type, "
                                        "wait_event, now() - state_change, left(query, 300) "
                                        "FROM pg_stat_activity WHERE datname = 'regression' "
                                        "AND pid <> pg_backend_pid() ORDER BY 2")
            lines.append(f"{name} store, sessions of {DB} (pid, application, state, wait, "
                         f"since, last statement):")
            lines += [f"  {r}" for r in rows] or ["  (none)"]
        except Exception as e:  # the report must not hide the timeout itself
            lines.append(f"{name} store: pg_stat_activity failed: {e}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Comparing runs


def differing_tests(a, b):
    """Tests whose output differs between runs a and b (a test missing from one run differs)."""
    return sorted(t for t in set(a.outputs) | set(b.outputs)
                  if a.outputs.get(t) != b.outputs.get(t))


def show_diff(a, b, test, limit=DIFF_LINES_SHOWN):
    """Prints the unified diff of one test's output between two runs, at most `limit` lines."""
    diff = list(difflib.unified_diff(a.outputs.get(test, "").splitlines(),
                                     b.outputs.get(test, "").splitlines(),
                                     f"{a.label}/{test}.out", f"{b.label}/{test}.out", n=1,
                                     lineterm=""))
    changed = sum(1 for l in diff if l[:1] in "+-" and not l.startswith(("+++", "---")))
    print(f"    --- {test}: {changed} lines differ", flush=True)
    for line in diff[:limit]:
        print(f"    {line}")
    if len(diff) > limit:
        print(f"    ... ({len(diff) - limit} more diff lines)")
    return changed


def baseline(ctx):
    """Direct run and pass-through run on one store (cached for the dual checks), plus the
    tests that differ between two direct runs when pass-through differs at all."""
    runs = ctx.runs
    if "passthrough" in runs:
        return runs
    store = ctx.cluster("store", **STORE_SETTINGS)
    create_regression_db(store)
    runs["direct"] = run_suite(ctx, "direct", store.port, [("direct", store)])
    tgt = ctx.target(store)
    create_regression_db(store)
    runs["passthrough"] = run_suite(ctx, "passthrough", tgt.port, [("old", store)])
    if getattr(tgt, "is_proxy", False):
        h.check(tgt.alive(), f"pass-through proxy exited:\n{tgt.stderr_text()[-3000:]}")
        h.check_eq(tgt.stop(), 0, f"pass-through proxy exit status; stderr tail:\n"
                                  f"{tgt.stderr_text()[-3000:]}")
    runs["unstable"] = set()
    differ = differing_tests(runs["direct"], runs["passthrough"])
    if differ or ctx.direct:
        # --direct: always run the second direct run, so the classification is exercised.
        create_regression_db(store)
        runs["direct2"] = run_suite(ctx, "direct2", store.port, [("direct", store)])
        runs["unstable"] = set(differing_tests(runs["direct"], runs["direct2"]))
        if runs["unstable"]:
            ctx.log(f"differ between two direct runs (timing-sensitive, not held against the "
                    f"proxy): {sorted(runs['unstable'])}")
            for t in sorted(runs["unstable"]):
                show_diff(runs["direct"], runs["direct2"], t, limit=40)
    store.stop()
    return runs


def check_passthrough(ctx):
    runs = baseline(ctx)
    direct, through = runs["direct"], runs["passthrough"]
    h.check(len(direct.outputs) > 150, f"direct run produced only {len(direct.outputs)} outputs:"
                                       f"\n{direct.stdout[-3000:]}")
    h.check_eq(sorted(through.outputs), sorted(direct.outputs), "tests with an output")
    differ = [t for t in differing_tests(direct, through) if t not in runs["unstable"]]
    for t in differ:
        show_diff(direct, through, t)
    excluded = sorted(set(differing_tests(direct, through)) & runs["unstable"])
    ctx.log(f"{len(direct.outputs) - len(differ) - len(excluded)} of {len(direct.outputs)} "
            f"outputs identical through cutover; excluded as unstable directly: {excluded}")
    h.check(not differ, f"{len(differ)} tests print something else through cutover "
                        f"pass-through than directly: {differ}")


# ---------------------------------------------------------------------------------------------
# Dual write


def proxy_metric(admin_port, name, **labels):
    return h.Metrics(admin_port).get(name, **labels)


def dump(cluster):
    p = subprocess.run([PG_DUMP, "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
                        "--no-sync", DB], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    h.check_eq(p.returncode, 0, f"pg_dump of {cluster.name}: {p.stderr[-2000:]}")
    return [l for l in p.stdout.splitlines() if not re.match(r"\\(un)?restrict ", l)]


def sorted_copy_rows(lines):
    """The dump with the rows of each COPY block sorted: equal contents, equal text."""
    out, block = [], None
    for line in lines:
        if block is not None:
            if line == "\\.":
                out += sorted(block) + [line]
                block = None
            else:
                block.append(line)
            continue
        out.append(line)
        if line.startswith("COPY ") and line.endswith("FROM stdin;"):
            block = []
    return out + (block or [])


def diff_count(a, b):
    """Lines only in a or only in b (GNU diff: difflib takes minutes on 400,000-line dumps)."""
    tmp = h.TmpDir("regress-dump").path
    paths = [os.path.join(tmp, n) for n in ("a.sql", "b.sql")]
    for path, lines in zip(paths, (a, b)):
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
    p = subprocess.run(["diff", *paths], stdout=subprocess.PIPE, text=True, errors="replace")
    h.check(p.returncode in (0, 1), f"diff of the dumps failed ({p.returncode})")
    return sum(1 for l in p.stdout.splitlines() if l[:2] in ("< ", "> ") or l in ("<", ">"))


def run_dual(ctx, mirror):
    if ctx.direct:
        ctx.log("SKIP: dual-write needs the proxy (--direct)")
        return
    runs = baseline(ctx)
    old = ctx.cluster(f"old-{mirror}", **STORE_SETTINGS)
    new = ctx.cluster(f"new-{mirror}", **STORE_SETTINGS)
    create_regression_db(old, new)
    tmp = h.TmpDir(f"regress-journal-{mirror}").path
    journal_dir = os.path.join(tmp, "journal")
    os.makedirs(journal_dir)
    admin_port = h.free_port()
    proxy = h.Proxy(ctx.binary, old=old, new=new,
                    flags={"writes": "dual", "mirror": mirror, "reads_new_percent": 0,
                           "shadow_percent": 0},
                    journal_dir=journal_dir, admin={"listen": f"127.0.0.1:{admin_port}"},
                    log_level="warn")
    run = run_suite(ctx, f"dual-{mirror}", proxy.port, [("old", old), ("new", new)],
                    stall_watch=True)
    h.check(proxy.alive(), f"dual-{mirror} proxy exited during the suite:\n"
                           f"{proxy.stderr_text()[-4000:]}")
    if mirror == "async":
        deadline = time.monotonic() + DRAIN_S
        while (queued := proxy_metric(admin_port, "cutover_mirror_queue_units")) != 0:
            h.check(time.monotonic() < deadline,
                    f"dual-async: {queued:.0f} writes still queued {DRAIN_S}s after the suite")
            time.sleep(0.2)
    mirrored = {r: proxy_metric(admin_port, "cutover_mirror_writes_total", result=r)
                for r in ("ok", "error", "diverged", "dropped")}
    h.check_eq(proxy.stop(timeout=30), 0,
               f"dual-{mirror} proxy exit status; stderr tail:\n{proxy.stderr_text()[-3000:]}")

    through = runs["passthrough"]
    differ = differing_tests(through, run)
    unstable = runs["unstable"]
    ctx.log(f"dual-{mirror}: {len(run.outputs) - len(differ)} of {len(through.outputs)} outputs "
            f"identical to pass-through; {len(differ)} differ: {differ}")
    changed = 0
    for t in differ:
        changed += show_diff(through, run, t)
    if unstable & set(differ):
        ctx.log(f"of these, unstable between two direct runs: {sorted(unstable & set(differ))}")
    ctx.log(f"dual-{mirror}: {changed} differing output lines in {len(differ)} files")
    h.check_eq(sorted(run.outputs), sorted(through.outputs), f"dual-{mirror}: tests with an output")

    old_dump, new_dump = dump(old), dump(new)
    ctx.log(f"dual-{mirror}: pg_dump {DB} old {len(old_dump)} lines, new {len(new_dump)}: "
            f"{diff_count(old_dump, new_dump)} differing lines; with each table's COPY rows "
            f"sorted: {diff_count(sorted_copy_rows(old_dump), sorted_copy_rows(new_dump))}")
    kinds = collections.Counter()
    for line in h.read_text(os.path.join(journal_dir, "divergences.jsonl")).splitlines():
        if line.strip():
            kinds[json.loads(line).get("kind", "?")] += 1
    ctx.log(f"dual-{mirror}: divergences.jsonl {sum(kinds.values())} lines by kind: "
            f"{dict(sorted(kinds.items()))}; cutover_mirror_writes_total {mirrored}")
    old.stop()
    new.stop()
    h.check(not run.stalled, f"dual-{mirror}: {len(run.stalled)} tests stalled in the proxy "
                             f"(ended so the suite could go on): {[t for t, _ in run.stalled]}\n"
                             + "\n".join(r for _, r in run.stalled))


def check_dual_sync(ctx):
    run_dual(ctx, "sync")


def check_dual_async(ctx):
    run_dual(ctx, "async")


if __name__ == "__main__":
    h.run([check_passthrough, check_dual_sync, check_dual_async], setup)
