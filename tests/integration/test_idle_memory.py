#!/usr/bin/python3
"""1000 idle client sessions through cutover cost at most 32 KiB of proxy RSS each."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SESSIONS = 1000
WARMUP = 20
LIMIT_KIB_PER_SESSION = 32


def setup(ctx):
    old = ctx.cluster("old", max_connections=SESSIONS + WARMUP + 80, shared_buffers="32MB")
    tgt = ctx.target(old, max_client_connections=SESSIONS + WARMUP + 50)
    return {"old": old, "tgt": tgt}


def settle_rss(tgt):
    time.sleep(1.0)
    return tgt.rss_kib()


def backend_count(old):
    return int(old.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        "'client backend' AND pid <> pg_backend_pid()").strip())


def check_idle_sessions(ctx):
    tgt = ctx.tgt
    warm = [h.raw_login(tgt.port) for _ in range(WARMUP)]  # allocator and worker warm-up
    for s, _, _ in warm:
        h.raw_query(s, "SELECT 1")
    sessions = []
    try:
        before = settle_rss(tgt)
        t0 = time.monotonic()
        for i in range(SESSIONS):
            try:
                sessions.append(h.raw_login(tgt.port))
            except Exception as e:
                raise h.CheckFailed(f"session {i + 1} failed to start: {e}")
        opened = time.monotonic() - t0
        after = settle_rss(tgt)
        h.check_eq(backend_count(ctx.old), SESSIONS + WARMUP, "client backends on the old store")
        for i, (s, _, _) in enumerate(sessions):  # every idle session is alive and usable
            rows, _, err = h.raw_query(s, f"SELECT {i}")
            h.check(err is None and rows == [(str(i),)], f"session {i}: {rows} {err}")
        ctx.log(f"opened {SESSIONS} sessions in {opened:.1f} s")
        if tgt.is_proxy:
            per = (after - before) / SESSIONS
            ctx.log(f"proxy VmRSS before {before} KiB, after {after} KiB: "
                    f"{per:.1f} KiB per idle session (limit {LIMIT_KIB_PER_SESSION})")
            h.check_memory(per <= LIMIT_KIB_PER_SESSION,
                    f"{per:.1f} KiB of proxy RSS per idle session > {LIMIT_KIB_PER_SESSION} KiB")
    finally:
        for s, _, _ in sessions + warm:
            s.close()
    deadline = time.monotonic() + 10
    while backend_count(ctx.old) > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check_eq(backend_count(ctx.old), 0, "backends left after all clients closed")
    if tgt.is_proxy:
        ctx.log(f"proxy VmRSS after closing all: {tgt.rss_kib()} KiB")


CHECKS = [check_idle_sessions]

if __name__ == "__main__":
    h.run(CHECKS, setup)
