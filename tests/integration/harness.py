"""Integration harness for cutover: real PostgreSQL clusters, the real proxy binary, real clients.

Run test scripts with /usr/bin/python3 (the Debian interpreter that has psycopg2).

Every test script calls `main(checks, setup)`. In proxy mode a "target" is the cutover binary in
front of the old store; with `--direct` the target is the old store itself, so the same checks
prove the test is right independently of the proxy.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import re
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

PG_BIN = "/usr/lib/postgresql/15/bin"
KEEP_TMP = os.environ.get("CUTOVER_KEEP_TMP") == "1"
IS_ROOT = os.geteuid() == 0


class HarnessError(Exception):
    pass


class CheckFailed(AssertionError):
    pass


class StartupError(HarnessError):
    """The server answered the StartupMessage with an ErrorResponse; `fields` by code letter."""

    def __init__(self, fields):
        super().__init__(f"startup error: {fields}")
        self.fields = fields


def check(cond, why):
    if not cond:
        raise CheckFailed(why)


# Set by ctest in a -DCUTOVER_SANITIZE=ON build: ASan's redzones and its 256 MB quarantine of
# freed memory inflate RSS by design, so memory bounds are reported there, asserted elsewhere.
SANITIZED = os.environ.get("CUTOVER_SANITIZED") == "1"


def check_memory(cond, why):
    """check() for a bound on proxy memory; report-only in a sanitizer build."""
    if SANITIZED:
        if not cond:
            print(f"  (sanitizer build, memory bound not asserted) {why}", flush=True)
        return
    check(cond, why)


def check_eq(got, want, what):
    if got != want:
        raise CheckFailed(f"{what}: got {_short(got)!r}, want {_short(want)!r}")


def _short(v, limit=2000):
    if isinstance(v, (str, bytes)) and len(v) > limit:
        return v[:limit] + (b"..." if isinstance(v, bytes) else "...")
    return v


def require_tool(name, package):
    path = shutil.which(name) or (os.path.join(PG_BIN, name)
                                  if os.path.exists(os.path.join(PG_BIN, name)) else None)
    if not path:
        raise HarnessError(f"{name} not found: install the Debian package {package}")
    return path


def import_psycopg2():
    try:
        import psycopg2  # noqa: F401
        import psycopg2.extensions  # noqa: F401
        return psycopg2
    except ImportError:
        raise HarnessError("psycopg2 missing: install python3-psycopg2 and run with /usr/bin/python3")


# ---------------------------------------------------------------------------------------------
# Teardown: everything started is registered here and torn down on normal exit, exception,
# SIGINT and SIGTERM. Context managers tear down early; this is the safety net.

_resources: list = []
_resources_lock = threading.Lock()


def _register(res):
    with _resources_lock:
        _resources.append(res)


def cleanup_all():
    with _resources_lock:
        items = list(reversed(_resources))
        _resources.clear()
    for res in items:
        try:
            res.cleanup()
        except Exception as e:  # keep tearing down the rest
            print(f"harness: cleanup of {res!r} failed: {e}", file=sys.stderr)


def _on_signal(signum, _frame):
    # SystemExit is not swallowed by the `except Exception` of a check; atexit then cleans up.
    raise SystemExit(128 + signum)


atexit.register(cleanup_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def settled(read, timeout=15, period=0.5, stable_reads=3):
    """read()'s value once it has not changed for stable_reads periods in a row (the proxy's
    counters at rest: shadows and rechecks done), or its last value when timeout passes."""
    last, stable = None, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = read()
        stable = stable + 1 if now == last else 0
        if stable >= stable_reads:
            return now
        last = now
        time.sleep(period)
    return last


def read_text(path):
    """The whole file as text, or "" when it does not exist (yet)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _listen_port_range():
    """Ports below the kernel's ephemeral range: no outgoing client socket of a concurrent test
    (pgbench, 1000 idle sessions…) can be handed one of them between free_port() and bind()."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low = 10000
    return low, max(low + 1000, ephemeral_low - 1)


def free_port():
    """A port nothing listens on now, picked at random below the ephemeral range."""
    low, high = _listen_port_range()
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise HarnessError(f"no free port found in {low}-{high}")


def make_tmpdir(prefix):
    return tempfile.mkdtemp(prefix=f"cutover-it-{prefix}-")


def remove_tmpdir(path):
    if KEEP_TMP:
        print(f"harness: kept {path}", file=sys.stderr)
        return
    shutil.rmtree(path, ignore_errors=True)


class TmpDir:
    """A temporary directory removed with everything else at the end of the run."""

    def __init__(self, prefix):
        self.path = make_tmpdir(prefix)
        _register(self)

    def cleanup(self):
        remove_tmpdir(self.path)


def wait_port(port, timeout, proc=None, what="server", unix_dir=None):
    """Poll-connects 127.0.0.1:port (or, with unix_dir, the Unix socket unix_dir/.s.PGSQL.port)
    until it accepts. Returns False on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if unix_dir is None:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect(unix_socket_path(unix_dir, port))
                return True
        except OSError:
            time.sleep(0.05)
    return False


def unix_socket_path(directory, port):
    """The socket file libpq connects to for host=directory port=port."""
    return os.path.join(directory, f".s.PGSQL.{port}")


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


class RssSampler:
    """Samples VmRSS of a pid in a thread; `.peak` in KiB. Use as a context manager."""

    def __init__(self, pid, interval=0.02):
        self.pid, self.interval, self.peak, self.samples = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            v = rss_kib(self.pid) if self.pid else None
            if v is not None:
                self.peak = max(self.peak, v)
                self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# PostgreSQL clusters


def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--"] + cmd if IS_ROOT else cmd


class PgCluster:
    """A throwaway PostgreSQL 15 cluster on 127.0.0.1 and a free port.

    `hba` lines are placed before the default trust lines (first match wins), e.g.
    ["host all md5user 127.0.0.1/32 md5"]. Other keyword arguments become postgresql.conf
    settings (max_connections=1100, authentication_timeout="1s", ...).
    """

    def __init__(self, name, hba=(), start=True, **settings):
        if not os.path.exists(f"{PG_BIN}/initdb"):
            raise HarnessError(f"{PG_BIN}/initdb not found: install the Debian package postgresql-15")
        self.name = name
        self.tmp = make_tmpdir(f"pg-{name}")
        self.data = os.path.join(self.tmp, "data")
        self.logfile = os.path.join(self.tmp, "postgres.log")
        self.port = free_port()
        self.running = False
        _register(self)
        if IS_ROOT:
            shutil.chown(self.tmp, "postgres", "postgres")
        self._run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.data, "-N", "-A", "trust",
                                "-U", "postgres", "--no-instructions", "-E", "UTF8",
                                "--locale=C"]), "initdb")
        conf = {
            "listen_addresses": "127.0.0.1",
            "port": self.port,
            "unix_socket_directories": self.tmp,
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "log_connections": "on",
            "log_disconnections": "on",
            "lc_messages": "C",
        }
        conf.update(settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# cutover integration harness\n")
            for k, v in conf.items():
                f.write(f"{k} = '{v}'\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            for line in hba:
                f.write(line + "\n")
            f.write("local all all trust\n")
            f.write("host all all 127.0.0.1/32 trust\n")
        if start:
            self.start()

    def __repr__(self):
        return f"PgCluster({self.name}:{self.port})"

    def _run(self, cmd, what, check=True):
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if check and p.returncode != 0:
            raise HarnessError(f"{what} for cluster {self.name} failed ({p.returncode}):\n"
                               f"{p.stdout}\n--- server log ---\n{self.log_text()[-4000:]}")
        return p

    def start(self):
        self._run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-l", self.logfile,
                                "-w", "-t", "60", "start"]), "pg_ctl start")
        self.running = True

    def stop(self, mode="fast"):
        if not self.running:
            return
        self._run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", mode, "-w",
                                "-t", "60", "stop"]), "pg_ctl stop", check=False)
        self.running = False

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (FileNotFoundError, ValueError):
            return None

    def cleanup(self):
        if self.running:
            self.stop(mode="immediate")
        remove_tmpdir(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def log_text(self):
        return read_text(self.logfile)

    def endpoint(self):
        return Endpoint("127.0.0.1", self.port)

    def dsn(self, user="postgres", db="postgres", **kw):
        return self.endpoint().dsn(user, db, **kw)

    def connect(self, user="postgres", db="postgres", **kw):
        return self.endpoint().connect(user, db, **kw)

    def psql(self, sql, user="postgres", db="postgres"):
        """Runs SQL with ON_ERROR_STOP; returns unaligned tuples-only stdout."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db,
                            "-f", "-"], input=sql, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise HarnessError(f"psql on {self.name} failed: {p.stderr}")
        return p.stdout


class Endpoint:
    """Where a client connects (a cluster or a proxy), plus optional fixed credentials."""

    def __init__(self, host, port, user=None, db=None, password=None):
        self.host, self.port = host, port
        self.fixed_user, self.fixed_db, self.password = user, db, password

    def dsn(self, user="postgres", db="postgres", **kw):
        parts = {"host": self.host, "port": self.port, "user": self.fixed_user or user,
                 "dbname": self.fixed_db or db, "connect_timeout": 10}
        if self.password is not None:
            parts["password"] = self.password
        parts.update(kw)
        return " ".join(f"{k}={_dsn_quote(v)}" for k, v in parts.items())

    def connect(self, user="postgres", db="postgres", **kw):
        psycopg2 = import_psycopg2()
        return psycopg2.connect(self.dsn(user, db, **kw))

    def psql_args(self, user="postgres", db="postgres"):
        """argv prefix for psql plus the env it needs (password)."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env.pop("PGSERVICE", None)
        return (["psql", "-X", "-h", self.host, "-p", str(self.port),
                 "-U", self.fixed_user or user, "-d", self.fixed_db or db], env)


def _dsn_quote(v):
    s = str(v)
    if s and all(c not in s for c in " '\\"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---------------------------------------------------------------------------------------------
# The proxy


def to_yaml(obj, indent=0):
    pad = "  " * indent
    lines = []
    for k, v in obj.items():
        if v is None:
            continue
        if isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(to_yaml(v, indent + 1))
        else:
            lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    return "\n".join(l for l in lines if l)


def _yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))  # a JSON string is a valid double-quoted YAML scalar


def deep_merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def store_config(cluster):
    return {"host": "127.0.0.1", "port": cluster.port, "sslmode": "disable"}


class Proxy:
    """Runs `cutover proxy --config FILE` and waits until its port accepts connections.

    Keyword overrides are deep-merged into the generated config, e.g.
    Proxy(bin, old=c, max_client_connections=5, stores={"old": {"user": "u"}}).
    `env` adds environment variables (for password_env).
    """

    def __init__(self, binary, old, new=None, env=None, start_timeout=10.0, unix_dir=None, port=None, **overrides):
        self.binary = binary
        self.tmp = make_tmpdir("proxy")
        self.port = port or free_port()   # port: a restart on the port of a proxy that is gone
        self.unix_dir = unix_dir   # listen on unix_dir/.s.PGSQL.port instead of 127.0.0.1:port
        self.proc = None
        _register(self)
        stores = {"old": store_config(old)}
        if new is not None:
            stores["new"] = store_config(new)
        config = {
            "listen": f"{unix_dir or '127.0.0.1'}:{self.port}",
            "workers": 2,
            "max_client_connections": 1000,
            "stores": stores,
            "auth": {"method": "trust"},
            "flags": {"state_file": os.path.join(self.tmp, "flags.json"), "writes": "old"},
            "login_timeout_ms": 10000,
            # Generous: a loaded 2-core CI machine can take seconds to fork a store backend.
            "connect_timeout_ms": 10000,
            "shutdown_timeout_ms": 3000,
            "log_level": "info",
        }
        self.config = deep_merge(config, overrides)
        self.config_path = os.path.join(self.tmp, "cutover.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(self.config) + "\n")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen([binary, "proxy", "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=full_env)
        if not wait_port(self.port, start_timeout, self.proc, unix_dir=unix_dir):
            rc = self.proc.poll()
            state = f"exited with {rc}" if rc is not None else f"not accepting after {start_timeout}s"
            text = self.stderr_text()
            self.cleanup()
            raise HarnessError(f"proxy {state} on port {self.port}; config:\n"
                               f"{to_yaml(self.config)}\n--- proxy stderr ---\n{text[-6000:]}")

    def __repr__(self):
        return f"Proxy(:{self.port})"

    @property
    def pid(self):
        return self.proc.pid

    def endpoint(self):
        return Endpoint(self.unix_dir or "127.0.0.1", self.port)

    def dsn(self, user="postgres", db="postgres", **kw):
        return self.endpoint().dsn(user, db, **kw)

    def connect(self, user="postgres", db="postgres", **kw):
        return self.endpoint().connect(user, db, **kw)

    def psql_args(self, user="postgres", db="postgres"):
        return self.endpoint().psql_args(user, db)

    def rss_kib(self):
        return rss_kib(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None

    def send_signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the proxy and returns its exit code; kills it and raises on timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.proc.kill()
            self.proc.wait()
            raise HarnessError(f"proxy did not exit within {timeout}s of signal {sig}; "
                               f"stderr tail:\n{self.stderr_text()[-3000:]}")
        return rc

    def stderr_text(self):
        return read_text(self.stderr_path)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(Exception):
            self._stderr.close()
        report = sanitizer_report(self.stderr_text())
        if report:
            SANITIZER_REPORTS.append(f"{self!r}:\n{report}")
        remove_tmpdir(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


# Sanitizer findings in any proxy's stderr fail the test run (see main()), even when the
# finding did not abort the proxy (UBSan without halt, LeakSanitizer at exit).
SANITIZER_REPORTS = []
_SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer")


# ---------------------------------------------------------------------------------------------
# The admin API: Prometheus metrics and JSON endpoints

_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape of GET /metrics, parsed from the Prometheus text format."""

    def __init__(self, port, timeout=5.0):
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    check_eq(r.status, 200, f"GET {url} status")
                    self.text = r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError) as e:
                if time.monotonic() > deadline:
                    raise CheckFailed(f"GET {url}: {e}")
                time.sleep(0.1)
        self.samples = []
        for line in self.text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = _SAMPLE.match(line)
            if m:
                labels = dict(_LABEL.findall(m.group(2) or ""))
                self.samples.append((m.group(1), labels, float(m.group(3))))

    def get(self, name, **labels):
        """Sum over the series of `name` whose labels include `labels`; fails if the metric is
        not exported at all (0 when it is, but no series matches)."""
        series = [(l, v) for n, l, v in self.samples if n == name]
        check(series, f"metric {name} missing from /metrics")
        return sum(v for l, v in series if all(l.get(k) == w for k, w in labels.items()))

    def since(self, earlier, name, **labels):
        """How much `name` (summed as get() does) grew from the scrape `earlier` to this one."""
        return self.get(name, **labels) - earlier.get(name, **labels)



def admin_request(port, method, path, body=None, token=None, timeout=30.0, url=None, context=None):
    """(status, parsed JSON body or raw text) of one admin API call; never raises on 4xx/5xx.
    `url` (e.g. "https://127.0.0.1:PORT") replaces the plain-HTTP address of `port`; `context`
    is the ssl.SSLContext for https."""
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        data = data.encode() if isinstance(data, str) else data
    base = url if url is not None else f"http://127.0.0.1:{port}"
    req = urllib.request.Request(f"{base}{path}", data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def sanitizer_report(text):
    for marker in _SANITIZER_MARKERS:
        at = text.find(marker)
        if at >= 0:
            return text[max(0, at - 200):at + 4000]
    return ""


class DirectTarget:
    """`--direct` stand-in for Proxy: clients go straight to the old store.

    It honours stores.old.user/database/password_env/password_file of the overrides, so a check
    written for a proxy that logs in with fixed credentials behaves the same directly.
    """

    is_proxy = False

    def __init__(self, old, env=None, **overrides):
        self.cluster = old
        self.port = old.port
        store = overrides.get("stores", {}).get("old", {})
        password = None
        if store.get("password_env"):
            password = (env or {}).get(store["password_env"], os.environ.get(store["password_env"]))
        elif store.get("password_file"):
            with open(store["password_file"]) as f:
                password = f.read().strip()
        self._ep = Endpoint("127.0.0.1", old.port, store.get("user"), store.get("database"),
                            password)
        self.config = overrides

    def __repr__(self):
        return f"DirectTarget({self.cluster!r})"

    @property
    def pid(self):
        return self.cluster.postmaster_pid()

    def endpoint(self):
        return self._ep

    def dsn(self, user="postgres", db="postgres", **kw):
        return self._ep.dsn(user, db, **kw)

    def connect(self, user="postgres", db="postgres", **kw):
        return self._ep.connect(user, db, **kw)

    def psql_args(self, user="postgres", db="postgres"):
        return self._ep.psql_args(user, db)

    def rss_kib(self):
        return None

    def stderr_text(self):
        return self.cluster.log_text()

    def cleanup(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


Proxy.is_proxy = True


# ---------------------------------------------------------------------------------------------
# Raw wire helpers (for checks a driver cannot express)

PROTOCOL_V3 = 196608
CANCEL_REQUEST_CODE = 80877102


def startup_packet(user, database, **params):
    body = struct.pack("!i", PROTOCOL_V3)
    for k, v in {"user": user, "database": database, **params}.items():
        body += k.encode() + b"\0" + str(v).encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def cancel_packet(pid, secret):
    return struct.pack("!iiii", 16, CANCEL_REQUEST_CODE, pid, secret)


def read_message(sock):
    """One backend message as (type byte, body), or None on EOF."""
    head = _recv_exact(sock, 5)
    if head is None:
        return None
    (length,) = struct.unpack("!i", head[1:5])
    body = _recv_exact(sock, length - 4)
    if body is None:
        return None
    return head[:1], body


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def raw_login(port, user="postgres", database="postgres", timeout=10.0, **params):
    """Opens a socket and completes a trust startup; returns (sock, backend_key, params).
    Keyword `params` are added to the startup packet (e.g. replication="database").

    Raises HarnessError on ErrorResponse or EOF. The socket stays open and idle.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(startup_packet(user, database, **params))
    params, key = {}, None
    while True:
        msg = read_message(sock)
        if msg is None:
            sock.close()
            raise HarnessError("connection closed during startup")
        kind, body = msg
        if kind == b"E":
            sock.close()
            raise StartupError(error_fields(body))
        if kind == b"R":
            (code,) = struct.unpack("!i", body[:4])
            if code != 0:
                sock.close()
                raise HarnessError(f"server asked for authentication code {code}")
        elif kind == b"K":
            key = struct.unpack("!ii", body)
        elif kind == b"S":
            k, v, _ = body.split(b"\0", 2)
            params[k.decode()] = v.decode()
        elif kind == b"Z":
            return sock, key, params


def error_fields(body):
    out = {}
    for field in body.split(b"\0"):
        if field:
            out[chr(field[0])] = field[1:].decode(errors="replace")
    return out


# ---------------------------------------------------------------------------------------------
# Runner


class Context:
    def __init__(self, args):
        self.direct = args.direct
        self.binary = args.cutover
        self.verbose = args.verbose
        self.fixtures = {}

    @property
    def mode(self):
        return "direct" if self.direct else "proxy"

    def cluster(self, name, **settings):
        return PgCluster(name, **settings)

    def target(self, old, new=None, env=None, **overrides):
        """A Proxy in front of `old`, or with --direct the old store itself."""
        if self.direct:
            return DirectTarget(old, env=env, **overrides)
        return Proxy(self.binary, old=old, new=new, env=env, **overrides)

    def log(self, msg):
        print(f"  [{self.mode}] {msg}", flush=True)

    def __getattr__(self, name):
        try:
            return self.__dict__["fixtures"][name]
        except KeyError:
            raise AttributeError(name)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=(sys.modules["__main__"].__doc__ or "").strip())
    ap.add_argument("--cutover", default=os.environ.get("CUTOVER_BIN"),
                    help="path of the cutover binary (default: $CUTOVER_BIN)")
    ap.add_argument("--direct", action="store_true",
                    help="run the checks against PostgreSQL directly, without the proxy")
    ap.add_argument("-k", dest="only", action="append", default=[],
                    help="run only checks whose name contains this (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks")
    return ap.parse_args(argv)


def main(checks, setup=None, argv=None):
    """Runs named checks; prints `ok <name>` / `FAIL <name>: <why>`; exits 1 if any failed.

    `setup(ctx)` may return a dict of fixtures, reachable as attributes of ctx in checks.
    A check is a function taking ctx; its name is the function name without `check_`.
    """
    args = parse_args(argv)
    ctx = Context(args)
    failed = 0
    try:
        if not args.direct:
            if not args.cutover:
                print("FAIL setup: no proxy binary: pass --cutover PATH, set CUTOVER_BIN, "
                      "or use --direct")
                return 1
            if not os.access(args.cutover, os.X_OK):
                print(f"FAIL setup: {args.cutover} is not an executable file")
                return 1
        try:
            ctx.fixtures.update(setup(ctx) or {} if setup else {})
        except Exception as e:
            print(f"FAIL setup: {e}")
            if args.verbose:
                traceback.print_exc()
            return 1
        for fn in checks:
            name = fn.__name__.removeprefix("check_")
            if args.only and not any(o in name for o in args.only):
                continue
            t0 = time.monotonic()
            try:
                fn(ctx)
                print(f"ok {name} ({time.monotonic() - t0:.1f}s)", flush=True)
            except Exception as e:
                failed += 1
                why = str(e) or type(e).__name__
                print(f"FAIL {name}: {type(e).__name__}: {why}", flush=True)
                if args.verbose or not isinstance(e, CheckFailed):
                    traceback.print_exc(file=sys.stdout)
    finally:
        cleanup_all()
    for report in SANITIZER_REPORTS:
        print(f"FAIL sanitizer: the proxy reported a finding in {report}", flush=True)
    return 1 if failed or SANITIZER_REPORTS else 0


def run(checks, setup=None):
    sys.exit(main(checks, setup))


# ---------------------------------------------------------------------------------------------
# Client helpers shared by the tests


def fetch_all(cluster, sql, db="postgres"):
    """Every row of `sql` run on `cluster` directly (autocommit, its own connection)."""
    conn = cluster.connect(db=db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def run_psql(ep, script=None, command=None, user="postgres", db="postgres", extra=(),
             timeout=300):
    """Runs psql against an endpoint; returns (exit code, stdout+stderr merged).

    The script goes through stdin, so messages read `psql:<stdin>:N:` whatever the target.
    """
    argv, env = ep.psql_args(user, db)
    argv = argv + ["-v", "ON_ERROR_STOP=0"] + list(extra)
    argv += ["-c", command] if command is not None else ["-f", "-"]
    p = subprocess.run(argv, input=script or "", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout


def fresh_database(name, *clusters):
    """(Re)creates database `name` on every cluster so each way starts from the same state."""
    for c in clusters:
        c.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);\nCREATE DATABASE "{name}";')


def both_ways(ctx, fn):
    """Runs fn(endpoint) against the reference cluster and through the target; returns both."""
    return fn(ctx.ref.endpoint()), fn(ctx.tgt.endpoint())


def standard_setup(ctx, **target_overrides):
    """ref: a reference PostgreSQL the client talks to directly; old: the store behind the
    target; tgt: the proxy (or with --direct, old itself). Identical configs, so a client must
    see identical output from ref and from tgt."""
    ref = ctx.cluster("ref")
    old = ctx.cluster("old")
    tgt = ctx.target(old, new=ref, **target_overrides)
    return {"ref": ref, "old": old, "tgt": tgt}


def raw_query(sock, sql):
    """Sends a simple Query and reads up to ReadyForQuery; returns (rows, command tags, error
    fields or None)."""
    body = sql.encode() + b"\0"
    sock.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
    rows, tags, error = [], [], None
    while True:
        msg = read_message(sock)
        if msg is None:
            raise HarnessError("connection closed while waiting for ReadyForQuery")
        kind, body = msg
        if kind == b"D":
            (n,) = struct.unpack("!h", body[:2])
            pos, row = 2, []
            for _ in range(n):
                (length,) = struct.unpack("!i", body[pos:pos + 4])
                pos += 4
                if length < 0:
                    row.append(None)
                else:
                    row.append(body[pos:pos + length].decode())
                    pos += length
            rows.append(tuple(row))
        elif kind == b"C":
            tags.append(body.rstrip(b"\0").decode())
        elif kind == b"E":
            error = error_fields(body)
        elif kind == b"Z":
            return rows, tags, error


def send_cancel(port, pid, secret):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(cancel_packet(pid, secret))
        # The server answers a CancelRequest by closing the connection.
        with contextlib.suppress(OSError):
            s.recv(1)
