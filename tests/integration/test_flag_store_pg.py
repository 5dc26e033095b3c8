#!/usr/bin/python3
"""The fleet flag store (flags.store: postgres) against a real PostgreSQL 15.

PgFlagStore has no command line of its own, so its checks live in the gtest executable
tests/unit/flags/pg_flag_store_test; without a database its live tests skip. This script starts
a throwaway cluster, hands the executable its conninfo and the commands that stop and start it
(CUTOVER_TEST_CONTROL_DB / _STOP / _START), runs it, and fails unless every test ran and passed
(a skipped test is a failure here). Checked there: the table is created on first open; a publish
on instance A reaches instance B's callback within 1 s (latency printed); a stale expected
version is refused; a corrupted row is ignored and the last good snapshot kept; with the cluster
stopped the store reports disconnected and delivers nothing; restarted, it reconnects and
catches up with a version a third connection published meanwhile.

Usage: test_flag_store_pg.py [--cutover PATH/cutover] [--test-binary PATH/pg_flag_store_test]
(the test binary defaults to $CUTOVER_PG_FLAG_STORE_TEST, else the build tree beside --cutover).
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXPECTED_TESTS = 7  # 2 offline + 5 live


def find_test_binary(args):
    if args.test_binary:
        return args.test_binary
    if os.environ.get("CUTOVER_PG_FLAG_STORE_TEST"):
        return os.environ["CUTOVER_PG_FLAG_STORE_TEST"]
    if args.cutover:
        return os.path.join(os.path.dirname(os.path.abspath(args.cutover)),
                            "tests", "unit", "flags", "pg_flag_store_test")
    return None


def pg_ctl_command(cluster, action):
    cmd = [f"{harness.PG_BIN}/pg_ctl", "-D", cluster.data, "-l", cluster.logfile, "-w",
           "-t", "60"]
    cmd += ["-m", "fast", "stop"] if action == "stop" else ["start"]
    return shlex.join(harness._as_postgres(cmd))


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--cutover", default=os.environ.get("CUTOVER_BIN"),
                    help="path of the cutover binary (only used to find the build tree)")
    ap.add_argument("--test-binary", help="path of pg_flag_store_test")
    args = ap.parse_args()
    binary = find_test_binary(args)
    if not binary or not os.access(binary, os.X_OK):
        print(f"FAIL setup: pg_flag_store_test not found at {binary!r}: build the "
              f"pg_flag_store_test target or pass --test-binary")
        return 1
    try:
        control = harness.PgCluster("control")
        env = dict(os.environ)
        env.pop("PGSERVICE", None)
        env["CUTOVER_TEST_CONTROL_DB"] = (
            f"host=127.0.0.1 port={control.port} user=postgres dbname=postgres")
        env["CUTOVER_TEST_CONTROL_STOP"] = pg_ctl_command(control, "stop")
        env["CUTOVER_TEST_CONTROL_START"] = pg_ctl_command(control, "start")
        print(f"  control database on 127.0.0.1:{control.port}; running {binary}", flush=True)
        p = subprocess.run([binary, "--gtest_color=no"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=150)
        output = p.stdout
        print(output, flush=True)
        # The test may have left the cluster stopped; cleanup must not try to stop it again.
        control.running = control.postmaster_pid() is not None
        failures = []
        if p.returncode != 0:
            failures.append(f"pg_flag_store_test exited with {p.returncode}")
        skipped = re.findall(r"^\[  SKIPPED \] (\w+\.\w+)", output, re.M)
        if skipped:
            failures.append(f"skipped (must run here): {', '.join(sorted(set(skipped)))}")
        passed = re.search(r"^\[  PASSED  \] (\d+) tests?", output, re.M)
        if not passed or int(passed.group(1)) != EXPECTED_TESTS:
            failures.append(f"expected {EXPECTED_TESTS} passed tests, got "
                            f"{passed.group(1) if passed else 'none'}")
        latency = re.search(r"^FLAG_STORE_NOTIFY_LATENCY_MS (\S+)", output, re.M)
        if not latency:
            failures.append("no notify latency reported")
        else:
            print(f"  notify latency A publish -> B callback: {latency.group(1)} ms", flush=True)
        if failures:
            for f in failures:
                print(f"FAIL flag_store_pg: {f}", flush=True)
            print("--- control database log tail ---\n" + control.log_text()[-3000:])
            return 1
        print(f"ok flag_store_pg ({EXPECTED_TESTS} tests)", flush=True)
        return 0
    except subprocess.TimeoutExpired as e:
        print(f"FAIL flag_store_pg: pg_flag_store_test did not finish within {e.timeout}s\n"
              f"{e.stdout or ''}")
        return 1
    except harness.HarnessError as e:
        print(f"FAIL setup: {e}")
        return 1
    finally:
        harness.cleanup_all()


if __name__ == "__main__":
    sys.exit(main())
