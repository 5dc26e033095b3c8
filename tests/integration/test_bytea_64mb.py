#!/usr/bin/python3
"""A 64 MB bytea through cutover, written as a parameter and read back byte-identical."""

import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

DB = "blob"
SIZE = 64 * 1024 * 1024
RSS_LIMIT_KIB = 200 * 1024


def setup(ctx):
    fx = h.standard_setup(ctx)
    h.fresh_database(DB, fx["ref"], fx["old"])
    fx["data"] = os.urandom(SIZE)
    fx["digest"] = hashlib.sha256(fx["data"]).hexdigest()
    return fx


def round_trip(ctx, ep):
    conn = ep.connect(db=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS blobs; CREATE TABLE blobs (id int PRIMARY KEY, b bytea)")
            cur.execute("INSERT INTO blobs VALUES (%s, %s)", (1, psycopg2.Binary(ctx.data)))
            conn.commit()
            cur.execute("SELECT b, length(b), encode(sha256(b), 'hex') FROM blobs WHERE id = 1")
            b, length, server_digest = cur.fetchone()
            conn.commit()
            return hashlib.sha256(b).hexdigest(), length, server_digest
    finally:
        conn.close()


def check_round_trip(ctx):
    pid = ctx.tgt.pid if ctx.tgt.is_proxy else None
    ref = round_trip(ctx, ctx.ref.endpoint())
    with h.RssSampler(pid, interval=0.05) as rss:
        tgt = round_trip(ctx, ctx.tgt.endpoint())
    h.check_eq(ref, (ctx.digest, SIZE, ctx.digest), "direct round trip (sha256, length)")
    h.check_eq(tgt, ref, "round trip through target (sha256 read back, length, sha256 stored)")
    stored = ctx.old.psql("SELECT length(b), encode(sha256(b), 'hex') FROM blobs", db=DB).strip()
    h.check_eq(stored, f"{SIZE}|{ctx.digest}", "bytea stored in the old store")
    if ctx.tgt.is_proxy:
        after = ctx.tgt.rss_kib()
        ctx.log(f"proxy VmRSS after: {after} KiB ({after / 1024:.1f} MiB); "
                f"peak during transfer: {rss.peak / 1024:.1f} MiB")
        h.check_memory(after < RSS_LIMIT_KIB, f"proxy VmRSS {after} KiB after the 64 MB round trip "
                                       f"(limit {RSS_LIMIT_KIB} KiB)")


CHECKS = [check_round_trip]

if __name__ == "__main__":
    h.run(CHECKS, setup)
