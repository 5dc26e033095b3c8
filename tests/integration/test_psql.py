#!/usr/bin/python3
"""psql through cutover: output must be identical to psql against PostgreSQL directly."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ROWS = 10000


def setup(ctx):
    h.require_tool("psql", "postgresql-client-15")
    return h.standard_setup(ctx)


def compare_psql(ctx, db, script=None, command=None, extra=()):
    """Runs the same psql input against ref and through the target; asserts same output."""
    h.fresh_database(db, ctx.ref, ctx.old)
    ref_rc, ref_out = h.run_psql(ctx.ref.endpoint(), script, command, db=db, extra=extra)
    tgt_rc, tgt_out = h.run_psql(ctx.tgt.endpoint(), script, command, db=db, extra=extra)
    if ctx.verbose:
        print(ref_out)
    h.check_eq(tgt_out, ref_out, "psql output through target vs direct")
    h.check_eq(tgt_rc, ref_rc, "psql exit code")
    return tgt_out


def check_multi_statement(ctx):
    out = compare_psql(ctx, "c_multi", command="SELECT 1; SELECT 2;")
    h.check("2" in out, f"second result missing: {out!r}")
    out = compare_psql(ctx, "c_multi", script="SELECT 1 AS a, 'two' AS b \\; SELECT 3 AS c;\n"
                                              "SELECT 4; SELECT 5;\n")
    h.check("two" in out and "c" in out and "5" in out, f"unexpected output: {out!r}")


ERRORS_SCRIPT = r"""
\set VERBOSITY verbose
SELECT 1/0;
SELECT * FROM no_such_table;
SELEC 1;
CREATE TABLE u (id int PRIMARY KEY);
INSERT INTO u VALUES (1);
INSERT INTO u VALUES (1);
SELECT 'after errors' AS still_working;
SELECT 1; SELECT 1/0; SELECT 3;
"""


def check_errors(ctx):
    out = compare_psql(ctx, "c_errors", script=ERRORS_SCRIPT)
    for sqlstate in ("22012", "42P01", "42601", "23505"):
        h.check(f"ERROR:  {sqlstate}:" in out, f"SQLSTATE {sqlstate} missing in:\n{out}")
    h.check("still_working" in out, "session did not survive errors")
    # A multi-statement Query stops at the first error: SELECT 3 of the last line never ran.
    out = compare_psql(ctx, "c_errors", command="SELECT 1; SELECT 1/0; SELECT 3 AS three;",
                       extra=["-v", "VERBOSITY=verbose"])
    h.check("three" not in out and "22012" in out, f"unexpected: {out!r}")


TXN_SCRIPT = r"""
\set VERBOSITY verbose
CREATE TABLE tx (id int PRIMARY KEY);
BEGIN;
INSERT INTO tx VALUES (1), (2);
SELECT count(*) FROM tx;
ROLLBACK;
SELECT count(*) FROM tx;
BEGIN;
INSERT INTO tx VALUES (3);
SELECT 1/0;
INSERT INTO tx VALUES (4);
COMMIT;
BEGIN;
INSERT INTO tx VALUES (5);
SAVEPOINT s1;
INSERT INTO tx VALUES (6);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO tx VALUES (7);
COMMIT;
SELECT array_agg(id ORDER BY id) FROM tx;
"""


def check_transactions(ctx):
    out = compare_psql(ctx, "c_txn", script=TXN_SCRIPT)
    h.check("25P02" in out, f"aborted-transaction error missing:\n{out}")
    for c in (ctx.old, ctx.ref):
        got = c.psql("SELECT array_agg(id ORDER BY id) FROM tx", db="c_txn").strip()
        h.check_eq(got, "{5,7}", f"rows in {c.name}")


def check_notice(ctx):
    out = compare_psql(ctx, "c_notice", script="DO $$ BEGIN RAISE NOTICE 'x'; END $$;\n"
                                               "\\set VERBOSITY verbose\n"
                                               "DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$;\n"
                                               "DO $$ BEGIN RAISE WARNING 'careful'; END $$;\n")
    h.check("NOTICE:  x" in out and "hello 42" in out and "WARNING" in out,
            f"notices missing:\n{out}")


def check_set_show(ctx):
    script = ("SHOW work_mem;\nSET work_mem = '7MB';\nSHOW work_mem;\n"
              "SET search_path = pg_catalog, public;\nSHOW search_path;\n"
              "BEGIN; SET LOCAL work_mem = '1MB'; SHOW work_mem; COMMIT;\nSHOW work_mem;\n"
              "RESET work_mem;\nSHOW work_mem;\n"
              "SHOW server_version_num;\nSHOW client_encoding;\nSHOW DateStyle;\n")
    out = compare_psql(ctx, "c_set", script=script)
    h.check("7MB" in out and "1MB" in out, f"SET not applied:\n{out}")


def check_parameter_status(ctx):
    script = "SET application_name = 'cutover-it';\nSHOW application_name;\n" \
             "SET TimeZone = 'Asia/Tokyo';\nSHOW TimeZone;\n"
    out = compare_psql(ctx, "c_param", script=script)
    h.check("cutover-it" in out and "Asia/Tokyo" in out, f"unexpected:\n{out}")
    # ParameterStatus messages: the driver's view must follow the SET, as it does directly.
    def via_driver(ep):
        conn = ep.connect(db="c_param", application_name="start-name")
        try:
            conn.autocommit = True
            seen = [conn.get_parameter_status("application_name")]
            with conn.cursor() as cur:
                cur.execute("SET application_name = 'changed-name'")
                seen.append(conn.get_parameter_status("application_name"))
                cur.execute("SET TimeZone = 'UTC'")
                seen.append(conn.get_parameter_status("TimeZone"))
                seen.append(conn.get_parameter_status("server_version"))
                seen.append(conn.get_parameter_status("client_encoding"))
                seen.append(conn.get_parameter_status("standard_conforming_strings"))
            return seen
        finally:
            conn.close()
    ref, tgt = h.both_ways(ctx, via_driver)
    h.check_eq(tgt, ref, "ParameterStatus values seen by libpq")
    h.check_eq(tgt[:3], ["start-name", "changed-name", "UTC"], "ParameterStatus sequence")
    # The full startup parameter set (raw StartupMessage) must match as well.
    def startup_params(ep):
        sock, key, params = h.raw_login(ep.port)
        sock.close()
        h.check(key is not None, "no BackendKeyData")
        return params
    ref_p, tgt_p = h.both_ways(ctx, startup_params)
    h.check_eq(tgt_p, ref_p, "startup ParameterStatus set")


def write_copy_input(path):
    with open(path, "w") as f:
        for i in range(1, ROWS + 1):
            s = "\\N" if i % 97 == 0 else f"row {i} tab\\there ünïcødé \\\\ backslash"
            f.write(f"{i}\t{s}\t{i * 1.5}\n")


def check_copy(ctx):
    tmp = h.make_tmpdir("copy")
    try:
        src = os.path.join(tmp, "in.tsv")
        write_copy_input(src)
        outs = {}
        for way, c in (("ref", ctx.ref), ("tgt", ctx.old)):
            out1 = os.path.join(tmp, f"{way}-out.tsv")
            out2 = os.path.join(tmp, f"{way}-out.csv")
            script = (f"CREATE TABLE big (id int, s text, n numeric);\n"
                      f"\\copy big FROM '{src}'\n"
                      f"SELECT count(*), sum(id), count(s) FROM big;\n"
                      f"\\copy big TO '{out1}'\n"
                      f"\\copy (SELECT * FROM big ORDER BY id DESC) TO '{out2}' WITH (FORMAT csv, HEADER)\n"
                      f"\\copy big FROM '{out2}' WITH (FORMAT csv, HEADER)\n"
                      f"SELECT count(*) FROM big;\n")
            if way == "ref":
                h.fresh_database("c_copy", ctx.ref, ctx.old)
                rc, out = h.run_psql(ctx.ref.endpoint(), script, db="c_copy")
            else:
                rc, out = h.run_psql(ctx.tgt.endpoint(), script, db="c_copy")
            h.check_eq(rc, 0, f"psql exit code ({way}); output:\n{out}")
            outs[way] = (out, open(out1, "rb").read(), open(out2, "rb").read())
        h.check_eq(outs["tgt"][0], outs["ref"][0], "psql output of copy script")
        h.check(f"COPY {ROWS}" in outs["tgt"][0], f"COPY tag missing: {outs['tgt'][0]}")
        h.check(outs["tgt"][1] == open(src, "rb").read(), "COPY TO output differs from input")
        h.check(outs["tgt"][1] == outs["ref"][1], "text COPY TO files differ")
        h.check(outs["tgt"][2] == outs["ref"][2], "csv COPY TO files differ")
        for c in (ctx.old, ctx.ref):
            got = c.psql("SELECT count(*), count(DISTINCT id) FROM big", db="c_copy").strip()
            h.check_eq(got, f"{2 * ROWS}|{ROWS}", f"row counts in {c.name}")
    finally:
        h.remove_tmpdir(tmp)


def check_copy_errors(ctx):
    # A COPY FROM that fails halfway (bad row) must leave the session usable and nothing loaded.
    tmp = h.make_tmpdir("copyerr")
    try:
        src = os.path.join(tmp, "bad.tsv")
        with open(src, "w") as f:
            for i in range(1, 5000):
                f.write(f"{i}\tok\n")
            f.write("notanumber\tbad\n")
        script = (f"\\set VERBOSITY verbose\nCREATE TABLE c (id int, s text);\n"
                  f"\\copy c FROM '{src}'\nSELECT count(*) FROM c;\n")
        compare_psql(ctx, "c_copyerr", script=script)
        got = ctx.old.psql("SELECT count(*) FROM c", db="c_copyerr").strip()
        h.check_eq(got, "0", "rows after failed COPY")
    finally:
        h.remove_tmpdir(tmp)


CHECKS = [check_multi_statement, check_errors, check_transactions, check_notice,
          check_set_show, check_parameter_status, check_copy, check_copy_errors]

if __name__ == "__main__":
    h.run(CHECKS, setup)
