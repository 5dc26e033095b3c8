#!/usr/bin/python3
"""Proxy memory of huge simple-protocol statements under `writes: dual` (sync mirror).

A 100 MB text literal and a 200 MB bytea literal (100 MB of random bytes in hex) are inserted
through the proxy with psycopg2 (a simple Query: the values are in the statement text). Both
stores must hold the exact value (length and sha256), the proxy's peak resident memory during
the statement (VmHWM, from a fresh proxy) may grow by at most twice the message, and once the
statement is done the proxy holds at most 32 MiB more than before it. A huge statement the new
store refuses is journaled as a divergence whose statement text is cut to 64 KiB with a note of
its size.

With --direct the statements run on old itself (no proxy figures).
"""

import hashlib
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

DB = "huge"
MiB = 1024 * 1024
RETAINED_LIMIT_KIB = 32 * 1024


def setup(ctx):
    settings = {"max_wal_size": "4GB", "checkpoint_timeout": "30min"}
    old = ctx.cluster("old", **settings)
    new = ctx.cluster("new", **settings)
    for c in (old, new):
        c.psql(f'CREATE DATABASE "{DB}"')
        c.psql("CREATE TABLE big (id int PRIMARY KEY, t text); CREATE TABLE blobs (id int PRIMARY KEY, b bytea)", db=DB)
    old.psql("CREATE TABLE only_old (id int PRIMARY KEY, t text)", db=DB)   # new refuses writes to it
    return {"old": old, "new": new}


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise h.HarnessError(f"no {field} in /proc/{pid}/status")


def run_huge(ctx, table, sql, column, want_length, want_sha256, stores=None):
    """Runs `sql` through a fresh proxy (dual writes) and checks the row on `stores` (default:
    both). Returns the divergence journal's records."""
    journal_dir = os.path.join(h.TmpDir("huge-journal").path, "journal")
    os.makedirs(journal_dir)
    if h.IS_ROOT:
        shutil.chown(os.path.dirname(journal_dir), "postgres", "postgres")
    # Each store takes many seconds to parse such a statement on a loaded machine: the secondary
    # is waited for (mirror_timeout_ms), so that it does store the value.
    tgt = ctx.target(ctx.old, new=ctx.new, flags={"writes": "dual", "mirror": "sync", "shadow_percent": 0},
                     journal_dir=journal_dir, mirror_timeout_ms=600000)
    stores = [ctx.old] if ctx.direct else (stores or [ctx.old, ctx.new])
    for c in stores:
        c.psql(f"TRUNCATE {table}", db=DB)
    try:
        conn = tgt.connect(db=DB)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1")   # logged in, routed: the baseline
            cur.fetchone()
            if tgt.is_proxy:
                before_rss, before_hwm = status_kib(tgt.pid, "VmRSS"), status_kib(tgt.pid, "VmHWM")
            t0 = time.monotonic()
            cur.execute(sql)
            h.check_eq(cur.statusmessage, "INSERT 0 1", "command tag")
            elapsed = time.monotonic() - t0
            cur.execute("SELECT 'still there'")
            h.check_eq(cur.fetchone(), ("still there",), "the session goes on")
        if tgt.is_proxy:
            time.sleep(0.5)
            peak, after = status_kib(tgt.pid, "VmHWM"), status_kib(tgt.pid, "VmRSS")
        conn.close()
        for c in stores:
            got = c.psql(f"SELECT length({column}), encode(sha256({column}::bytea), 'hex') FROM {table}",
                         db=DB).strip()
            h.check_eq(got, f"{want_length}|{want_sha256}", f"the value stored in {c.name}")
        message = len(sql) + 6
        if not tgt.is_proxy:
            ctx.log(f"{message / MiB:.0f} MiB statement in {elapsed:.1f} s")
            return []
        ctx.log(f"{message / MiB:.0f} MiB statement in {elapsed:.1f} s: proxy VmRSS before {before_rss / 1024:.0f} MiB "
                f"(VmHWM {before_hwm / 1024:.0f}), peak VmHWM {peak / 1024:.0f} MiB "
                f"(+{(peak - before_rss) / 1024:.0f} MiB = {(peak - before_rss) * 1024 / message:.2f}x the message), "
                f"VmRSS after {after / 1024:.0f} MiB (+{(after - before_rss) / 1024:.0f} MiB)")
        h.check_memory(peak - before_rss <= 2 * message // 1024,
                       f"proxy peak grew by {(peak - before_rss) / 1024:.0f} MiB for a {message / MiB:.0f} MiB "
                       f"statement (limit: twice the message)")
        h.check_memory(after - before_rss <= RETAINED_LIMIT_KIB,
                       f"proxy holds {(after - before_rss) / 1024:.0f} MiB more after the statement "
                       f"(limit {RETAINED_LIMIT_KIB // 1024} MiB)")
        path = os.path.join(journal_dir, "divergences.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    finally:
        tgt.cleanup()


def check_text_100mb(ctx):
    value = os.urandom(50 * MiB).hex()   # 100 MB of text
    sql = f"INSERT INTO big VALUES (1, '{value}')"
    run_huge(ctx, "big", sql, "t", len(value), hashlib.sha256(value.encode()).hexdigest())


def check_bytea_200mb(ctx):
    data = os.urandom(100 * MiB)
    sql = f"INSERT INTO blobs VALUES (1, '\\x{data.hex()}'::bytea)"   # 200 MB of statement
    run_huge(ctx, "blobs", sql, "b", len(data), hashlib.sha256(data).hexdigest())


def check_divergence_journal_cuts_the_text(ctx):
    value = os.urandom(50 * MiB).hex()
    sql = f"INSERT INTO only_old VALUES (1, '{value}')"
    records = run_huge(ctx, "only_old", sql, "t", len(value), hashlib.sha256(value.encode()).hexdigest(),
                       stores=[ctx.old])
    if ctx.direct:
        return
    h.check_eq(len(records), 1, f"divergences journaled: {[r.get('kind') for r in records]}")
    statement = records[0].get("statement", "")
    ctx.log(f"journaled {records[0].get('kind')}: statement of {len(statement)} characters, "
            f"ending {statement[-70:]!r}")
    note = f"… [statement of {len(sql)} bytes, cut at 65536 in the journal]"
    h.check_eq(statement, sql[:65536] + note, "the journaled statement: its first 64 KiB and a note of its size")


CHECKS = [check_text_100mb, check_bytea_200mb, check_divergence_journal_cuts_the_text]

if __name__ == "__main__":
    h.run(CHECKS, setup)
