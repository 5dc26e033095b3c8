#!/usr/bin/python3
"""`cutover verify` against two real PostgreSQL 15 clusters (issue 15, "Done when").

- identical: every kind of table equal on both stores -> exit 0, "result: equal", the job and its
  chunks in the control database (cutover schema of old's postgres database).
- injected_differences: each difference found exactly, with its key and column, nothing else: a
  changed value, a row missing on new, an extra row on new, NULL vs empty string, timestamptz 1 µs,
  composite key, a text key under an ICU collation on old and "C" on new (chunk ends compared in
  one collation), bytea, jsonb with other key order (equal), float last bit (equal under the
  default tolerance, found with float_tolerance 0), numeric 1.0 vs 1.00 (equal by default, found
  with numeric_trailing_zeros: false), a table without primary key with one duplicated row, a
  declared invariant (verify.checks) that differs, schema differences (missing column, other
  type, missing table); values redacted unless --show-values; --json document; exit 1.
- bisection: a 30,000-row table with chunks of 10,000 rows and 3 changed rows: found by key,
  more than one checksum statement per differing chunk, equal chunks one statement each.
- samples_and_aggregates: --sample compares rows field by field; a sum differing is reported.
- could_not_run: an unreachable new store, an unknown --table, a bad config -> exit 2 and the reason.
- live_dual_write: verify while 8 clients write through the proxy (writes: dual, mirror: sync):
  0 confirmed differences, exit 0.
- resume_after_kill: kill -9 mid-run, then --job ID resumes; every chunk done exactly once.
- two_processes_one_job: two processes with the same --job share the chunks (both did some),
  every chunk done exactly once, both exit 0 with the same verdict.
- lease_renewal: chunks that take longer than --lease-s 1 (the throttle holds each one ~1 s)
  under two processes of two workers: every chunk claimed exactly once (the leases are renewed).
- ramp_gate: a proxy with verify.require_for_ramp: a raise of reads_new_percent is refused (409)
  with no verify on record, after one that found differences, for a global raise after only a
  --table verify; a table's raise passes on that --table verify; --force with a reason overrides
  (audited); lowering always passes; /status, `cutover ctl status` and the job_* metrics show the
  last verify; a control database that does not answer (jobs table locked) -> 503.
- interrupt: SIGINT mid-run -> exit 2 with the resume command, no chunk left leased; --job resumes
  to equal with every chunk done once.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DB = "vdiff"


def setup(ctx):
    if ctx.direct:
        return {}
    settings = {"max_connections": 100}
    return {"old": ctx.cluster("old", **settings), "new": ctx.cluster("new", **settings)}


def write_config(ctx, name, db=DB, compare=None, verify=None, new=None):
    tmp = h.make_tmpdir(f"verify-{name}")
    stores = {"old": h.store_config(ctx.old), "new": new or h.store_config(ctx.new)}
    config = {"stores": stores, "auth": {"method": "trust"}, "verify": {"database": db},
              "connect_timeout_ms": 10000}
    if compare:
        config["compare"] = compare
    if verify:
        config["verify"].update(verify)
    path = os.path.join(tmp, "cutover.yaml")
    with open(path, "w") as f:
        json.dump(config, f)  # JSON is YAML (h.to_yaml has no lists of mappings)
    return path, tmp


def run_verify(ctx, config, *args, timeout=300):
    cmd = [ctx.binary, "verify", "--config", config, "--quiet", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def both(ctx, sql, db=DB):
    ctx.old.psql(sql, db=db)
    ctx.new.psql(sql, db=db)


def control_rows(ctx, sql):
    return h.fetch_all(ctx.old, sql, db="postgres")


def load_json(path):
    with open(path) as f:
        return json.load(f)


def found_differences(report):
    """{(table, key tuple, kind, columns tuple)} from a --json report."""
    out = set()
    for t in report["tables"]:
        for d in t["differences"]:
            out.add((t["table"], tuple(d["key"]), d["kind"], tuple(c["column"] for c in d["columns"])
                     if d["kind"] == "values" else ()))
    return out


COMMON = """
DROP TABLE IF EXISTS accounts, floats, events, lines, names, blobs, docs, amounts, nokey, shape,
                     shape_type, only_old CASCADE;
CREATE TABLE accounts (id int PRIMARY KEY, name text, balance numeric(12, 2));
INSERT INTO accounts SELECT g, 'name ' || g, g * 10 FROM generate_series(1, 1000) g;
CREATE TABLE floats (id int PRIMARY KEY, x float8);
INSERT INTO floats VALUES (1, 0.3), (2, 1.5);
CREATE TABLE events (id int PRIMARY KEY, at timestamptz);
INSERT INTO events SELECT g, '2024-03-01 12:00:00.123456+00'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 50) g;
CREATE TABLE lines (region text, n int, v text, PRIMARY KEY (region, n));
INSERT INTO lines SELECT r, g, r || g FROM unnest(ARRAY['eu', 'us', 'ap']) r, generate_series(1, 20) g;
CREATE TABLE blobs (id int PRIMARY KEY, b bytea);
INSERT INTO blobs VALUES (1, '\\x00ff'), (2, '\\xdeadbeef'), (3, '');
CREATE TABLE docs (id int PRIMARY KEY, j jsonb);
CREATE TABLE amounts (id int PRIMARY KEY, a numeric);
CREATE TABLE nokey (a int, b text);
INSERT INTO nokey VALUES (1, 'x'), (2, 'y'), (3, 'z, with ''quote'' and (paren)');
"""

# Names whose ICU order differs from their byte order: lower/upper case and accents interleave.
NAMES = ["apple", "Apple", "banana", "Banana", "cherry", "Éclair", "eclair", "zebra", "Zulu",
         "ä-umlaut", "a-dash", "A-dash", "123", "_under", "Ωmega", "omega", "b", "B", "c", "C"]


def create_names(cluster, collation, extra=""):
    values = ", ".join(f"('{n}', {i})" for i, n in enumerate(NAMES))
    cluster.psql(f'CREATE TABLE names (name text COLLATE "{collation}" PRIMARY KEY, v int);\n'
                 f"INSERT INTO names VALUES {values};{extra}", db=DB)


def identical_fixture(ctx):
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, COMMON + """
INSERT INTO docs VALUES (1, '{"a": 1, "b": [1, 2]}');
INSERT INTO amounts VALUES (1, 1.5);
""")
    create_names(ctx.old, "und-x-icu")
    create_names(ctx.new, "C")


def check_identical(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct): verify compares two stores")
    identical_fixture(ctx)
    config, tmp = write_config(ctx, "identical", verify={
        "checks": [{"name": "balances", "sql": "SELECT sum(balance) FROM accounts"}]})
    out_json = os.path.join(tmp, "report.json")
    rc, out, err = run_verify(ctx, config, "--json", out_json, "--job", "identical-1", "--chunk-rows", "7")
    h.check_eq(rc, 0, f"exit status (stdout:\n{out}\nstderr:\n{err})")
    h.check("result: equal (9 table(s), 1 check(s))" in out, f"summary line missing:\n{out}")
    h.check("public.accounts: 1000 rows, 143 chunk(s): equal" in out, f"accounts line:\n{out}")
    h.check("public.nokey: 3 rows, no primary key: count and multiset hash: equal" in out, out)
    report = load_json(out_json)
    h.check_eq(report["result"], "equal", "--json result")
    h.check_eq(found_differences(report), set(), "differences")
    # Nothing writes meanwhile: a transient difference would mean the two stores' ranges held
    # different keys (e.g. chunk ends compared under each store's own collation).
    h.check_eq({t["table"]: t["transient"] for t in report["tables"] if t["transient"]}, {},
               "transient differences without writes")
    jobs = control_rows(ctx, "SELECT state, jsonb_array_length(tables) FROM cutover.verify_jobs "
                             "WHERE id = 'identical-1'")
    h.check_eq(jobs, [("equal", 9)], "job row in the control database")
    chunks = control_rows(ctx, "SELECT count(*), min(done_count), max(done_count) FROM "
                               "cutover.verify_chunks WHERE job_id = 'identical-1'")
    # 9 tables: range chunks of 7 keys + 1 aggregates chunk each (multiset for nokey) + 1 check.
    h.check(chunks[0][0] > 150 and chunks[0][1] == 1 and chunks[0][2] == 1,
            f"every chunk done once: {chunks}")


def differences_fixture(ctx):
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, COMMON)
    ctx.old.psql("""
INSERT INTO docs VALUES (1, '{"a": 1, "b": 2}'), (2, '{"x": {"p": 1, "q": null}}');
INSERT INTO amounts VALUES (1, 1.0), (2, 7);
INSERT INTO nokey VALUES (2, 'y');
CREATE TABLE shape (id int PRIMARY KEY, kept text, dropped text);
CREATE TABLE shape_type (id int PRIMARY KEY, n int);
CREATE TABLE only_old (id int PRIMARY KEY);
""", db=DB)
    ctx.new.psql("""
INSERT INTO docs VALUES (1, '{"b": 2, "a": 1}'), (2, '{"x": {"q": null, "p": 1}}');
INSERT INTO amounts VALUES (1, 1.00), (2, 7);
CREATE TABLE shape (id int PRIMARY KEY, kept text);
CREATE TABLE shape_type (id int PRIMARY KEY, n bigint);
UPDATE accounts SET name = 'changed' WHERE id = 7;
DELETE FROM accounts WHERE id = 8;
INSERT INTO accounts VALUES (1001, 'extra', 0);
UPDATE accounts SET name = NULL WHERE id = 9;
UPDATE accounts SET name = '' WHERE id = 10;
UPDATE floats SET x = 0.1::float8 + 0.2::float8 WHERE id = 1;
UPDATE events SET at = at + interval '1 microsecond' WHERE id = 3;
UPDATE lines SET v = 'other' WHERE region = 'us' AND n = 2;
UPDATE blobs SET b = '\\xdeadbeee' WHERE id = 2;
""", db=DB)
    ctx.old.psql("UPDATE accounts SET name = '' WHERE id = 9; UPDATE accounts SET name = NULL WHERE id = 10;", db=DB)
    create_names(ctx.old, "und-x-icu")
    create_names(ctx.new, "C", "\nUPDATE names SET v = 99 WHERE name = 'Éclair';")


EXPECTED = {
    ("public.accounts", ("7",), "values", ("name",)),
    ("public.accounts", ("8",), "missing_on_new", ()),
    ("public.accounts", ("1001",), "extra_on_new", ()),
    ("public.accounts", ("9",), "values", ("name",)),
    ("public.accounts", ("10",), "values", ("name",)),
    ("public.events", ("3",), "values", ("at",)),
    ("public.lines", ("us", "2"), "values", ("v",)),
    ("public.names", ("Éclair",), "values", ("v",)),
    ("public.blobs", ("2",), "values", ("b",)),
    ("public.nokey", (), "missing_on_new", ()),
}
STRICT_EXTRA = {
    ("public.floats", ("1",), "values", ("x",)),
    ("public.amounts", ("1",), "values", ("a",)),
}


def check_injected_differences(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct): verify compares two stores")
    differences_fixture(ctx)
    checks = {"checks": [{"name": "balances", "sql": "SELECT sum(balance) FROM accounts"},
                         {"name": "floats_count", "sql": "SELECT count(*) FROM floats"}]}
    config, tmp = write_config(ctx, "diff", verify=checks)
    out_json = os.path.join(tmp, "report.json")
    rc, out, err = run_verify(ctx, config, "--json", out_json, "--chunk-rows", "100")
    h.check_eq(rc, 1, f"exit status (stdout:\n{out}\nstderr:\n{err})")
    report = load_json(out_json)
    got = found_differences(report)
    h.check_eq(got, EXPECTED, "differences found (default rules: float tolerance 1e-9, numeric scale ignored)")
    schema = {(d["table"], d["column"], d["what"]) for d in report["schema_differences"]}
    h.check_eq(schema, {("public.only_old", "", "table missing on new"),
                        ("public.shape", "dropped", "column missing on new"),
                        ("public.shape_type", "n", "type: old integer, new bigint")}, "schema differences")
    checks_found = {c["name"]: c["equal"] for c in report["checks"]}
    h.check_eq(checks_found, {"balances": False, "floats_count": True}, "declared checks")
    nokey = [t for t in report["tables"] if t["table"] == "public.nokey"][0]
    h.check_eq((nokey["rows_old"], nokey["rows_new"], nokey["has_primary_key"]), (4, 3, False), "nokey counts")
    h.check("copies: old 2, new 1; row <redacted 5 bytes>" in out, f"multiset row line:\n{out}")
    h.check("key (7): name old <redacted 6 bytes> new <redacted 7 bytes>" in out, f"redacted values:\n{out}")
    h.check("key (9): name old <redacted 0 bytes> new NULL" in out, f"'' vs NULL:\n{out}")
    h.check("  public.shape_type.n: type: old integer, new bigint" in out, f"schema lines:\n{out}")
    h.check("check balances: DIFFERS" in out, out)
    h.check("result: differences (3 schema, 6 table(s) with 10 differing row(s), 1 check(s))" in out,
            f"summary:\n{out}")
    for equal in ("public.docs: 2 rows, 1 chunk(s): equal", "public.amounts: 2 rows, 1 chunk(s): equal",
                  "public.floats: 2 rows, 1 chunk(s): equal"):
        h.check(equal in out, f"'{equal}' missing:\n{out}")

    # --show-values: the values themselves.
    rc, out, err = run_verify(ctx, config, "--show-values", "--table", "accounts", "--table", "public.blobs")
    h.check_eq(rc, 1, f"exit status --show-values ({err})")
    h.check("key (7): name old name 7 new changed" in out, f"shown values:\n{out}")
    h.check("key (2): b old \\xdeadbeef new \\xdeadbeee" in out, f"bytea shown:\n{out}")
    h.check("public.events" not in out, f"--table limits the tables:\n{out}")

    # Strict rules: float last bit and numeric scale now differ.
    strict, tmp2 = write_config(ctx, "strict", compare={"float_tolerance": 0, "numeric_trailing_zeros": False})
    out_json = os.path.join(tmp2, "report.json")
    rc, out, err = run_verify(ctx, strict, "--json", out_json, "--exclude", "only_old")
    h.check_eq(rc, 1, f"exit status strict ({err})")
    h.check_eq(found_differences(load_json(out_json)), EXPECTED | STRICT_EXTRA,
               "differences found (float_tolerance 0, numeric_trailing_zeros false)")

    # ignore_columns: accounts.name ignored -> only the missing and extra rows remain there.
    ignoring, tmp3 = write_config(ctx, "ignore", compare={"tables": {"accounts": {"ignore_columns": ["name"]}}})
    out_json = os.path.join(tmp3, "report.json")
    rc, out, err = run_verify(ctx, ignoring, "--json", out_json, "--table", "accounts")
    h.check_eq(rc, 1, f"exit status ignore ({err})")
    h.check_eq(found_differences(load_json(out_json)),
               {("public.accounts", ("8",), "missing_on_new", ()),
                ("public.accounts", ("1001",), "extra_on_new", ())}, "with accounts.name ignored")


def check_bisection(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, "CREATE TABLE big (id bigint PRIMARY KEY, v text, n int);"
              "INSERT INTO big SELECT g, md5(g::text), g FROM generate_series(1, 30000) g;")
    ctx.new.psql("UPDATE big SET n = -1 WHERE id IN (12345, 12346, 29999);", db=DB)
    config, tmp = write_config(ctx, "bisect")
    rc, out, err = run_verify(ctx, config, "--job", "bisect-1", "--json", os.path.join(tmp, "r.json"))
    h.check_eq(rc, 1, f"exit ({err})")
    h.check_eq(found_differences(load_json(os.path.join(tmp, "r.json"))),
               {("public.big", ("12345",), "values", ("n",)), ("public.big", ("12346",), "values", ("n",)),
                ("public.big", ("29999",), "values", ("n",))}, "bisected rows")
    rows = control_rows(ctx, "SELECT chunk, (result->>'ranges')::int FROM cutover.verify_chunks "
                             "WHERE job_id = 'bisect-1' AND kind = 'range' ORDER BY chunk")
    # Chunk ends every 10,000 keys: (,10000] (10000,20000] (20000,30000] (30000,).
    h.check_eq([r[0] for r in rows], [0, 1, 2, 3], "range chunks")
    h.check_eq(rows[0][1], 1, "an equal chunk costs one checksum statement")
    h.check(rows[1][1] > 1 and rows[2][1] > 1, f"differing chunks were bisected: {rows}")
    h.check("public.big: 30000 rows, 4 chunk(s): DIFFERS, 3 differing row(s)" in out, out)


def check_samples_and_aggregates(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, "CREATE TABLE s (id int PRIMARY KEY, amount numeric, x float8);"
              "INSERT INTO s SELECT g, g, g / 3.0 FROM generate_series(1, 200) g;")
    config, tmp = write_config(ctx, "sample")
    rc, out, err = run_verify(ctx, config, "--sample", "50", "--json", os.path.join(tmp, "r.json"))
    h.check_eq(rc, 0, f"exit ({out} {err})")
    t = load_json(os.path.join(tmp, "r.json"))["tables"][0]
    h.check_eq((t["sampled"], t["sample_differences"]), (50, 0), "sampled rows")
    h.check("200 rows, 1 chunk(s): equal; 50 sampled" in out, out)
    ctx.new.psql("UPDATE s SET amount = amount + 1 WHERE id = 5;", db=DB)
    rc, out, err = run_verify(ctx, config, "--sample", "200", "--show-values", "--json", os.path.join(tmp, "r.json"))
    h.check_eq(rc, 1, f"exit ({err})")
    t = load_json(os.path.join(tmp, "r.json"))["tables"][0]
    h.check_eq(t["sample_differences"], 1, "the sample found the changed row")
    agg = {a["name"]: (a["old"], a["new"]) for a in t["aggregate_differences"]}
    h.check_eq(agg, {"sum(amount)": ("20100", "20101")}, "differing aggregates")
    h.check("aggregate sum(amount): old 20100 new 20101" in out, out)


def check_could_not_run(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    h.fresh_database(DB, ctx.old, ctx.new)
    port = h.free_port()
    config, _ = write_config(ctx, "down", new={"host": "127.0.0.1", "port": port, "sslmode": "disable"})
    rc, out, err = run_verify(ctx, config)
    h.check_eq(rc, 2, "exit status with new unreachable")
    h.check(f"cutover verify: could not run: the new store: cannot connect to 127.0.0.1:{port}/{DB}:" in err,
            f"reason: {err}")
    config, _ = write_config(ctx, "notable")
    rc, out, err = run_verify(ctx, config, "--table", "no_such_table")
    h.check_eq((rc, err.strip()), (2, "cutover verify: could not run: --table no_such_table: no such table on either store"),
               "unknown table")
    rc, out, err = run_verify(ctx, "/nonexistent.yaml")
    h.check_eq(rc, 2, "exit status with a missing config")
    h.check(err.startswith("cutover verify: could not run: "), err)
    p = subprocess.run([ctx.binary, "verify"], capture_output=True, text=True)
    h.check_eq((p.returncode, p.stderr.splitlines()[0]), (2, "cutover verify: --config FILE is required"), "usage")


def workload(dsn, client, stop, errors, counts):
    psycopg2 = h.import_psycopg2()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    i = 0
    try:
        while not stop.is_set():
            i += 1
            key = client * 1000000 + i
            cur.execute("INSERT INTO live (id, client, n, note) VALUES (%s, %s, 0, %s)", (key, client, f"c{client}"))
            # Deterministic: this build mirrors a statement as its text (a volatile function such
            # as random() would give new other values: verify finds those, as it should).
            cur.execute("UPDATE live SET n = n + 1, note = md5((n + 1)::text) WHERE id = %s",
                        ((client + i * 7) % 20000 + 1,))
            if i % 5 == 0:
                cur.execute("DELETE FROM live WHERE id = %s", (key,))
            counts[client] = i
    except Exception as e:  # noqa: BLE001
        errors.append(f"client {client}: {e}")
    finally:
        conn.close()


def check_live_dual_write(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, "CREATE TABLE live (id bigint PRIMARY KEY, client int, n int, note text);"
              "INSERT INTO live SELECT g, 0, 0, md5(g::text) FROM generate_series(1, 20000) g;")
    proxy = ctx.target(ctx.old, ctx.new, flags={"writes": "dual", "mirror": "sync"})
    stop = threading.Event()
    errors, counts = [], {}
    clients = [threading.Thread(target=workload, args=(proxy.dsn(db=DB), c, stop, errors, counts)) for c in range(1, 9)]
    for t in clients:
        t.start()
    try:
        time.sleep(2)
        config, tmp = write_config(ctx, "live", compare={"recheck": {"attempts": 3, "delay_ms": 300}})
        rc, out, err = run_verify(ctx, config, "--chunk-rows", "2000", "--json", os.path.join(tmp, "r.json"))
        writes_during = sum(counts.values())
    finally:
        stop.set()
        for t in clients:
            t.join()
    h.check_eq(errors, [], "workload errors")
    h.check(writes_during > 100, f"the workload ran during verify ({writes_during} iterations)")
    h.check_eq(rc, 0, f"exit status under live writes (stdout:\n{out}\nstderr:\n{err})")
    t = load_json(os.path.join(tmp, "r.json"))["tables"][0]
    h.check_eq(t["differing_rows"], 0, "confirmed differences")
    ctx.log(f"{writes_during} workload iterations during verify; {t['transient']} transient differences; "
            f"rows old {t['rows_old']}")
    proxy.stop()


def big_table(ctx, rows):
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, f"CREATE TABLE big (id bigint PRIMARY KEY, v text);"
              f"INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, {rows}) g;")


def chunk_counts(ctx, job):
    return control_rows(ctx, f"SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
                             f"coalesce(min(done_count), 0), coalesce(max(done_count), 0), "
                             f"count(DISTINCT lease_owner) FROM cutover.verify_chunks WHERE job_id = '{job}'")[0]


def wait_chunks_done(ctx, job, n, timeout=60):
    """Polls until `n` chunks of `job` are done (the job's tables may not exist yet at first)."""
    deadline = time.monotonic() + timeout
    done = 0
    while time.monotonic() < deadline and done < n:
        try:
            _, done, *_ = chunk_counts(ctx, job)
        except Exception:  # noqa: BLE001 (tables not created yet)
            done = 0
        time.sleep(0.1)


def check_resume_after_kill(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    big_table(ctx, 40000)
    config, tmp = write_config(ctx, "resume")
    job = f"resume-{os.getpid()}"
    cmd = [ctx.binary, "verify", "--config", config, "--quiet", "--job", job, "--chunk-rows", "1000",
           "--max-rows-per-sec", "10000", "--lease-s", "2"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_chunks_done(ctx, job, 5)
    p.send_signal(signal.SIGKILL)
    p.wait()
    total, done, _, _, _ = chunk_counts(ctx, job)
    h.check(0 < done < total, f"killed mid-run: {done} of {total} chunks done")
    ctx.log(f"killed with {done}/{total} chunks done")
    rc, out, err = run_verify(ctx, config, "--job", job, "--lease-s", "2")
    h.check_eq(rc, 0, f"resumed run (stdout:\n{out}\nstderr:\n{err})")
    h.check("public.big: 40000 rows, 41 chunk(s): equal" in out, out)
    total2, done2, min_done, max_done, _ = chunk_counts(ctx, job)
    h.check_eq((total2, done2, min_done, max_done), (total, total, 1, 1), "every chunk done exactly once")


def check_two_processes_one_job(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    big_table(ctx, 30000)
    config, tmp = write_config(ctx, "two")
    job = f"two-{os.getpid()}"
    cmd = [ctx.binary, "verify", "--config", config, "--quiet", "--job", job, "--chunk-rows", "500",
           "--workers", "2", "--max-rows-per-sec", "10000"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        h.check_eq(p.returncode, 0, f"exit status (stdout:\n{out}\nstderr:\n{err})")
        h.check("public.big: 30000 rows, 61 chunk(s): equal" in out, out)
    total, done, min_done, max_done, _ = chunk_counts(ctx, job)
    h.check_eq((done, min_done, max_done), (total, 1, 1), "every chunk done exactly once")
    pids = control_rows(ctx, f"SELECT split_part(lease_owner, ':', 2), count(*) FROM cutover.verify_chunks "
                             f"WHERE job_id = '{job}' GROUP BY 1 ORDER BY 1")
    h.check_eq(sorted(pid for pid, _ in pids), sorted(str(p.pid) for p in procs),
               f"both processes did chunks: {pids}")
    ctx.log(f"chunks per process: {pids}")


def check_lease_renewal(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    big_table(ctx, 12000)
    config, tmp = write_config(ctx, "renew")
    job = f"renew-{os.getpid()}"
    # 1,000-row chunks at 800 rows/s per process: after its first chunk a worker waits ~1.25 s
    # on the throttle holding its next chunk's lease of 1 s; the idle workers of either process
    # would claim it again if the lease were not renewed.
    cmd = [ctx.binary, "verify", "--config", config, "--quiet", "--job", job, "--chunk-rows", "1000",
           "--workers", "2", "--max-rows-per-sec", "800", "--lease-s", "1"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, results):
        h.check_eq(p.returncode, 0, f"exit status (stdout:\n{out}\nstderr:\n{err})")
        h.check("public.big: 12000 rows, 13 chunk(s): equal" in out, out)
    claims = control_rows(ctx, f"SELECT min(claims), max(claims), count(*), min(done_count), max(done_count) "
                               f"FROM cutover.verify_chunks WHERE job_id = '{job}'")[0]
    ctx.log(f"claims min/max {claims[0]}/{claims[1]} over {claims[2]} chunks")
    h.check_eq((claims[0], claims[1], claims[3], claims[4]), (1, 1, 1, 1),
               "every chunk claimed once and done once")


def check_interrupt(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    big_table(ctx, 40000)
    config, tmp = write_config(ctx, "interrupt")
    job = f"interrupt-{os.getpid()}"
    cmd = [ctx.binary, "verify", "--config", config, "--job", job, "--chunk-rows", "1000", "--workers", "2",
           "--max-rows-per-sec", "4000", "--lease-s", "300"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_chunks_done(ctx, job, 3)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    h.check_eq(p.returncode, 2, f"exit status after SIGINT (stderr:\n{err})")
    h.check(f"interrupted by SIGINT" in err and f"resume with: cutover verify --config {config} --job {job}" in err,
            err)
    total, done, *_ = chunk_counts(ctx, job)
    leased = control_rows(ctx, f"SELECT count(*) FROM cutover.verify_chunks WHERE job_id = '{job}' "
                               f"AND state = 'leased'")[0][0]
    ctx.log(f"interrupted with {done}/{total} chunks done, {leased} leased")
    h.check_eq(leased, 0, "chunks still leased after the interrupt (the 300 s lease would hold them)")
    h.check(done < total, f"interrupted mid-run: {done} of {total}")
    rc, out, err = run_verify(ctx, config, "--job", job)
    h.check_eq(rc, 0, f"resumed run (stdout:\n{out}\nstderr:\n{err})")
    h.check("public.big: 40000 rows, 41 chunk(s): equal" in out, out)
    total2, done2, min_done, max_done, _ = chunk_counts(ctx, job)
    h.check_eq((done2, min_done, max_done), (total, 1, 1), "every chunk done exactly once")


GATE_TOKEN = "gate-token"


def run_ctl(ctx, admin_port, *args):
    p = subprocess.run([ctx.binary, "ctl", "--admin", f"http://127.0.0.1:{admin_port}", *args],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def check_ramp_gate(ctx):
    if ctx.direct:
        return ctx.log("skipped (--direct)")
    h.fresh_database(DB, ctx.old, ctx.new)
    both(ctx, "CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders SELECT g, 'o' || g FROM "
              "generate_series(1, 3000) g; CREATE TABLE items (id int PRIMARY KEY, v text); "
              "INSERT INTO items SELECT g, 'i' || g FROM generate_series(1, 2000) g;")
    ctx.old.psql("DROP SCHEMA IF EXISTS cutover CASCADE")   # no verify on record
    config, tmp = write_config(ctx, "gate")
    admin_port = h.free_port()
    journal = os.path.join(tmp, "journal")
    proxy = ctx.target(ctx.old, ctx.new, flags={"writes": "dual", "mirror": "sync"}, journal_dir=journal,
                       verify={"database": DB, "require_for_ramp": True, "max_age_s": 3600},
                       admin={"listen": f"127.0.0.1:{admin_port}", "token_env": "GATE_TOKEN"},
                       env={"GATE_TOKEN": GATE_TOKEN})

    def put(body):
        return h.admin_request(admin_port, "PUT", "/flags", body=body, token=GATE_TOKEN)

    def status_verify(want=lambda v: True, timeout=20):
        deadline = time.monotonic() + timeout
        while True:
            rc, body = h.admin_request(admin_port, "GET", "/status")
            h.check_eq(rc, 200, f"GET /status: {body}")
            v = body.get("verify", {})
            if want(v) or time.monotonic() > deadline:
                return v
            time.sleep(0.2)

    try:
        v = status_verify(lambda v: v.get("ok") is True)
        h.check(v.get("ok") is True and v.get("last") is None and v.get("require_for_ramp") is True, f"/status {v}")
        rc, body = put({"reads_new_percent": 10, "reason": "ramp"})
        h.check_eq(rc, 409, f"raise with no verify on record: {body}")
        h.check("no complete verify on record" in body["error"], body)
        rc, body = put({"shadow_percent": 20, "reason": "more shadows"})
        h.check_eq(rc, 200, f"a change that sends no reads to new is not gated: {body}")

        # A difference on new: verify finds it and the raise stays refused.
        ctx.new.psql("UPDATE orders SET v = 'changed' WHERE id = 42", db=DB)
        rc, out, err = run_verify(ctx, config)
        h.check_eq(rc, 1, f"verify with a difference (stderr {err})")
        rc, body = put({"reads_new_percent": 10, "reason": "ramp"})
        h.check_eq(rc, 409, f"raise after a verify with differences: {body}")
        h.check("found differences (1 differing table(s)" in body["error"], body)

        # --force with a reason passes, audited; lowering is never gated.
        rc, out, err = run_ctl(ctx, admin_port, "--token", GATE_TOKEN, "set", "reads_new_percent=10", "--force",
                               "--reason", "incident 7: verified by hand")
        h.check_eq(rc, 0, f"ctl set --force (stdout {out} stderr {err})")
        audit = [json.loads(line) for line in h.read_text(os.path.join(journal, "audit.jsonl")).splitlines() if line]
        gate = audit[-1].get("ramp_gate", {})
        h.check_eq((gate.get("result"), audit[-1]["reason"]), ("forced", "incident 7: verified by hand"),
                   f"audit line {audit[-1]}")
        h.check("found differences" in gate.get("refused_because", ""), gate)
        rc, body = put({"reads_new_percent": 0, "reason": "back"})
        h.check_eq(rc, 200, f"lowering is never gated: {body}")

        # Repaired, then a --table verify: enough for that table's raise, not for a global one.
        ctx.new.psql("UPDATE orders SET v = 'o42' WHERE id = 42", db=DB)
        rc, out, err = run_verify(ctx, config, "--table", "orders")
        h.check_eq(rc, 0, f"verify --table orders (stderr {err})")
        rc, body = put({"tables": {"orders": {"reads_new_percent": 50}}, "reason": "orders first"})
        h.check_eq(rc, 200, f"table raise covered by the --table verify: {body}")
        rc, body = put({"tables": {"items": {"reads_new_percent": 50}}, "reason": "items"})
        h.check_eq(rc, 409, f"items was not in the --table verify: {body}")
        rc, body = put({"reads_new_percent": 10, "reason": "ramp"})
        h.check_eq(rc, 409, f"global raise after only a --table verify: {body}")

        # A complete verify: the global raise passes; /status, ctl status and metrics show it.
        job = f"gate-{os.getpid()}"
        rc, out, err = run_verify(ctx, config, "--job", job, "--chunk-rows", "1000")
        h.check_eq(rc, 0, f"complete verify (stderr {err})")
        rc, body = put({"reads_new_percent": 10, "reason": "ramp"})
        h.check_eq(rc, 200, f"global raise after a clean complete verify: {body}")
        h.check_eq(json.loads(h.read_text(os.path.join(journal, "audit.jsonl")).splitlines()[-1])["ramp_gate"],
                   {"raised": ["reads_new_percent"], "last_verify": job, "result": "passed"}, "audit of the raise")
        v = status_verify(lambda v: (v.get("last") or {}).get("id") == job)
        last, latest = v.get("last") or {}, v.get("latest") or {}
        h.check_eq((last.get("id"), last.get("state"), last.get("filtered"), sorted(last.get("tables", []))),
                   (job, "equal", False, ["public.items", "public.orders"]), f"/status verify {v}")
        h.check(0 <= last.get("age_s", -1) < 60, f"age_s {last}")
        h.check_eq((latest.get("id"), latest.get("chunks", {}).get("pending"), latest.get("chunks", {}).get("leased"),
                    latest.get("rows_done")), (job, 0, 0, 5000), f"/status latest {latest}")
        done = latest["chunks"]["done"]
        m = h.Metrics(admin_port)
        h.check_eq(m.get("cutover_job_chunks", job="verify", state="done"), float(done), "cutover_job_chunks done")
        h.check_eq(m.get("cutover_job_chunks", job="verify", state="pending"), 0.0, "cutover_job_chunks pending")
        h.check(m.get("cutover_job_rows_total", job="verify") >= 5000, "cutover_job_rows_total")
        rc, out, err = run_ctl(ctx, admin_port, "status")
        h.check_eq(rc, 0, f"ctl status: {err}")
        h.check("verify:" in out and f"id: {job}" in out and "state: equal" in out, out)

        # The control database does not answer (the jobs table locked): 503, lowering still works.
        lock = ctx.old.connect()
        try:
            with lock.cursor() as cur:
                cur.execute("LOCK TABLE cutover.verify_jobs IN ACCESS EXCLUSIVE MODE")  # a transaction, held
                rc, body = put({"reads_new_percent": 20, "reason": "ramp"})
                h.check_eq(rc, 503, f"raise with the control database not answering: {body}")
                h.check("cannot read the verify results from the control database" in body["error"], body)
                rc, body = put({"reads_new_percent": 5, "reason": "lower"})
                h.check_eq(rc, 200, f"lowering while the control database does not answer: {body}")
        finally:
            lock.rollback()
            lock.close()
    finally:
        proxy.stop()


CHECKS = [check_identical, check_injected_differences, check_bisection, check_samples_and_aggregates,
          check_could_not_run, check_live_dual_write, check_resume_after_kill, check_two_processes_one_job,
          check_lease_renewal, check_interrupt, check_ramp_gate]

if __name__ == "__main__":
    h.run(CHECKS, setup)
