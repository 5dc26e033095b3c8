#!/usr/bin/python3
"""~300 MB results through cutover are streamed: proxy memory stays small, bytes identical."""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ROWS = 300000
QUERY = f"SELECT repeat('x', 1000) FROM generate_series(1, {ROWS})"
PEAK_LIMIT_KIB = 64 * 1024


def setup(ctx):
    h.require_tool("psql", "postgresql-client-15")
    return h.standard_setup(ctx)


def psql_digest(ep, command, extra=()):
    """Runs psql -c and hashes its stdout as it streams (never held whole in this process)."""
    argv, env = ep.psql_args()
    p = subprocess.Popen(argv + ["-A", "-t", *extra, "-c", command], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    digest, size = hashlib.sha256(), 0
    while chunk := p.stdout.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    err = p.stderr.read().decode(errors="replace")
    h.check_eq(p.wait(), 0, f"psql exit code (stderr: {err})")
    return digest.hexdigest(), size


def sampled(ctx, fn):
    pid = ctx.tgt.pid if ctx.tgt.is_proxy else None
    before = ctx.tgt.rss_kib()
    with h.RssSampler(pid, interval=0.01) as rss:
        result = fn()
    return result, before, rss


def report_peak(ctx, what, before, rss):
    if not ctx.tgt.is_proxy:
        return
    ctx.log(f"{what}: proxy VmRSS before {before} KiB, peak {rss.peak} KiB "
            f"({rss.peak / 1024:.1f} MiB, {rss.samples} samples)")
    h.check(rss.samples > 10, "too few RSS samples")
    h.check_memory(rss.peak < PEAK_LIMIT_KIB,
            f"{what}: proxy peak VmRSS {rss.peak} KiB >= {PEAK_LIMIT_KIB} KiB (result buffered?)")


def check_psql_rows(ctx):
    ref = psql_digest(ctx.ref.endpoint(), QUERY)
    tgt, before, rss = sampled(ctx, lambda: psql_digest(ctx.tgt.endpoint(), QUERY))
    h.check_eq(tgt, ref, "sha256 and size of psql output through target vs direct")
    h.check_eq(ref[1], ROWS * 1001, "bytes of psql output")
    report_peak(ctx, "SELECT via psql", before, rss)


def check_copy_out(ctx):
    command = f"COPY ({QUERY}) TO STDOUT"
    ref = psql_digest(ctx.ref.endpoint(), command)
    tgt, before, rss = sampled(ctx, lambda: psql_digest(ctx.tgt.endpoint(), command))
    h.check_eq(tgt, ref, "sha256 and size of COPY TO STDOUT through target vs direct")
    report_peak(ctx, "COPY TO STDOUT via psql", before, rss)


def slow_reader(port, pause_s):
    """Raw client: sends the query, reads 64 KiB, stalls for pause_s (a fast backend keeps
    producing meanwhile), then drains. Returns (DataRow count, payload digest)."""
    sock, _, _ = h.raw_login(port)
    try:
        body = QUERY.encode() + b"\0"
        sock.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        buf = bytearray(sock.recv(65536))
        time.sleep(pause_s)
        digest, rows, done = hashlib.sha256(), 0, False
        while not done:
            while len(buf) >= 5:
                (length,) = struct.unpack("!i", buf[1:5])
                if len(buf) < 1 + length:
                    break
                kind, payload = buf[0:1], bytes(buf[5:1 + length])
                del buf[:1 + length]
                if kind == b"D":
                    rows += 1
                    digest.update(payload)
                elif kind == b"E":
                    raise h.HarnessError(f"query failed: {h.error_fields(payload)}")
                elif kind == b"Z":
                    done = True
                    break
            if not done:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    raise h.HarnessError("connection closed before ReadyForQuery")
                buf += chunk
        return rows, digest.hexdigest()
    finally:
        sock.close()


def check_slow_client_backpressure(ctx):
    ref = slow_reader(ctx.ref.port, 0)
    tgt, before, rss = sampled(ctx, lambda: slow_reader(ctx.tgt.port, 3.0))
    h.check_eq(tgt, ref, "DataRow count and digest for a slow reader through target vs direct")
    h.check_eq(ref[0], ROWS, "DataRows")
    report_peak(ctx, "slow raw reader (3 s stall)", before, rss)


CHECKS = [check_psql_rows, check_copy_out, check_slow_client_backpressure]

if __name__ == "__main__":
    h.run(CHECKS, setup)
