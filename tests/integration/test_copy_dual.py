#!/usr/bin/python3
"""COPY FROM STDIN through cutover in dual-write (`writes: dual`, `mirror: sync` and `async`).

One proxy per mode and check, in front of two real PostgreSQL 15 clusters, old and new:

- copy_freeze_refused: `TRUNCATE v; COPY v FROM stdin CSV FREEZE;` outside a transaction (the
  store refuses FREEZE there) followed by its data, `\\.`, then `BEGIN; SELECT ...; COMMIT;` in
  psql: the output is the one PostgreSQL gives directly (its exact error, then every later
  statement answered), in pass-through, sync and async; v is empty on both stores (psql runs
  the TRUNCATE on its own) and nothing is journaled.
- copy_error_mid_stream: a COPY of 200,000 rows that the store fails at row 100 (duplicate key)
  while the client is still sending, with psycopg2's copy_expert, psycopg3's cursor.copy and a
  raw-protocol client that sends a stray CopyData and CopyDone after the error: the exact
  23505 error, then `SELECT 1` answered on the same connection (PostgreSQL drops copy messages
  that come after the COPY ended, protocol 55.2.6); both stores hold only their row 100 and
  nothing is journaled (both failed the same COPY).
- copy_extended_protocol: COPY FROM STDIN as Parse/Bind/Execute/Sync (the way libpq's
  PQexecParams sends it), then the rows, CopyDone and Sync: answered as PostgreSQL answers it, a
  good one and one failing with 23505; both stores hold the same rows.
- copy_backpressure_sync: a COPY of CUTOVER_COPY_MB (600) MB while another session holds
  ACCESS EXCLUSIVE on new's table (released after a while): proxy VmHWM stays under
  COPY_HWM_LIMIT_MIB (the client is not read while a store's output is full), and both stores
  hold the same rows (count and md5 of every row, equal to what the client sent).
- copy_backpressure_async: the same COPY under `mirror: async`: memory is bounded the same way,
  the COPY (larger than mirror_queue_bytes) is journaled as one `queue_full` line, never kept
  whole; an 8 MB COPY with new locked is queued and applied once new is unlocked (same rows).
- copy_secondary_stalled: sync, new locked for good, mirror_timeout_ms 3 s: the client's 50 MB
  COPY still completes (the secondary that takes no data for mirror_timeout_ms is given up and
  the miss journaled as `secondary_timeout`), memory bounded.

`--direct`: every COPY runs against old itself (same client code, same error texts, same row
checks); the proxy-only parts (new, journal, VmHWM) are skipped with a printed reason.
"""

import hashlib
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()
import psycopg2.errors  # noqa: E402

try:
    import psycopg  # psycopg3 (python3-psycopg)
except ImportError:
    psycopg = None

COPY_MB = int(os.environ.get("CUTOVER_COPY_MB", "600"))
# Measured on the 2-core test machine: VmHWM 17.6 MiB in sync for 600 MB and for 1 GB alike,
# 56.6 MiB in async (up to mirror_queue_bytes, 16 MiB, of copy data kept before it overflows);
# before the backpressure, 505 MiB for 600 MB with the same 15 s lock. Room, yet far below a
# buffered COPY.
COPY_HWM_LIMIT_MIB = 128
LOCK_S = 15           # new's table stays locked this long (or until the client sent everything)
ANSWER_S = 60         # a statement not answered in this long is a stuck session
DRAIN_S = 300
FREEZE_ERROR = ("ERROR:  cannot perform COPY FREEZE because the table was not created or truncated "
                "in the current subtransaction")
DUPLICATE_ERROR = 'duplicate key value violates unique constraint "t_pkey"'


def setup(ctx):
    h.require_tool("psql", "postgresql-client-15")
    if psycopg is None:
        raise h.HarnessError("psycopg3 is missing: install python3-psycopg")
    fx = {"old": ctx.cluster("old")}
    if not ctx.direct:
        fx["new"] = ctx.cluster("new")
    return fx


def modes(ctx, *wanted):
    """The mirror modes a check runs in: `direct` alone with --direct; CUTOVER_COPY_MODES
    (comma-separated) narrows them, e.g. `async` while iterating."""
    if ctx.direct:
        return ["direct"]
    only = [m for m in os.environ.get("CUTOVER_COPY_MODES", "").split(",") if m]
    chosen = [m for m in wanted if not only or m in only]
    return chosen or list(wanted)[:1]


class Target:
    """Database `db` made fresh on every store, and a proxy in `mode` in front of them (with
    --direct, old itself). `schema` runs on every store directly, so they start identical."""

    def __init__(self, ctx, db, mode, schema, **overrides):
        self.ctx, self.db, self.mode = ctx, db, mode
        self.stores = [ctx.old] if ctx.direct else [ctx.old, ctx.new]
        h.fresh_database(db, *self.stores)
        for store in self.stores:
            store.psql(schema, db=db)
        self.journal_path = None
        if ctx.direct:
            self.tgt = h.DirectTarget(ctx.old)
            return
        tmp = h.TmpDir("copy-journal").path
        journal_dir = os.path.join(tmp, "journal")
        os.makedirs(journal_dir)
        if h.IS_ROOT:
            shutil.chown(tmp, "postgres", "postgres")
            shutil.chown(journal_dir, "postgres", "postgres")
        self.journal_path = os.path.join(journal_dir, "divergences.jsonl")
        self.admin_port = h.free_port()
        flags = {"writes": "old"} if mode == "pass-through" else {"writes": "dual", "mirror": mode}
        overrides.setdefault("mirror_timeout_ms", 120000)
        self.tgt = h.Proxy(ctx.binary, old=ctx.old, new=ctx.new, flags=flags, journal_dir=journal_dir,
                           admin={"listen": f"127.0.0.1:{self.admin_port}"}, **overrides)

    @property
    def proxy(self):
        return self.tgt.is_proxy

    @property
    def port(self):
        return self.tgt.port

    def connect(self):
        conn = self.tgt.connect(db=self.db)
        conn.autocommit = True
        return conn

    def connect3(self):
        return psycopg.connect(self.tgt.dsn(db=self.db), autocommit=True)

    def journal(self):
        if not self.proxy or not os.path.exists(self.journal_path):
            return []
        return [json.loads(line) for line in h.read_text(self.journal_path).splitlines() if line.strip()]

    def wait_drained(self):
        if not self.proxy or self.mode != "async":
            return
        deadline = time.monotonic() + DRAIN_S
        while (n := h.Metrics(self.admin_port).get("cutover_mirror_queue_units")) != 0:
            h.check(time.monotonic() < deadline, f"{n:.0f} writes still queued for new after {DRAIN_S}s")
            time.sleep(0.1)

    def vm_hwm_kib(self):
        with open(f"/proc/{self.tgt.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise h.HarnessError("no VmHWM in /proc/PID/status")

    def stop(self):
        if self.proxy:
            rc = self.tgt.stop()
            h.check_eq(rc, 0, f"proxy exit code; stderr tail:\n{self.tgt.stderr_text()[-3000:]}")


def answered(what, fn, timeout=ANSWER_S):
    """fn() in a thread; fails the check if it is not back within `timeout` (a stuck session)."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 — re-raised in the caller's thread
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    h.check(not t.is_alive(), f"{what}: no answer within {timeout}s (the session is stuck)")
    if "error" in out:
        raise out["error"]
    return out["value"]


def each_store(target, sql):
    return {s.name: h.fetch_all(s, sql, db=target.db) for s in target.stores}


# ---------------------------------------------------------------------------------------------
# COPY FREEZE refused outside a transaction


FREEZE_SCRIPT = """TRUNCATE v; COPY v FROM stdin CSV FREEZE;
1,one
2,two
\\.
BEGIN;
SELECT count(*) AS rows_in_v FROM v;
COMMIT;
SELECT 'still answering' AS after;
"""


def check_copy_freeze_refused(ctx):
    for mode in modes(ctx, "pass-through", "sync", "async"):
        t = Target(ctx, f"cf_{mode.replace('-', '_')}", mode,
                   "CREATE TABLE v (id int, name text); INSERT INTO v VALUES (10, 'x'), (11, 'y'), (12, 'z');")
        try:
            # The reference: psql straight to old (it empties v there, as the target will on both).
            ref = h.run_psql(ctx.old.endpoint(), FREEZE_SCRIPT, db=t.db, timeout=ANSWER_S)
            h.check(FREEZE_ERROR in ref[1], f"direct psql output lacks the FREEZE error:\n{ref[1]}")
            h.check("rows_in_v \n-----------\n         0\n" in ref[1] and "still answering" in ref[1],
                    f"direct psql output:\n{ref[1]}")
            try:
                got = h.run_psql(t.tgt.endpoint(), FREEZE_SCRIPT, db=t.db, timeout=ANSWER_S)
            except Exception as e:  # subprocess.TimeoutExpired: the session never answered
                raise h.CheckFailed(f"{mode}: psql through the target: {e}")
            h.check_eq(got, ref, f"{mode}: psql exit code and output through the target vs direct")
            t.wait_drained()
            for store, rows in each_store(t, "SELECT id, name FROM v ORDER BY id").items():
                if mode != "pass-through" or store == "old":   # pass-through leaves new alone
                    h.check_eq(rows, [], f"{mode}: v on {store} (TRUNCATEd)")
            h.check_eq(t.journal(), [], f"{mode}: divergences.jsonl")
            ctx.log(f"{mode}: FREEZE refused with PostgreSQL's error, every later statement answered")
        finally:
            t.stop()


# ---------------------------------------------------------------------------------------------
# A COPY the store fails while the client is still sending


ROWS_MID = 200000


def mid_stream_rows():
    return "".join(f"{i}\trow {i}\n" for i in range(1, ROWS_MID + 1))


def copy_psycopg2(t, data):
    conn = t.connect()
    try:
        with conn.cursor() as cur:
            try:
                cur.copy_expert("COPY t FROM STDIN", _Chunks(data.encode()), size=8192)
            except psycopg2.errors.UniqueViolation as e:
                error = ("23505", e.diag.message_primary)
            else:
                error = None
            cur.execute("SELECT 1")
            return error, cur.fetchall()
    finally:
        conn.close()


def copy_psycopg3(t, data):
    with t.connect3() as conn:
        cur = conn.cursor()
        error = None
        try:
            with cur.copy("COPY t FROM STDIN") as copy:
                for i in range(0, len(data), 8192):
                    copy.write(data[i:i + 8192])
        except psycopg.errors.UniqueViolation as e:
            error = ("23505", e.diag.message_primary)
        cur.execute("SELECT 1")
        return error, cur.fetchall()


def message(kind, payload=b""):
    return kind + struct.pack("!i", len(payload) + 4) + payload


def read_until_ready(sock):
    """Backend messages up to ReadyForQuery: (types seen, error fields or None, DataRow bodies)."""
    kinds, error, rows = [], None, []
    while True:
        msg = h.read_message(sock)
        if msg is None:
            raise h.CheckFailed(f"connection closed after {kinds}")
        kind, body = msg
        kinds.append(kind.decode())
        if kind == b"E":
            error = h.error_fields(body)
        elif kind == b"D":
            rows.append(body)
        elif kind == b"Z":
            return kinds, error, rows


def copy_raw(t):
    """Query COPY, wait for CopyInResponse, send 2,000 rows (the store fails at row 100 once it
    flushes its first batch), read the error and ReadyForQuery, then a stray CopyData and
    CopyDone, then SELECT 1."""
    sock, _, _ = h.raw_login(t.port, database=t.db, timeout=ANSWER_S)
    try:
        sock.sendall(message(b"Q", b"COPY t FROM STDIN\0"))
        head = h.read_message(sock)
        h.check(head is not None and head[0] == b"G", f"CopyInResponse expected, got {head!r}")
        for start in range(1, 2001, 100):
            rows = "".join(f"{i}\trow {i}\n" for i in range(start, start + 100))
            sock.sendall(message(b"d", rows.encode()))
        sock.sendall(message(b"c"))
        kinds, error, _ = read_until_ready(sock)
        sock.sendall(message(b"d", b"5000\tstray\n") + message(b"c"))
        body = b"SELECT 1\0"
        sock.sendall(message(b"Q", body))
        after = read_until_ready(sock)
        return kinds, (error or {}).get("C"), (error or {}).get("M"), after[0], after[2]
    finally:
        sock.close()


def copy_extended(t, rows):
    """Parse/Bind/Execute/Sync of COPY t FROM STDIN (as libpq's PQexecParams sends it), the rows,
    CopyDone and a Sync (the store takes the batch's own Sync during copy-in and answers this
    one), then SELECT 1. Returns the message types seen and the error's SQLSTATE (or None)."""
    sock, _, _ = h.raw_login(t.port, database=t.db, timeout=ANSWER_S)
    try:
        sock.sendall(message(b"P", b"\0COPY t FROM STDIN\0\0\0") + message(b"B", b"\0\0" + b"\0\0" * 3) +
                     message(b"E", b"\0\0\0\0\0") + message(b"S"))
        kinds = []
        while not kinds or kinds[-1] not in ("G", "Z"):
            kinds.append(h.read_message(sock)[0].decode())
        sock.sendall(message(b"d", rows.encode()) + message(b"c") + message(b"S"))
        more, error, _ = read_until_ready(sock)
        sock.sendall(message(b"Q", b"SELECT 1\0"))
        after = read_until_ready(sock)
        return kinds + more, (error or {}).get("C"), after[0]
    finally:
        sock.close()


def check_copy_extended_protocol(ctx):
    for mode in modes(ctx, "sync", "async"):
        t = Target(ctx, f"ce_{mode}", mode,
                   "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL); INSERT INTO t VALUES (100, 'existing');")
        try:
            ok = answered(f"{mode}: extended-protocol COPY", lambda: copy_extended(t, "1\tone\n2\ttwo\n"))
            h.check_eq(ok, (["1", "2", "G", "C", "Z"], None, ["T", "D", "C", "Z"]),
                       f"{mode}: extended-protocol COPY of 2 rows, then SELECT 1")
            bad = answered(f"{mode}: failing extended-protocol COPY",
                           lambda: copy_extended(t, "".join(f"{i}\trow {i}\n" for i in range(3, 2001))))
            h.check_eq(bad, (["1", "2", "G", "E", "Z"], "23505", ["T", "D", "C", "Z"]),
                       f"{mode}: extended-protocol COPY failing at row 100, then SELECT 1")
            t.wait_drained()
            for store, rows in each_store(t, "SELECT id, v FROM t ORDER BY id").items():
                h.check_eq(rows, [(1, "one"), (2, "two"), (100, "existing")], f"{mode}: t on {store}")
            h.check_eq(t.journal(), [], f"{mode}: divergences.jsonl")
        finally:
            t.stop()


class _Chunks:
    """A file-like source for copy_expert, read in the sizes it asks for."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def read(self, n=-1):
        n = len(self.data) - self.at if n < 0 else n
        out = self.data[self.at:self.at + n]
        self.at += len(out)
        return out

    readline = read


def check_copy_error_mid_stream(ctx):
    data = mid_stream_rows()
    for mode in modes(ctx, "sync", "async"):
        t = Target(ctx, f"cm_{mode}", mode,
                   "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL); INSERT INTO t VALUES (100, 'existing');")
        try:
            want = (("23505", DUPLICATE_ERROR), [(1,)])
            h.check_eq(answered(f"{mode}: psycopg2 copy_expert, then SELECT 1", lambda: copy_psycopg2(t, data)),
                       want, f"{mode}: psycopg2: the COPY's error, then SELECT 1")
            h.check_eq(answered(f"{mode}: psycopg3 cursor.copy, then SELECT 1", lambda: copy_psycopg3(t, data)),
                       want, f"{mode}: psycopg3: the COPY's error, then SELECT 1")
            kinds, code, text, after, rows = answered(f"{mode}: raw COPY, stray CopyData/CopyDone, SELECT 1",
                                                      lambda: copy_raw(t))
            h.check_eq((kinds, code, text), (["E", "Z"], "23505", DUPLICATE_ERROR),
                       f"{mode}: raw client: answer to the failing COPY")
            h.check_eq((after, rows), (["T", "D", "C", "Z"], [struct.pack("!hi", 1, 1) + b"1"]),
                       f"{mode}: raw client: SELECT 1 after a stray CopyData and CopyDone")
            t.wait_drained()
            for store, rows in each_store(t, "SELECT id, v FROM t ORDER BY id").items():
                h.check_eq(rows, [(100, "existing")], f"{mode}: t on {store}")
            h.check_eq(t.journal(), [], f"{mode}: divergences.jsonl (both stores failed the same COPYs)")
            ctx.log(f"{mode}: 3 failing COPYs (psycopg2, psycopg3, raw) answered 23505, then SELECT 1")
        finally:
            t.stop()


# ---------------------------------------------------------------------------------------------
# Backpressure: a large COPY while a store cannot take it


BLOCK = "".join(chr(ord("a") + i % 26) for i in range(990))


class CopySource:
    """`rows` rows of about 1 KB, generated as copy_expert reads them; `finished` once all are out."""

    def __init__(self, rows):
        self.rows, self.next, self.finished = rows, 1, threading.Event()
        self.pending = b""

    @staticmethod
    def value(i):
        return f"{i:08d}{BLOCK[i % 26:]}"

    def read(self, n=-1):
        while len(self.pending) < n and self.next <= self.rows:
            end = min(self.rows, self.next + 63)
            self.pending += "".join(f"{i}\t{self.value(i)}\n" for i in range(self.next, end + 1)).encode()
            self.next = end + 1
        out, self.pending = self.pending[:n], self.pending[n:]
        if not out:
            self.finished.set()
        return out

    readline = read

    def expected(self):
        digest = hashlib.md5()
        for i in range(1, self.rows + 1):
            digest.update(hashlib.md5(self.value(i).encode()).hexdigest().encode())
        return self.rows, digest.hexdigest()


def rows_for(mb):
    return mb * 1024 * 1024 // (len(f"{1}\t{CopySource.value(1)}\n") + 2)


CHECKSUM = "SELECT count(*), coalesce(md5(string_agg(md5(v), '' ORDER BY id)), '') FROM big"
BIG_SCHEMA = "CREATE TABLE big (id bigint NOT NULL, v text NOT NULL);"


class NewLocked:
    """ACCESS EXCLUSIVE on new's big, from a session of its own; a no-op with --direct."""

    def __init__(self, t):
        self.conn = None
        if t.proxy:
            self.conn = psycopg2.connect(t.ctx.new.dsn(db=t.db))
            with self.conn.cursor() as cur:
                cur.execute("LOCK TABLE big IN ACCESS EXCLUSIVE MODE")

    def release(self):
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


def release_later(lock, source, seconds):
    def run():
        source.finished.wait(seconds)
        lock.release()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def big_copy(t, source):
    conn = t.connect()
    try:
        with conn.cursor() as cur:
            cur.copy_expert("COPY big FROM STDIN", source, size=65536)
            return cur.rowcount
    finally:
        conn.close()


def measured_copy(ctx, t, source, what):
    sampler = h.RssSampler(t.tgt.pid if t.proxy else None, interval=0.05)
    t0 = time.monotonic()
    with sampler:
        copied = answered(what, lambda: big_copy(t, source), timeout=1800)
    elapsed = time.monotonic() - t0
    if t.proxy:
        hwm = t.vm_hwm_kib()
        ctx.log(f"{what}: {source.rows} rows in {elapsed:.1f}s; proxy VmHWM {hwm / 1024:.1f} MiB, "
                f"sampled VmRSS peak {sampler.peak / 1024:.1f} MiB")
        h.check_memory(hwm < COPY_HWM_LIMIT_MIB * 1024,
                       f"{what}: proxy VmHWM {hwm / 1024:.1f} MiB >= {COPY_HWM_LIMIT_MIB} MiB (COPY buffered?)")
    return copied


def check_copy_backpressure_sync(ctx):
    mode = modes(ctx, "sync")[0]
    t = Target(ctx, f"cb_{mode}", mode, BIG_SCHEMA)
    try:
        source = CopySource(rows_for(COPY_MB))
        lock = NewLocked(t)
        release_later(lock, source, LOCK_S)
        try:
            copied = measured_copy(ctx, t, source, f"{mode}: {COPY_MB} MB COPY, new locked {LOCK_S}s")
        finally:
            lock.release()
        h.check_eq(copied, source.rows, f"{mode}: COPY row count")
        want = [source.expected()]
        for store, got in each_store(t, CHECKSUM).items():
            h.check_eq(got, want, f"{mode}: count and md5 of big on {store}")
        h.check_eq(t.journal(), [], f"{mode}: divergences.jsonl")
    finally:
        t.stop()


def check_copy_backpressure_async(ctx):
    mode = modes(ctx, "async")[0]
    t = Target(ctx, f"ca_{mode}", mode, BIG_SCHEMA)
    try:
        # Small enough for the mirror queue: queued while new is locked, applied afterwards.
        small = CopySource(rows_for(8))
        lock = NewLocked(t)
        try:
            h.check_eq(answered(f"{mode}: 8 MB COPY, new locked", lambda: big_copy(t, small)), small.rows,
                       f"{mode}: 8 MB COPY row count (answered while new is locked)")
        finally:
            lock.release()
        t.wait_drained()
        want = [small.expected()]
        for store, got in each_store(t, CHECKSUM).items():
            h.check_eq(got, want, f"{mode}: count and md5 of big on {store} after the 8 MB COPY")
        h.check_eq(t.journal(), [], f"{mode}: divergences.jsonl after the 8 MB COPY")
        # Larger than mirror_queue_bytes: never kept whole, journaled.
        for store in t.stores:
            store.psql("TRUNCATE big", db=t.db)
        source = CopySource(rows_for(COPY_MB))
        lock = NewLocked(t)
        release_later(lock, source, LOCK_S)
        try:
            copied = measured_copy(ctx, t, source, f"{mode}: {COPY_MB} MB COPY, new locked {LOCK_S}s")
        finally:
            lock.release()
        h.check_eq(copied, source.rows, f"{mode}: COPY row count")
        t.wait_drained()
        got = each_store(t, CHECKSUM)
        h.check_eq(got["old"], [source.expected()], f"{mode}: count and md5 of big on old")
        if t.proxy:
            h.check_eq(got["new"], [(0, "")], f"{mode}: big on new (the COPY could not be queued)")
            lines = [(d["kind"], d["statement"], d["secondary_outcome"].split(" (")[0]) for d in t.journal()]
            h.check_eq(lines, [("queue_full", "COPY big FROM STDIN", "not applied: the statement's data")],
                       f"{mode}: divergences.jsonl")
    finally:
        t.stop()


def check_copy_secondary_stalled(ctx):
    mode = modes(ctx, "sync")[0]
    t = Target(ctx, f"cs_{mode}", mode, BIG_SCHEMA, mirror_timeout_ms=3000)
    try:
        source = CopySource(rows_for(50))
        lock = NewLocked(t)
        try:
            copied = measured_copy(ctx, t, source, f"{mode}: 50 MB COPY, new locked throughout")
        finally:
            lock.release()
        h.check_eq(copied, source.rows, f"{mode}: COPY row count")
        got = each_store(t, CHECKSUM)
        h.check_eq(got["old"], [source.expected()], f"{mode}: count and md5 of big on old")
        if t.proxy:
            h.check_eq(got["new"], [(0, "")], f"{mode}: big on new (given up while locked)")
            lines = [(d["kind"], d["statement"]) for d in t.journal()]
            h.check_eq(lines, [("secondary_timeout", "COPY big FROM STDIN")], f"{mode}: divergences.jsonl")
    finally:
        t.stop()


CHECKS = [check_copy_freeze_refused, check_copy_error_mid_stream, check_copy_extended_protocol,
          check_copy_backpressure_sync,
          check_copy_backpressure_async, check_copy_secondary_stalled]

if __name__ == "__main__":
    h.run(CHECKS, setup)
