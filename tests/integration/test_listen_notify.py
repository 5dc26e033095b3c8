#!/usr/bin/python3
"""LISTEN/NOTIFY through cutover: notifications reach the listening client intact."""

import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

DB = "ln"


def setup(ctx):
    fx = h.standard_setup(ctx)
    h.fresh_database(DB, fx["ref"], fx["old"])
    return fx


def wait_notifies(conn, want, timeout=5.0):
    """Polls the connection socket with select until `want` notifications arrived."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if select.select([conn.fileno()], [], [], left)[0]:
            conn.poll()
            while conn.notifies:
                n = conn.notifies.pop(0)
                got.append((n.channel, n.payload))
    return got


def exchange(ep):
    listener = ep.connect(db=DB)
    notifier = ep.connect(db=DB)
    try:
        listener.autocommit = notifier.autocommit = True
        with listener.cursor() as cur:
            cur.execute("LISTEN jobs")
            cur.execute('LISTEN "Mixed Case"')
        with notifier.cursor() as cur:
            cur.execute("NOTIFY jobs, 'payload one'")
            cur.execute("SELECT pg_notify('Mixed Case', %s)", ("ünïcødé ' payload",))
            cur.execute("NOTIFY not_listened, 'ignored'")
            # Inside a transaction: delivered at commit only, not on rollback.
            cur.execute("BEGIN")
            cur.execute("NOTIFY jobs, 'rolled back'")
            cur.execute("ROLLBACK")
            cur.execute("BEGIN")
            cur.execute("NOTIFY jobs, 'committed'")
            cur.execute("COMMIT")
            cur.execute("SELECT pg_notify('jobs', repeat('p', 7000))")
        got = wait_notifies(listener, 4)
        with listener.cursor() as cur:
            cur.execute("UNLISTEN jobs")
        with notifier.cursor() as cur:
            cur.execute("NOTIFY jobs, 'after unlisten'")
        got += wait_notifies(listener, 1, timeout=0.5)
        # The listener itself must still answer queries normally.
        with listener.cursor() as cur:
            cur.execute("SELECT 'listener ok'")
            got.append(cur.fetchone())
        return got
    finally:
        listener.close()
        notifier.close()


def check_notify_delivered(ctx):
    ref, tgt = h.both_ways(ctx, exchange)
    h.check_eq(tgt, ref, "notifications through target vs direct")
    want = [("jobs", "payload one"), ("Mixed Case", "ünïcødé ' payload"),
            ("jobs", "committed"), ("jobs", "p" * 7000), ("listener ok",)]
    h.check_eq(tgt, want, "notifications (channel, payload)")


def check_notify_while_idle(ctx):
    # The notification arrives while the listener is idle: the proxy must relay unsolicited
    # backend messages without waiting for a client request.
    ep = ctx.tgt.endpoint()
    listener, notifier = ep.connect(db=DB), ep.connect(db=DB)
    try:
        listener.autocommit = notifier.autocommit = True
        with listener.cursor() as cur:
            cur.execute("LISTEN idle_chan")
        time.sleep(0.3)
        t0 = time.monotonic()
        with notifier.cursor() as cur:
            cur.execute("NOTIFY idle_chan, 'wake up'")
        got = wait_notifies(listener, 1)
        h.check_eq(got, [("idle_chan", "wake up")], "notification to an idle listener")
        ctx.log(f"idle delivery latency {(time.monotonic() - t0) * 1000:.1f} ms")
    finally:
        listener.close()
        notifier.close()


CHECKS = [check_notify_delivered, check_notify_while_idle]

if __name__ == "__main__":
    h.run(CHECKS, setup)
