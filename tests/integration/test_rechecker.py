#!/usr/bin/python3
"""The shadow-read rechecker (proxy/rechecker) against two real PostgreSQL 15 servers.

Rechecker has no command line of its own, so its checks live in the gtest executable
tests/unit/proxy/rechecker_test; without stores its live tests skip. This script starts two
throwaway clusters (old and new), creates the same table on both, hands the executable their
conninfo (CUTOVER_TEST_RECHECK_OLD / _NEW), runs it, and fails unless every test ran and passed
(a skipped test is a failure here). Checked there: identical data matches on the first attempt;
a row differing on new is confirmed after every attempt (kind values, naming the column); a
difference undone during the delay is transient; rows changing between attempts are
`moving`; text, NULL and binary parameters; session_setup
(SET search_path, set_config) chooses the table read and does not outlive the request; an error
on one side only; failing alike on both proves nothing; writes (UPDATE … RETURNING, a DELETE in a
CTE, a setup lifting read-only or committing) fail and write nothing; a session advisory lock
taken by the statement is not held once it is answered; at most 4 connections per
store, reused; a pooled connection killed between requests is replaced; a statement ending
its own session is a connection failure; the store's database
wins over the client's; a 110 MB result is digested row by row; the destructor returns within
1 s from a 10 s delay and from a running statement; a full queue refuses.

Usage: test_rechecker.py [--cutover PATH/cutover] [--test-binary PATH/rechecker_test]
(the test binary defaults to $CUTOVER_RECHECKER_TEST, else the build tree beside --cutover).
"""

import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXPECTED_TESTS = 20  # 4 offline + 16 live

TABLE = """
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
INSERT INTO items VALUES (1, 'apple', 1.50), (2, 'pear', 2.00), (3, 'plum', NULL);
"""


def find_test_binary(args):
    if args.test_binary:
        return args.test_binary
    if os.environ.get("CUTOVER_RECHECKER_TEST"):
        return os.environ["CUTOVER_RECHECKER_TEST"]
    if args.cutover:
        return os.path.join(os.path.dirname(os.path.abspath(args.cutover)),
                            "tests", "unit", "proxy", "rechecker_test")
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--cutover", default=os.environ.get("CUTOVER_BIN"),
                    help="path of the cutover binary (only used to find the build tree)")
    ap.add_argument("--test-binary", help="path of rechecker_test")
    args = ap.parse_args()
    binary = find_test_binary(args)
    if not binary or not os.access(binary, os.X_OK):
        print(f"FAIL setup: rechecker_test not found at {binary!r}: build the rechecker_test "
              f"target or pass --test-binary")
        return 1
    try:
        old = harness.PgCluster("old")
        new = harness.PgCluster("new")
        env = dict(os.environ)
        for var in ("PGSERVICE", "PGOPTIONS", "PGCLIENTENCODING", "PGTZ", "PGDATESTYLE"):
            env.pop(var, None)
        for name, cluster in (("OLD", old), ("NEW", new)):
            cluster.psql("CREATE DATABASE recheck;")
            cluster.psql(TABLE, db="recheck")
            env[f"CUTOVER_TEST_RECHECK_{name}"] = (
                f"host=127.0.0.1 port={cluster.port} user=postgres dbname=recheck")
        print(f"  old store on 127.0.0.1:{old.port}, new on 127.0.0.1:{new.port}; running {binary}",
              flush=True)
        p = subprocess.run([binary, "--gtest_color=no"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=150)
        output = p.stdout
        print(output, flush=True)
        failures = []
        if p.returncode != 0:
            failures.append(f"rechecker_test exited with {p.returncode}")
        skipped = re.findall(r"^\[  SKIPPED \] (\w+\.\w+)", output, re.M)
        if skipped:
            failures.append(f"skipped (must run here): {', '.join(sorted(set(skipped)))}")
        passed = re.search(r"^\[  PASSED  \] (\d+) tests?", output, re.M)
        if not passed or int(passed.group(1)) != EXPECTED_TESTS:
            failures.append(f"expected {EXPECTED_TESTS} passed tests, got "
                            f"{passed.group(1) if passed else 'none'}")
        # Nothing the tests wrote through the rechecker may have reached either store.
        for cluster in (old, new):
            names = cluster.psql("SELECT string_agg(name, ',' ORDER BY id) FROM items;",
                                 db="recheck").strip()
            if names != "apple,pear,plum":
                failures.append(f"{cluster.name}: items hold {names!r} after the run")
        if failures:
            for f in failures:
                print(f"FAIL rechecker: {f}", flush=True)
            for cluster in (old, new):
                print(f"--- {cluster.name} log tail ---\n" + cluster.log_text()[-3000:])
            return 1
        print(f"ok rechecker ({EXPECTED_TESTS} tests)", flush=True)
        return 0
    except subprocess.TimeoutExpired as e:
        print(f"FAIL rechecker: rechecker_test did not finish within {e.timeout}s\n"
              f"{e.stdout or ''}")
        return 1
    except harness.HarnessError as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        harness.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
