#!/usr/bin/python3
"""Connection limits, store outage, login timeout and graceful shutdown of cutover.

With --direct each check runs PostgreSQL's own analogue (role CONNECTION LIMIT, a stopped
server, authentication_timeout, smart/fast shutdown of the postmaster), which proves the client
side of each check.
"""

import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

MAX_CLIENTS = 5
LOGIN_TIMEOUT_MS = 500
SHUTDOWN_TIMEOUT_MS = 2000
BURST_LIMIT = 150
BURST_CLIENTS = 300


def setup(ctx):
    old = ctx.cluster("old", authentication_timeout="1s")
    old.psql(f"CREATE ROLE limited LOGIN CONNECTION LIMIT {MAX_CLIENTS}")
    return {"old": old}


def check_max_client_connections(ctx):
    tgt = ctx.target(ctx.old, max_client_connections=MAX_CLIENTS)
    # Directly, a role CONNECTION LIMIT gives the same SQLSTATE (53300 too_many_connections).
    user = "postgres" if tgt.is_proxy else "limited"
    conns = [tgt.connect(user=user) for _ in range(MAX_CLIENTS)]
    try:
        try:
            extra = tgt.connect(user=user)
            extra.close()
            raise h.CheckFailed(f"connection {MAX_CLIENTS + 1} was accepted")
        except psycopg2.OperationalError as e:
            message = str(e).strip()
            ctx.log(f"connection {MAX_CLIENTS + 1} refused: {message}")
        try:
            sock, _, _ = h.raw_login(tgt.port, user=user)
            sock.close()
            raise h.CheckFailed(f"raw connection {MAX_CLIENTS + 1} was accepted")
        except h.StartupError as e:
            h.check_eq(e.fields.get("C"), "53300", f"SQLSTATE (ErrorResponse {e.fields})")
            h.check_eq(e.fields.get("S"), "FATAL", "severity")
        for i, c in enumerate(conns):  # the admitted clients are unaffected
            with c.cursor() as cur:
                cur.execute("SELECT %s", (i,))
                h.check_eq(cur.fetchone(), (i,), f"query on admitted connection {i}")
        conns.pop().close()
        time.sleep(0.3)  # the slot is released asynchronously (backend exit / proxy teardown)
        again = tgt.connect(user=user)
        conns.append(again)
        with again.cursor() as cur:
            cur.execute("SELECT 'slot reused'")
            h.check_eq(cur.fetchone(), ("slot reused",), "connection after a slot was freed")
    finally:
        for c in conns:
            c.close()
        tgt.cleanup()


def _burst_outcome(sock):
    """'admitted' once ReadyForQuery arrives, the SQLSTATE of an ErrorResponse, or why not."""
    try:
        while True:
            msg = h.read_message(sock)
            if msg is None:
                return "closed without an answer"
            kind, body = msg
            if kind == b"E":
                fields = h.error_fields(body)
                return f"{fields.get('S')} {fields.get('C')} {fields.get('M')}"
            if kind == b"Z":
                return "admitted"
    except OSError as e:
        return f"socket error: {e}"


def check_connection_burst(ctx):
    # PostgreSQL itself, with max_connections as the limit, is the reference: under a burst every
    # slot is taken and every other startup gets 53300. Through the proxy the store has room for
    # more than the limit, so only max_client_connections can refuse.
    store = ctx.cluster("burst", max_connections=BURST_LIMIT + 50 if not ctx.direct else BURST_LIMIT,
                        superuser_reserved_connections=0)
    # 150 store logins at once on a loaded machine: the postmaster forks them one by one.
    tgt = ctx.target(store, max_client_connections=BURST_LIMIT, login_timeout_ms=60000, connect_timeout_ms=60000)
    socks = []
    try:
        # Every socket connects and sends its startup packet before any answer is read: all
        # startups are in flight together.
        for _ in range(BURST_CLIENTS):
            s = socket.create_connection(("127.0.0.1", tgt.port), timeout=60)
            socks.append(s)
        packet = h.startup_packet("postgres", "postgres")
        for s in socks:
            s.sendall(packet)
        outcomes = [_burst_outcome(s) for s in socks]   # the admitted ones stay open meanwhile
        admitted = outcomes.count("admitted")
        refused = outcomes.count("FATAL 53300 sorry, too many clients already")
        others = sorted({o for o in outcomes if o not in ("admitted", "FATAL 53300 sorry, too many clients already")})
        ctx.log(f"burst of {BURST_CLIENTS} startups, limit {BURST_LIMIT}: {admitted} admitted, {refused} refused "
                f"with 53300; other answers: {others}")
        h.check_eq(admitted, BURST_LIMIT, "connections admitted while all are held open")
        h.check_eq(refused, BURST_CLIENTS - BURST_LIMIT, "connections refused with FATAL 53300 "
                   "'sorry, too many clients already'")
        # The admitted sessions work; a refused one held no slot: closing one admits the next.
        first = outcomes.index("admitted")
        rows, _, err = h.raw_query(socks[first], "SELECT 'still here'")
        h.check_eq((rows, err), ([("still here",)], None), "query on an admitted session")
        socks[first].close()
        deadline = time.monotonic() + 5
        while True:
            try:
                again, _, _ = h.raw_login(tgt.port)
                socks.append(again)
                break
            except h.StartupError as e:
                if time.monotonic() > deadline:
                    raise h.CheckFailed(f"no slot freed 5 s after an admitted session closed: {e.fields}")
                time.sleep(0.1)
        try:
            extra, _, _ = h.raw_login(tgt.port)
            socks.append(extra)
            raise h.CheckFailed(f"connection {BURST_LIMIT + 1} admitted after the freed slot was retaken")
        except h.StartupError as e:
            h.check_eq((e.fields.get("C"), e.fields.get("M")), ("53300", "sorry, too many clients already"),
                       "the next connection past the limit")
    finally:
        for s in socks:
            s.close()
        tgt.cleanup()
        store.cleanup()


def check_old_store_down(ctx):
    down = ctx.cluster("down")
    tgt = ctx.target(down, connect_timeout_ms=2000)
    try:
        down.stop()
        t0 = time.monotonic()
        try:
            conn = tgt.connect()
            conn.close()
            raise h.CheckFailed("connection succeeded with the old store stopped")
        except psycopg2.OperationalError as e:
            message = str(e).strip()
        ctx.log(f"store down after {time.monotonic() - t0:.2f} s: {message}")
        if tgt.is_proxy:
            h.check("old" in message, f"error does not name the store 'old': {message!r}")
            try:
                sock, _, _ = h.raw_login(tgt.port)
                sock.close()
                raise h.CheckFailed("raw startup succeeded with the old store stopped")
            except h.StartupError as e:
                ctx.log(f"ErrorResponse fields: {e.fields}")
                h.check("old" in e.fields.get("M", ""), f"message does not name 'old': {e.fields}")
            h.check(tgt.alive(), "proxy died when the store was down")
            down.start()  # the proxy recovers without a restart
            time.sleep(0.2)
            conn = tgt.connect()
            with conn.cursor() as cur:
                cur.execute("SELECT 'back'")
                h.check_eq(cur.fetchone(), ("back",), "query after the store came back")
            conn.close()
    finally:
        tgt.cleanup()
        down.cleanup()


def _time_until_closed(port, first_bytes=b"", limit=10.0):
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        t0 = time.monotonic()
        if first_bytes:
            s.sendall(first_bytes)
        try:
            while s.recv(4096):
                pass  # an ErrorResponse before the close is fine
        except socket.timeout:
            return None
        except ConnectionResetError:
            pass
        return time.monotonic() - t0


def check_login_timeout(ctx):
    tgt = ctx.target(ctx.old, login_timeout_ms=LOGIN_TIMEOUT_MS)
    try:
        # Directly, PostgreSQL's authentication_timeout (1 s here) plays the same role.
        low, high = (0.4, 2.5) if tgt.is_proxy else (0.9, 3.5)
        silent = _time_until_closed(tgt.port)
        partial = _time_until_closed(tgt.port, h.startup_packet("postgres", "postgres")[:6])
        ctx.log(f"silent socket closed after {silent}, half a startup packet after {partial} s")
        for what, t in (("silent socket", silent), ("partial startup packet", partial)):
            h.check(t is not None, f"{what} still open after 10 s")
            h.check(low <= t <= high, f"{what} closed after {t:.2f} s, expected {low}..{high} s")
        sock, _, _ = h.raw_login(tgt.port)  # a prompt client is not affected
        time.sleep(LOGIN_TIMEOUT_MS / 1000 + 0.5)
        rows, _, err = h.raw_query(sock, "SELECT 'logged in'")
        sock.close()
        h.check(err is None and rows == [("logged in",)],
                f"authenticated session was hit by the login timeout: {rows} {err}")
    finally:
        tgt.cleanup()


class _ShutdownSubject:
    """What SIGTERM is sent to: a fresh proxy, or (--direct) a fresh postmaster."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.store = ctx.cluster("shut")
        self.tgt = ctx.target(self.store, shutdown_timeout_ms=SHUTDOWN_TIMEOUT_MS)

    def signal(self, sig):
        if self.tgt.is_proxy:
            self.tgt.send_signal(sig)
        else:
            os.kill(self.store.postmaster_pid(), sig)

    def wait(self, timeout):
        """Exit code, or None if still running. A postmaster is not our child: gone means 0."""
        if self.tgt.is_proxy:
            return self.tgt.wait(timeout)
        pid = self.store.postmaster_pid()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                self.store.running = False
                return 0
            time.sleep(0.05)
        return None

    def describe(self):
        return self.tgt.stderr_text()[-3000:]

    def cleanup(self):
        self.tgt.cleanup()
        self.store.cleanup()


def _refused(tgt):
    try:
        conn = tgt.connect(connect_timeout=3)
        conn.close()
        return None
    except psycopg2.OperationalError as e:
        return str(e).strip()


def check_sigterm_idle_session(ctx):
    subject = _ShutdownSubject(ctx)
    try:
        conn = subject.tgt.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.commit()
        # PostgreSQL's smart shutdown (SIGTERM) waits for idle sessions forever; its fast
        # shutdown (SIGINT) is the analogue of "exit once the shutdown timeout passed".
        sig = signal.SIGTERM if subject.tgt.is_proxy else signal.SIGINT
        t0 = time.monotonic()
        subject.signal(sig)
        rc = subject.wait(SHUTDOWN_TIMEOUT_MS / 1000 + 3)
        elapsed = time.monotonic() - t0
        ctx.log(f"exit code {rc} after {elapsed:.2f} s with an idle session open")
        h.check(rc is not None, f"still running {elapsed:.1f} s after SIGTERM; log tail:\n"
                                f"{subject.describe()}")
        h.check_eq(rc, 0, "exit code after SIGTERM")
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            raise h.CheckFailed("idle session still usable after shutdown")
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            pass
        conn.close()
    finally:
        subject.cleanup()


def check_sigterm_running_query(ctx):
    subject = _ShutdownSubject(ctx)
    try:
        conn = subject.tgt.connect()
        conn.autocommit = True
        result = {}

        def run():
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(1), 'finished'")
                    result["row"] = cur.fetchone()
            except Exception as e:  # reported below
                result["error"] = f"{type(e).__name__}: {e}"
            result["end"] = time.monotonic()

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        subject.signal(signal.SIGTERM)
        time.sleep(0.1)
        refused = _refused(subject.tgt)
        h.check(refused is not None, "a new connection was accepted after SIGTERM")
        ctx.log(f"new connection after SIGTERM refused: {refused}")
        t.join(10)
        h.check(not t.is_alive(), "pg_sleep(1) did not finish within 10 s of SIGTERM")
        h.check("error" not in result, f"in-flight query failed: {result.get('error')}")
        h.check_eq(result.get("row"), ("", "finished"), "in-flight query result")
        conn.close()
        rc = subject.wait(SHUTDOWN_TIMEOUT_MS / 1000 + 3)
        ctx.log(f"exit code {rc} {time.monotonic() - t0:.2f} s after SIGTERM")
        h.check(rc is not None, f"still running after the session ended; log tail:\n"
                                f"{subject.describe()}")
        h.check_eq(rc, 0, "exit code after SIGTERM")
    finally:
        subject.cleanup()


CHECKS = [check_max_client_connections, check_connection_burst, check_old_store_down, check_login_timeout,
          check_sigterm_idle_session, check_sigterm_running_query]

if __name__ == "__main__":
    h.run(CHECKS, setup)
