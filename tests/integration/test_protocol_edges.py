#!/usr/bin/python3
"""Protocol edges of the pass-through: FunctionCall, SSL/GSS negotiation, malformed and oversized
messages, a store that accepts TCP but never answers, and Unix sockets (a store reached over
one; `listen` on one: permissions, a stale file, a second instance, removal at stop).

Each check that has a PostgreSQL analogue runs it with --direct too, so the expected client-side
behaviour (SQLSTATE, the connection closing) is PostgreSQL's own.
"""

import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)


def setup(ctx):
    return {"old": ctx.cluster("old")}


def _error_then_eof(sock, limit=5.0):
    """Reads until EOF; returns the fields of the first ErrorResponse ({} if none)."""
    sock.settimeout(limit)
    fields = {}
    while True:
        msg = h.read_message(sock)
        if msg is None:
            return fields
        kind, body = msg
        if kind == b"E" and not fields:
            for part in body.split(b"\0"):
                if part:
                    fields[chr(part[0])] = part[1:].decode(errors="replace")


def _connections_received(cluster):
    return cluster.log_text().count("connection received")


def check_function_call(ctx):
    """libpq's large-object calls (lo_open, loread, lowrite) use the FunctionCall message."""
    tgt = ctx.target(ctx.old)
    try:
        conn = tgt.connect()
        try:
            payload = os.urandom(300_000)
            lo = conn.lobject(0, "wb")
            oid = lo.oid
            lo.write(payload)
            lo.close()
            conn.commit()
            lo = conn.lobject(oid, "rb")
            back = lo.read()
            lo.close()
            h.check_eq(len(back), len(payload), "large object length read back")
            h.check(back == payload, "large object bytes differ after FunctionCall round trip")
            lo = conn.lobject(oid, "wb")
            lo.unlink()
            conn.commit()
        finally:
            conn.close()
    finally:
        tgt.cleanup()


def check_ssl_and_gss_requests_answered_n(ctx):
    tgt = ctx.target(ctx.old)
    try:
        with socket.create_connection(("127.0.0.1", tgt.port), timeout=5) as s:
            if tgt.is_proxy:
                # Debian's PostgreSQL is built with GSSAPI and answers 'G'; cutover offers no GSS
                # encryption, so 'N' ("continue in plaintext") is the only right answer here.
                s.sendall(GSSENC_REQUEST)
                h.check_eq(s.recv(1), b"N", "answer to GSSENCRequest")
            s.sendall(SSL_REQUEST)
            h.check_eq(s.recv(1), b"N", "answer to SSLRequest")
            s.sendall(h.startup_packet("postgres", "postgres"))
            while True:
                msg = h.read_message(s)
                h.check(msg is not None, "connection closed during startup after 'N' answers")
                if msg[0] == b"Z":
                    break
                h.check(msg[0] != b"E", f"ErrorResponse during startup: {msg[1]!r}")
    finally:
        tgt.cleanup()


def check_unknown_message_type(ctx):
    tgt = ctx.target(ctx.old)
    try:
        sock, _, _ = h.raw_login(tgt.port)
        with sock:
            sock.sendall(b"\x01\x00\x00\x00\x04")
            fields = _error_then_eof(sock)
        ctx.log(f"error: {fields}")
        h.check_eq(fields.get("C"), "08P01", "SQLSTATE for an unknown message type")
        if tgt.is_proxy:
            h.check("0x01" in fields.get("M", ""), f"message does not name the bad type: {fields}")
            h.check(tgt.alive(), "proxy died on an unknown message type")
    finally:
        tgt.cleanup()


def check_oversized_message(ctx):
    tgt = ctx.target(ctx.old, max_message_bytes=1 << 20)
    try:
        sock, _, _ = h.raw_login(tgt.port)
        with sock:
            # A Query claiming 2 GiB - 1: beyond PostgreSQL's 1 GB and the proxy's 1 MiB limit.
            sock.sendall(b"Q" + struct.pack("!I", 0x7FFFFFFF) + b"SELECT 1")
            fields = _error_then_eof(sock)
        ctx.log(f"error: {fields}")
        # PostgreSQL closes without a word (it logs "invalid message length"); the proxy closes
        # too, after telling the client why. Either way the connection ended (_error_then_eof).
        if tgt.is_proxy:
            h.check_eq(fields.get("C"), "08P01", "SQLSTATE for an oversized message")
            h.check(tgt.alive(), "proxy died on an oversized message")
    finally:
        tgt.cleanup()


def check_oversized_startup_packet_never_reaches_store(ctx):
    tgt = ctx.target(ctx.old)
    try:
        before = _connections_received(ctx.old)
        with socket.create_connection(("127.0.0.1", tgt.port), timeout=5) as s:
            s.sendall(struct.pack("!ii", 20000, 196608) + b"user\0x\0" + b"a" * 100)
            fields = _error_then_eof(s)
        ctx.log(f"error: {fields}")
        if tgt.is_proxy:   # PostgreSQL closes silently ("invalid length of startup packet")
            h.check_eq(fields.get("C"), "08P01", "SQLSTATE for a 20000-byte startup packet")
            time.sleep(0.2)
            h.check_eq(_connections_received(ctx.old), before,
                       "connections the old store received for a rejected startup packet")
            h.check(tgt.alive(), "proxy died on an oversized startup packet")
    finally:
        tgt.cleanup()


def check_store_connect_timeout(ctx):
    """A store that accepts TCP but never answers: the client gets a clear error in time."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def accept_and_hold():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])   # never read, never answered
            except socket.timeout:
                pass

    t = threading.Thread(target=accept_and_hold, daemon=True)
    t.start()
    try:
        if ctx.direct:
            # libpq's own connect_timeout against the same silent server.
            t0 = time.monotonic()
            try:
                psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                 connect_timeout=1).close()
                raise h.CheckFailed("connected to a server that never answers")
            except psycopg2.OperationalError as e:
                ctx.log(f"direct: {time.monotonic() - t0:.2f} s: {str(e).strip()}")
            return
        tgt = ctx.target(ctx.old, connect_timeout_ms=500, stores={"old": {"port": port}})
        try:
            t0 = time.monotonic()
            try:
                tgt.connect().close()
                raise h.CheckFailed("connected through a store that never answers")
            except psycopg2.OperationalError as e:
                message = str(e).strip()
            took = time.monotonic() - t0
            ctx.log(f"{took:.2f} s: {message}")
            h.check(0.4 <= took <= 3.0, f"connect timeout took {took:.2f} s (connect_timeout_ms=500)")
            h.check("old store" in message and "timed out" in message,
                    f"error does not say the old store timed out: {message!r}")
            h.check(tgt.alive(), "proxy died on a store connect timeout")
        finally:
            tgt.cleanup()
    finally:
        stop.set()
        t.join(2)
        for c in accepted:
            c.close()
        silent.close()


def check_store_over_unix_socket(ctx):
    """stores.old.host as a socket directory (libpq's convention) reaches the store over AF_UNIX."""
    tgt = ctx.target(ctx.old, stores={"old": {"host": ctx.old.tmp}})
    try:
        conn = tgt.connect() if tgt.is_proxy else psycopg2.connect(
            host=ctx.old.tmp, port=ctx.old.port, user="postgres", dbname="postgres")
        try:
            with conn.cursor() as cur:
                # client_addr is NULL exactly when the store sees a Unix-socket connection.
                cur.execute("SELECT client_addr IS NULL, 42 FROM pg_stat_activity "
                            "WHERE pid = pg_backend_pid()")
                h.check_eq(cur.fetchone(), (True, 42), "(connected over a Unix socket, result)")
        finally:
            conn.close()
    finally:
        tgt.cleanup()


def _psql_as_unprivileged(directory, port, sql):
    """psql over the Unix socket in `directory`, run as the postgres OS user when we are root, so
    the socket file's permissions are what an ordinary application user meets."""
    cmd = ["psql", "-X", "-h", directory, "-p", str(port), "-U", "postgres", "-d", "postgres", "-Atc", sql]
    if h.IS_ROOT:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def check_listen_on_unix_socket(ctx):
    """listen: DIR:PORT serves libpq's host=DIR port=PORT: any OS user may connect (authentication
    decides), a socket left by a killed proxy is taken over, a live one is not, and a clean stop
    removes the file."""
    if ctx.direct:
        # PostgreSQL's own socket, reached the same way by an unprivileged user.
        rc, out, err = _psql_as_unprivileged(ctx.old.tmp, ctx.old.port, "SELECT 7")
        h.check_eq((rc, out), (0, "7"), f"psql over PostgreSQL's socket (stderr: {err})")
        return
    directory = h.make_tmpdir("unix-listen")
    os.chmod(directory, 0o755)   # mkdtemp's 0700 would keep the postgres user out
    tgt = ctx.target(ctx.old, unix_dir=directory)
    path = h.unix_socket_path(directory, tgt.port)
    relaunched = None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        h.check_eq(oct(mode), oct(0o777), f"permissions of {path}")
        rc, out, err = _psql_as_unprivileged(directory, tgt.port, "SELECT 7")
        h.check_eq((rc, out), (0, "7"), f"psql as an unprivileged user over {path} (stderr: {err})")

        # A second instance on the same path must refuse, and leave the first one serving.
        second = subprocess.run([ctx.binary, "proxy", "--config", tgt.config_path], capture_output=True,
                                text=True, timeout=30)
        h.check(second.returncode != 0, "a second proxy started on a socket that is in use")
        h.check("another server is already listening" in second.stderr,
                f"the second proxy's error names the cause: {second.stderr.strip()[-500:]}")
        ctx.log(f"second instance refused: {second.stderr.strip().splitlines()[-1]}")
        rc, out, err = _psql_as_unprivileged(directory, tgt.port, "SELECT 8")
        h.check_eq((rc, out), (0, "8"), f"the first proxy still serves (stderr: {err})")

        # Killed without cleanup, the file stays; the next start takes it over.
        tgt.proc.kill()
        tgt.proc.wait()
        h.check(os.path.exists(path), "SIGKILL left no socket file (the stale case was not exercised)")
        log = open(os.path.join(directory, "relaunch.log"), "wb")
        relaunched = subprocess.Popen([ctx.binary, "proxy", "--config", tgt.config_path],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        h.check(h.wait_port(tgt.port, 15, relaunched, unix_dir=directory),
                f"restart over the stale socket failed: {h.read_text(log.name)[-1500:]}")
        rc, out, err = _psql_as_unprivileged(directory, tgt.port, "SELECT 9")
        h.check_eq((rc, out), (0, "9"), f"psql after the restart (stderr: {err})")

        relaunched.send_signal(signal.SIGTERM)
        h.check_eq(relaunched.wait(15), 0, "exit code after SIGTERM")
        h.check(not os.path.exists(path), f"{path} still exists after a clean stop")

        # A path that is not a socket is never removed.
        with open(path, "w") as f:
            f.write("not a socket\n")
        blocked = subprocess.run([ctx.binary, "proxy", "--config", tgt.config_path], capture_output=True,
                                 text=True, timeout=30)
        h.check(blocked.returncode != 0 and "is not a socket" in blocked.stderr,
                f"a regular file at the socket path: rc {blocked.returncode}, {blocked.stderr.strip()[-500:]}")
        h.check_eq(open(path).read(), "not a socket\n", "the regular file is untouched")
    finally:
        if relaunched is not None and relaunched.poll() is None:
            relaunched.kill()
            relaunched.wait()
        tgt.cleanup()
        h.remove_tmpdir(directory)


CHECKS = [check_function_call, check_store_over_unix_socket, check_listen_on_unix_socket, check_ssl_and_gss_requests_answered_n, check_unknown_message_type,
          check_oversized_message, check_oversized_startup_packet_never_reaches_store,
          check_store_connect_timeout]

if __name__ == "__main__":
    h.run(CHECKS, setup)
