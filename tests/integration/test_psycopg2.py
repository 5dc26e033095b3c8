#!/usr/bin/python3
"""psycopg2 (libpq) through cutover: results identical to direct PostgreSQL; cancel works."""

import datetime
import decimal
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()
import psycopg2.errors  # noqa: E402
import psycopg2.extras  # noqa: E402

DB = "drv"
CANCEL_LIMIT_S = 1.0


def setup(ctx):
    fx = h.standard_setup(ctx)
    h.fresh_database(DB, fx["ref"], fx["old"])
    return fx


def with_conn(fn, autocommit=False):
    def run(ep):
        conn = ep.connect(db=DB)
        conn.autocommit = autocommit
        try:
            return fn(conn)
        finally:
            conn.close()
    return run


def same_both_ways(ctx, fn, what, autocommit=False):
    ref, tgt = h.both_ways(ctx, with_conn(fn, autocommit))
    h.check_eq(tgt, ref, what)
    return tgt


def table_rows(ctx, sql):
    got = {c.name: c.psql(sql, db=DB) for c in (ctx.ref, ctx.old)}
    h.check_eq(got["old"], got["ref"], f"database contents ({sql})")
    return got["old"]


def check_parameters(ctx):
    values = [0, -2**31, 2**62, 3.25, decimal.Decimal("12345678901234567890.000001"),
              "plain", "quote ' and \" and \\ backslash", "ünïcødé ✓", "", None, True,
              datetime.date(2024, 2, 29), datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
              b"\x00\x01\xff binary", [1, 2, 3], psycopg2.extras.Json({"k": [1, "v"]})]

    def run(conn):
        out = []
        with conn.cursor() as cur:
            for v in values:
                cur.execute("SELECT %s, pg_typeof(%s)::text", (v, v))
                row = cur.fetchone()
                out.append((bytes(row[0]) if isinstance(row[0], memoryview) else row[0], row[1]))
            cur.execute("SELECT %(a)s || %(b)s, %(a)s", {"a": "x", "b": "y"})
            out.append(cur.fetchone())
            cur.execute("SELECT * FROM generate_series(1, %s) g WHERE g %% %s = 0", (100, 7))
            out.append(cur.fetchall())
        return out
    out = same_both_ways(ctx, run, "parameterised query results")
    h.check_eq(out[0], (0, "integer"), "first value")


def check_executemany(ctx):
    rows = [(i, f"name {i}", i * 0.5 if i % 3 else None) for i in range(1, 1001)]

    def run(conn):
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS many; CREATE TABLE many (id int PRIMARY KEY, "
                        "name text, score float8)")
            cur.executemany("INSERT INTO many VALUES (%s, %s, %s)", rows)
            rc = cur.rowcount
            conn.commit()
            cur.execute("SELECT count(*), sum(id), count(score) FROM many")
            return rc, cur.fetchone()
    out = same_both_ways(ctx, run, "executemany results")
    h.check_eq(out[1][0], 1000, "rows inserted")
    table_rows(ctx, "SELECT md5(string_agg(id || ':' || name || ':' || coalesce(score::text, '-'),"
                    " ',' ORDER BY id)) FROM many")


def check_named_cursor(ctx):
    def run(conn):
        got, batches = [], 0
        with conn.cursor(name="big_cursor") as cur:
            cur.itersize = 333
            cur.execute("SELECT g, md5(g::text) FROM generate_series(1, 10000) g ORDER BY g")
            for row in cur:
                got.append(row)
            batches = cur.rownumber
        with conn.cursor(name="fetch_cursor", scrollable=True) as cur:
            cur.execute("SELECT g FROM generate_series(1, 100) g")
            first = cur.fetchmany(10)
            cur.scroll(50, mode="absolute")
            mid = cur.fetchone()
            rest = cur.fetchall()
        conn.commit()
        return len(got), got[0], got[-1], batches, first, mid, len(rest)
    out = same_both_ways(ctx, run, "named cursor results")
    h.check_eq(out[0], 10000, "rows through named cursor")


def check_transactions(ctx):
    def run(conn):
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS acct; CREATE TABLE acct (id int PRIMARY KEY, bal int)")
            cur.execute("INSERT INTO acct SELECT g, 100 FROM generate_series(1, 10) g")
            conn.commit()
            cur.execute("UPDATE acct SET bal = bal - 50 WHERE id = 1")
            cur.execute("UPDATE acct SET bal = bal + 50 WHERE id = 2")
            conn.rollback()
            cur.execute("UPDATE acct SET bal = bal - 30 WHERE id = 3")
            cur.execute("UPDATE acct SET bal = bal + 30 WHERE id = 4")
            conn.commit()
            status = conn.get_transaction_status()
            cur.execute("SELECT array_agg(bal ORDER BY id) FROM acct")
            in_txn = conn.get_transaction_status()
            conn.commit()
            return status, in_txn, cur.fetchone()
    out = same_both_ways(ctx, run, "transaction results")
    h.check_eq(out[2][0], [100, 100, 70, 130, 100, 100, 100, 100, 100, 100], "balances")
    table_rows(ctx, "SELECT array_agg(bal ORDER BY id) FROM acct")


def check_autocommit(ctx):
    def run(conn):
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ac; CREATE TABLE ac (id int)")
            cur.execute("INSERT INTO ac VALUES (1)")
            statuses = [conn.get_transaction_status()]
            cur.execute("BEGIN")
            cur.execute("INSERT INTO ac VALUES (2)")
            statuses.append(conn.get_transaction_status())
            cur.execute("ROLLBACK")
            statuses.append(conn.get_transaction_status())
            cur.execute("VACUUM ac")  # refused inside a transaction block
            cur.execute("SELECT array_agg(id) FROM ac")
            return statuses, cur.fetchone()
    out = same_both_ways(ctx, run, "autocommit results", autocommit=True)
    h.check_eq(out[1][0], [1], "rows after autocommit insert and rolled back insert")
    table_rows(ctx, "SELECT array_agg(id) FROM ac")


def check_error_recovery(ctx):
    def run(conn):
        seen = []
        with conn.cursor() as cur:
            for sql in ("SELECT * FROM missing_table", "SELECT 1/0", "SELECT 'x'::int",
                        "SELEC 1"):
                try:
                    cur.execute(sql)
                    seen.append("no error")
                except psycopg2.Error as e:
                    seen.append((type(e).__name__, e.pgcode, e.pgerror,
                                 e.diag.message_primary, e.diag.statement_position))
                    conn.rollback()
            cur.execute("SELECT 'recovered'")
            seen.append(cur.fetchone())
            try:
                cur.execute("SELECT 1/0")
            except psycopg2.errors.DivisionByZero:
                pass
            try:
                cur.execute("SELECT 1")
                seen.append("ran inside aborted txn")
            except psycopg2.errors.InFailedSqlTransaction as e:
                seen.append(e.pgcode)
            conn.rollback()
            cur.execute("SELECT 2")
            seen.append(cur.fetchone())
        return seen
    out = same_both_ways(ctx, run, "errors seen by the driver")
    h.check_eq(out[0][1], "42P01", "SQLSTATE of missing table")
    h.check_eq(out[-2:], ["25P02", (2,)], "recovery after aborted transaction")


def check_cancel(ctx):
    latencies = {}
    for way, ep in (("direct", ctx.ref.endpoint()), ("target", ctx.tgt.endpoint())):
        conn = ep.connect(db=DB)
        try:
            conn.autocommit = True
            result = {}

            def sleeper():
                t0 = time.monotonic()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_sleep(30)")
                    result["outcome"] = "completed"
                except psycopg2.errors.QueryCanceled as e:
                    result["outcome"] = "canceled"
                    result["message"] = e.diag.message_primary
                except Exception as e:  # reported below
                    result["outcome"] = f"{type(e).__name__}: {e}"
                result["end"] = time.monotonic()
                result["elapsed"] = result["end"] - t0

            t = threading.Thread(target=sleeper)
            t.start()
            time.sleep(0.5)  # let pg_sleep start on the backend
            h.check("end" not in result, f"pg_sleep ended early ({way}): {result}")
            t_cancel = time.monotonic()
            conn.cancel()
            t.join(35)
            h.check(not t.is_alive(), f"query still running 35 s after cancel ({way})")
            h.check_eq(result["outcome"], "canceled", f"query outcome after cancel ({way})")
            latencies[way] = result["end"] - t_cancel
            with conn.cursor() as cur:  # the session survives a cancel
                cur.execute("SELECT 'alive'")
                h.check_eq(cur.fetchone(), ("alive",), f"session after cancel ({way})")
        finally:
            conn.close()
    ctx.log("cancel latency: " + ", ".join(f"{w} {v * 1000:.0f} ms" for w, v in latencies.items()))
    h.check(latencies["target"] <= CANCEL_LIMIT_S,
            f"cancel took {latencies['target']:.3f} s through the target (limit {CANCEL_LIMIT_S} s)")


def _sleep_survives_bad_cancels(port, bad_keys):
    """A raw client runs pg_sleep(2) while CancelRequests with bad keys arrive."""
    sock, key, _ = h.raw_login(port, database=DB)
    try:
        h.check(key is not None, "no BackendKeyData in startup")
        pid, secret = key
        result = {}
        t = threading.Thread(target=lambda: result.update(
            zip(("rows", "tags", "error"), h.raw_query(sock, "SELECT pg_sleep(2), 'survived'"))))
        t0 = time.monotonic()
        t.start()
        time.sleep(0.3)
        for bad in bad_keys(pid, secret):
            h.send_cancel(port, *bad)
        t.join(10)
        h.check(not t.is_alive(), "pg_sleep(2) did not finish within 10 s")
        h.check(result.get("error") is None, f"query failed: {result.get('error')}")
        h.check_eq(result["rows"], [("", "survived")], "rows of pg_sleep query")
        h.check(time.monotonic() - t0 >= 1.9, "pg_sleep(2) returned too early")
        rows, _, err = h.raw_query(sock, "SELECT 'still here'")
        h.check(err is None and rows == [("still here",)], f"session broken: {rows} {err}")
        return key
    finally:
        sock.close()


def check_cancel_wrong_key(ctx):
    rnd = random.SystemRandom()

    def random_keys(pid, secret):
        keys = []
        while len(keys) < 3:
            k = (rnd.randint(1, 2**31 - 1), rnd.randint(-2**31, 2**31 - 1))
            if k != (pid, secret):
                keys.append(k)
        return keys

    def right_pid_wrong_secret(pid, secret):
        return [(pid, secret ^ 1), (pid, secret ^ 0x40000000), (pid ^ 1, secret)]

    for ep in (ctx.ref.endpoint(), ctx.tgt.endpoint()):
        _sleep_survives_bad_cancels(ep.port, random_keys)
        _sleep_survives_bad_cancels(ep.port, right_pid_wrong_secret)
    # The raw client's own key must still cancel (the check above is not vacuous).
    sock, (pid, secret), _ = h.raw_login(ctx.tgt.port, database=DB)
    try:
        result = {}
        t = threading.Thread(target=lambda: result.update(
            zip(("rows", "tags", "error"), h.raw_query(sock, "SELECT pg_sleep(30)"))))
        t.start()
        time.sleep(0.3)
        h.send_cancel(ctx.tgt.port, pid, secret)
        t.join(5)
        h.check(not t.is_alive(), "raw cancel with the right key did not end pg_sleep(30)")
        h.check_eq((result.get("error") or {}).get("C"), "57014", "SQLSTATE after right-key cancel")
    finally:
        sock.close()


def check_backend_keys_distinct(ctx):
    # The proxy mints one key per client; two clients must never share one.
    socks = [h.raw_login(ctx.tgt.port, database=DB) for _ in range(20)]
    try:
        keys = [k for _, k, _ in socks]
        h.check_eq(len(set(keys)), len(keys), "distinct BackendKeyData across clients")
    finally:
        for s, _, _ in socks:
            s.close()


CHECKS = [check_parameters, check_executemany, check_named_cursor, check_transactions,
          check_autocommit, check_error_recovery, check_cancel, check_cancel_wrong_key,
          check_backend_keys_distinct]

if __name__ == "__main__":
    h.run(CHECKS, setup)
