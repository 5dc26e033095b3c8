#!/usr/bin/python3
"""pgbench through cutover in simple, extended and prepared protocol modes."""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DB = "bench"
SCALE = 2


def setup(ctx):
    pgbench = h.require_tool("pgbench", "postgresql-client-15 (or postgresql-contrib-15)")
    fx = h.standard_setup(ctx)
    fx["pgbench"] = pgbench
    return fx


def pgbench(ctx, ep, *args, timeout=120):
    argv, env = ep.psql_args(db=DB)
    conn_args = argv[2:-2]  # -h H -p P -U U  (drop "psql -X" and "-d DB")
    p = subprocess.run([ctx.pgbench, *conn_args, *args, DB], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout


def ledger(cluster):
    """Counts and the TPC-B invariants (every balance total equals the history's deltas)."""
    return cluster.psql(
        "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM pgbench_branches),"
        " (SELECT count(*) FROM pgbench_tellers), (SELECT count(*) FROM pgbench_history),"
        " (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(bbalance) FROM pgbench_branches),"
        " (SELECT sum(tbalance) FROM pgbench_tellers), (SELECT coalesce(sum(delta), 0) FROM pgbench_history)",
        db=DB).strip().split("|")


def history_count(cluster):
    return int(cluster.psql("SELECT count(*) FROM pgbench_history", db=DB).strip())


def parse_run(out):
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    h.check(m, f"no transaction count in pgbench output:\n{out}")
    failed = re.search(r"number of failed transactions: (\d+)", out)
    h.check(failed, f"no failed-transaction count in pgbench output:\n{out}")
    return int(m.group(1)), int(failed.group(1))


def check_init(ctx):
    h.fresh_database(DB, ctx.ref, ctx.old)
    ref_rc, ref_out = pgbench(ctx, ctx.ref.endpoint(), "-i", "-s", str(SCALE), "-q")
    tgt_rc, tgt_out = pgbench(ctx, ctx.tgt.endpoint(), "-i", "-s", str(SCALE), "-q")
    h.check_eq(ref_rc, 0, f"pgbench -i direct exit code; output:\n{ref_out}")
    h.check_eq(tgt_rc, 0, f"pgbench -i through target exit code; output:\n{tgt_out}")
    # Timings differ run to run; the rest of the output must not.
    def strip(text):
        return re.sub(r"[\d.]+ s\b|\(elapsed[^)]*\)", "T", text)
    h.check_eq(strip(tgt_out), strip(ref_out), "pgbench -i output without timings")
    h.check_eq(ledger(ctx.old), ledger(ctx.ref), "tables after pgbench -i (old vs direct)")
    h.check_eq(ledger(ctx.old)[0], str(100000 * SCALE), "pgbench_accounts rows")


def check_fixed_count_same_as_direct(ctx):
    # A fixed number of transactions gives the same history size both ways.
    for ep, c in ((ctx.ref.endpoint(), ctx.ref), (ctx.tgt.endpoint(), ctx.old)):
        before = history_count(c)
        rc, out = pgbench(ctx, ep, "-n", "-t", "50", "-c", "4", "-j", "2", "-M", "extended")
        h.check_eq(rc, 0, f"pgbench exit code; output:\n{out}")
        n, failed = parse_run(out)
        h.check_eq((n, failed), (200, 0), "processed/failed transactions")
        h.check_eq(history_count(c) - before, 200, f"new pgbench_history rows in {c.name}")
        led = ledger(c)
        h.check(len(set(led[4:])) == 1, f"TPC-B balances disagree in {c.name}: {led}")


def timed_run(ctx, mode):
    # -n: without it pgbench truncates pgbench_history before the run.
    before = history_count(ctx.old)
    rc, out = pgbench(ctx, ctx.tgt.endpoint(), "-n", "-T", "5", "-c", "4", "-j", "2", "-M", mode)
    h.check_eq(rc, 0, f"pgbench -M {mode} exit code; output:\n{out}")
    n, failed = parse_run(out)
    h.check_eq(failed, 0, f"failed transactions (-M {mode})")
    h.check(n > 0, f"no transactions processed (-M {mode})")
    h.check_eq(history_count(ctx.old) - before, n,
               f"pgbench_history rows added in old store vs transactions reported (-M {mode})")
    led = ledger(ctx.old)
    h.check(len(set(led[4:])) == 1, f"TPC-B balances disagree: {led}")
    tps = re.search(r"tps = ([\d.]+) \(without initial", out)
    ctx.log(f"-M {mode}: {n} transactions, tps {tps.group(1) if tps else '?'}")


def check_simple(ctx):
    timed_run(ctx, "simple")


def check_extended(ctx):
    timed_run(ctx, "extended")


def check_prepared(ctx):
    timed_run(ctx, "prepared")


CHECKS = [check_init, check_fixed_count_same_as_direct, check_simple, check_extended,
          check_prepared]

if __name__ == "__main__":
    h.run(CHECKS, setup)
