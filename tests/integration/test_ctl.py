#!/usr/bin/env python3
"""cutover ctl against a real proxy's admin API: flags, set, rollback, status, --json, exit codes.

The proxy runs in front of old and new with `admin: {listen, token_env: CUTOVER_ADMIN_TOKEN}`.
Every check runs the real `cutover ctl` binary and compares what it prints with what the admin
API answers to a plain HTTP client (urllib), and what a change did with GET /flags and /metrics.

A route the proxy does not serve yet (the server answers 404, or 405 when the path exists for
other methods: PUT /flags next to GET /flags) makes its check print "SKIP: endpoint not built yet";
any other failure fails.

`--direct`: there is no proxy, so ctl talks to a stand-in admin API in this script (the documented
shapes of DESIGN.md "Admin HTTP API"), which proves the checks themselves right.
"""

import json
import os
import pwd
import re
import secrets
import subprocess
import sys
import threading
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN_ENV = "CUTOVER_ADMIN_TOKEN"
NOT_BUILT = (404, 405)  # AdminServer: unknown path 404; known path, other method 405


# ---------------------------------------------------------------------------------------------
# Running ctl and talking to the admin API directly


class Ctl:
    """Runs `cutover ctl` (or, with --direct, the same binary) against one admin API."""

    def __init__(self, binary, admin_url, token):
        self.binary, self.admin_url, self.token = binary, admin_url, token

    def run(self, *args, token_env=True, admin=True, timeout=60):
        """(exit code, stdout, stderr). The token reaches ctl through $CUTOVER_ADMIN_TOKEN unless
        token_env is False (the variable is then removed); --admin is added unless admin is
        False."""
        env = dict(os.environ)
        env.pop(TOKEN_ENV, None)
        if token_env:
            env[TOKEN_ENV] = self.token
        argv = [self.binary, "ctl"] + (["--admin", self.admin_url] if admin else []) + list(args)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args, **kw):
        """stdout of a run that must exit 0."""
        rc, out, err = self.run(*args, **kw)
        h.check(rc == 0, f"cutover ctl {' '.join(args)}: exit {rc}\nstdout: {out}\nstderr: {err}")
        h.check(err == "", f"cutover ctl {' '.join(args)}: exit 0 but stderr: {err!r}")
        return out


def api(port, method, path, body=None, token=None):
    return h.admin_request(port, method, path, body=body, token=token)


def get_flags(ctx):
    status, body = api(ctx.admin_port, "GET", "/flags")
    h.check_eq(status, 200, f"GET /flags status (body {body!r})")
    return body


def metric(ctx, name):
    """The value of an unlabelled metric on GET /metrics, or None when it is not exported (the
    --direct stand-in exports nothing)."""
    if ctx.direct:
        return None
    with urllib.request.urlopen(f"http://127.0.0.1:{ctx.admin_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(rf"^{re.escape(name)}\s+(\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def skip_if_not_built(ctx, rc, err, method, path):
    """True (after printing SKIP) when ctl's failure is the server not serving method+path, as a
    direct request confirms; False when ctl did not fail that way (the caller then checks)."""
    m = re.search(rf"cutover ctl: {method} {re.escape(path)} refused \((\d+)\)", err)
    if rc != 1 or not m or int(m.group(1)) not in NOT_BUILT:
        return False
    # A route's absence is independent of the body: a GET of it, or the method with an empty
    # JSON object would be answered the same. Only GET is probed, so nothing is changed.
    if method == "GET":
        status, _ = api(ctx.admin_port, "GET", path)
        h.check(status in NOT_BUILT, f"ctl saw {m.group(1)} for GET {path} but a direct GET got {status}")
    print(f"  [{ctx.mode}] SKIP: endpoint not built yet: {method} {path} "
          f"(the server answers {m.group(1)})", flush=True)
    return True


def parse_readable(text):
    """ctl's readable output as nested dicts of strings ("key: value", children indented)."""
    root, stack = {}, [(-1, None)]
    stack[0] = (-1, root)
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        key, sep, value = line.strip().partition(":")
        h.check(sep, f"readable output line without 'key:': {line!r}")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value == "":
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            parent[key] = value.strip()
    return root


def as_text(value):
    """How ctl prints a JSON scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value)


def check_readable_matches(readable, body, what):
    """Every scalar of the JSON answer appears, with its value, in ctl's readable output."""
    for key, value in body.items():
        h.check(key in readable, f"{what}: '{key}' missing from ctl's output {readable!r}")
        if isinstance(value, dict):
            if value:
                check_readable_matches(readable[key], value, f"{what}.{key}")
        elif not isinstance(value, list):
            h.check_eq(readable[key], as_text(value), f"{what}.{key} as printed")


# ---------------------------------------------------------------------------------------------
# --direct: a stand-in admin API with the documented shapes


class FakeAdmin:
    """GET /healthz, GET/PUT /flags, POST /rollback, GET /status as DESIGN.md describes them."""

    def __init__(self, port, token, old):
        self.token, self.old, self.lock = token, old, threading.Lock()
        self.flags = {"version": 1, "writes": "old", "mirror": "sync", "reads_new_percent": 0,
                      "shadow_percent": 0, "sticky": "session", "tables": {},
                      "changed_at": self._now(), "changed_by": "config", "reason": ""}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self):
                if self.command in ("PUT", "POST") and \
                        self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return 401, {"error": "missing or wrong bearer token (Authorization: Bearer <token>)"}
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                route = (self.command, self.path)
                with fake.lock:
                    if route == ("GET", "/healthz"):
                        return 200, {"status": "ok"}
                    if route == ("GET", "/flags"):
                        return 200, fake.flags
                    if route == ("PUT", "/flags"):
                        return fake.put_flags(json.loads(body), self.client_address)
                    if route == ("POST", "/rollback"):
                        return fake.rollback(json.loads(body), self.client_address)
                    if route == ("GET", "/status"):
                        return 200, {"flags": fake.flags, "stores": {"old": {"up": True}},
                                     "sessions": fake.sessions(), "divergences": 0, "mismatches": 0}
                return 404, {"error": f"no such endpoint: {self.path}"}

            def do_GET(self):
                self._answer(*self._route())

            do_PUT = do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        h._register(self)

    @staticmethod
    def _now():
        return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _publish(self, flags, who, reason):
        flags.update(version=self.flags["version"] + 1, changed_at=self._now(),
                     changed_by=f"admin {who[0]}:{who[1]}", reason=reason)
        self.flags = flags

    def put_flags(self, body, who):
        flags, problems = json.loads(json.dumps(self.flags)), []
        for key, value in body.items():
            if key in ("reads_new_percent", "shadow_percent"):
                if not isinstance(value, int) or not 0 <= value <= 100:
                    problems.append(f"{key}: must be an integer from 0 to 100")
                flags[key] = value
            elif key in ("writes", "mirror", "sticky"):
                flags[key] = value
            elif key == "tables":
                for table, override in value.items():
                    if override is None:
                        flags["tables"].pop(table, None)
                        continue
                    merged = dict(flags["tables"].get(table, {}))
                    for k, v in override.items():
                        if v is None:
                            merged.pop(k, None)
                        else:
                            merged[k] = v
                    if merged:
                        flags["tables"][table] = merged
                    else:
                        flags["tables"].pop(table, None)
            elif key == "version":
                if value != self.flags["version"]:
                    return 409, {"error": f"version {value} is not the current {self.flags['version']}"}
            elif key not in ("reason", "changed_at", "changed_by"):
                problems.append(f"{key}: unknown key")
        if problems:
            return 400, {"error": "invalid flags: " + "; ".join(problems)}
        self._publish(flags, who, body.get("reason", ""))
        return 200, self.flags

    def rollback(self, body, who):
        if self.flags["writes"] == "new" and not body.get("force"):
            return 409, {"error": "writes is new: past the point of no return; pass force to roll back"}
        flags = json.loads(json.dumps(self.flags))
        flags["reads_new_percent"] = 0
        flags["writes"] = {"new": "dual", "dual-new": "dual"}.get(flags["writes"], flags["writes"])
        for override in flags["tables"].values():
            override.pop("reads_new_percent", None)
        flags["tables"] = {t: o for t, o in flags["tables"].items() if o}
        self._publish(flags, who, body.get("reason", ""))
        return 200, {"flags": self.flags, "workers": 2, "applied_ms": 0.05}

    def sessions(self):
        rows = self.old.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                             "'client backend' AND pid <> pg_backend_pid();")
        return int(rows.strip())

    def cleanup(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------


def setup(ctx):
    old = ctx.cluster("old")
    admin_port = h.free_port()
    token = "ctl-it-" + secrets.token_hex(12)
    fixtures = {"old": old, "admin_port": admin_port, "token": token}
    if ctx.direct:
        FakeAdmin(admin_port, token, old)
        fixtures["tgt"] = h.DirectTarget(old)
        binary = ctx.binary or os.environ.get("CUTOVER_BIN")
        if not binary:
            raise h.HarnessError("--direct still runs `cutover ctl`: pass --cutover PATH or set CUTOVER_BIN")
    else:
        new = ctx.cluster("new")
        journal_dir = os.path.join(h.TmpDir("ctl-journal").path, "journal")
        os.makedirs(journal_dir)
        fixtures["tgt"] = ctx.target(old, new=new, env={TOKEN_ENV: token},
                                     flags={"writes": "old", "reads_new_percent": 0},
                                     journal_dir=journal_dir,
                                     admin={"listen": f"127.0.0.1:{admin_port}", "token_env": TOKEN_ENV})
        fixtures["new"] = new
        binary = ctx.binary
    if not h.wait_port(admin_port, 10):
        raise h.HarnessError(f"admin API not listening on 127.0.0.1:{admin_port}")
    fixtures["ctl"] = Ctl(binary, f"http://127.0.0.1:{admin_port}", token)
    return fixtures


def check_healthz(ctx):
    status, body = api(ctx.admin_port, "GET", "/healthz")
    h.check_eq((status, body), (200, {"status": "ok"}), "GET /healthz")


def check_flags_readable(ctx):
    body = get_flags(ctx)
    out = ctx.ctl.ok("flags")
    readable = parse_readable(out)
    check_readable_matches(readable, body, "flags")
    h.check(out.startswith(f"version: {body['version']}\n"), f"flags output starts with the version:\n{out}")
    h.check_eq(readable["writes"], "old", "writes as configured")
    h.check_eq(readable["reads_new_percent"], "0", "reads_new_percent as configured")
    # Options after the command work the same.
    rc, out_after, err = ctx.ctl.run("flags", "--admin", ctx.ctl.admin_url, admin=False)
    h.check_eq((rc, err, out_after), (0, "", out), "flags with --admin after the command")


def check_flags_json(ctx):
    body = get_flags(ctx)
    out = ctx.ctl.ok("--json", "flags")
    try:
        printed = json.loads(out)
    except ValueError as e:
        raise h.CheckFailed(f"ctl --json flags printed something that is not JSON ({e}): {out!r}")
    h.check_eq(printed, body, "ctl --json flags vs GET /flags")
    h.check_eq(json.loads(ctx.ctl.ok("flags", "--json")), body, "ctl flags --json")


def check_wrong_or_missing_token(ctx):
    before = get_flags(ctx)
    rc, out, err = ctx.ctl.run("set", "reads_new_percent=5", "--token", "not-the-token")
    h.check_eq(rc, 1, f"exit code with a wrong token (stderr {err!r})")
    h.check_eq(out, "", "stdout with a wrong token")
    h.check("PUT /flags refused (401)" in err, f"401 named: {err!r}")
    h.check("the admin token (from --token) is wrong" in err, f"wrong token said: {err!r}")
    h.check("admin.token_env" in err and "admin.token_file" in err, f"where tokens come from: {err!r}")

    rc, out, err = ctx.ctl.run("rollback", token_env=False)
    h.check_eq(rc, 1, f"exit code without a token (stderr {err!r})")
    h.check("POST /rollback refused (401)" in err, f"401 named: {err!r}")
    h.check("no admin token given" in err and TOKEN_ENV in err and "--token-file" in err,
            f"missing token said, with where tokens come from: {err!r}")
    h.check_eq(get_flags(ctx), before, "flags after refused changes")


def check_unreachable(ctx):
    port = h.free_port()
    url = f"http://127.0.0.1:{port}"
    rc, out, err = ctx.ctl.run("--admin", url, "flags", admin=False)
    h.check_eq(rc, 3, f"exit code with nothing on {url} (stderr {err!r})")
    h.check_eq(out, "", "stdout when unreachable")
    h.check(f"cannot reach the admin API at {url}" in err and "admin.listen" in err,
            f"unreachable message names the URL and admin.listen: {err!r}")
    # https:// to this plain-HTTP admin API (no admin.tls): the handshake fails, ctl says to use http.
    rc, _, err = ctx.ctl.run("--admin", f"https://127.0.0.1:{ctx.admin_port}", "status", "--insecure", admin=False)
    h.check_eq(rc, 3, f"exit code for https to a plain port (stderr {err!r})")
    h.check("does not speak TLS" in err and f"use http://127.0.0.1:{ctx.admin_port}" in err,
            f"https to a plain port says to use http: {err!r}")


def check_usage_errors(ctx):
    before = get_flags(ctx)
    for args, want in [(("launch",), "unknown command 'launch'"),
                       (("flags", "--colour"), "unknown option '--colour'"),
                       (("set", "reads_new_percent=ten"), "reads_new_percent needs an integer"),
                       (("set", "writes"), "'writes' is not KEY=VALUE"),
                       (("set",), "set needs at least one KEY=VALUE")]:
        rc, out, err = ctx.ctl.run(*args)
        h.check_eq(rc, 2, f"exit code of ctl {' '.join(args)} (stderr {err!r})")
        h.check(want in err, f"ctl {' '.join(args)}: {want!r} not in {err!r}")
    h.check_eq(get_flags(ctx), before, "flags after usage errors (nothing was sent)")


def check_set(ctx):
    before = get_flags(ctx)
    rc, out, err = ctx.ctl.run("set", "writes=dual", "reads_new_percent=10",
                               "tables.orders.reads_new_percent=50", "--reason", "ramp to 10%")
    if skip_if_not_built(ctx, rc, err, "PUT", "/flags"):
        return
    h.check_eq((rc, err), (0, ""), f"ctl set exit code and stderr (stdout {out!r})")
    after = get_flags(ctx)
    h.check_eq(after["version"], before["version"] + 1, "version after one set")
    h.check_eq((after["writes"], after["reads_new_percent"]), ("dual", 10), "writes, reads_new_percent")
    h.check_eq(after["tables"].get("orders"), {"reads_new_percent": 50}, "tables.orders")
    h.check_eq(after.get("reason"), "ramp to 10%", "reason recorded")
    check_readable_matches(parse_readable(out), after, "set's output")
    gauge = metric(ctx, "cutover_flags_version")
    if gauge is not None:
        h.check_eq(gauge, after["version"], "cutover_flags_version after set")

    # An empty table value clears the override; the token now comes from --token-file.
    token_file = os.path.join(h.TmpDir("ctl-token").path, "token")
    with open(token_file, "w") as f:
        f.write(ctx.token + "\n")
    rc, out, err = ctx.ctl.run("set", "tables.orders.reads_new_percent=", "--token-file", token_file,
                               "--json", token_env=False)
    h.check_eq((rc, err), (0, ""), "ctl set tables.orders.reads_new_percent= (token file)")
    printed = json.loads(out)
    h.check_eq(printed, get_flags(ctx), "set --json prints the new snapshot")
    h.check("orders" not in printed["tables"], f"orders override cleared: {printed['tables']}")
    h.check_eq(printed["version"], before["version"] + 2, "version after two sets")
    user = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
    h.check_eq(printed.get("reason"), f"cutover ctl by {user}", "default reason")

    # The server's own validation: exit 1 with its message and status, flags unchanged.
    rc, out, err = ctx.ctl.run("set", "colour=red", "reads_new_percent=250")
    h.check_eq(rc, 1, f"exit code of a refused set (stderr {err!r})")
    h.check(re.search(r"cutover ctl: PUT /flags refused \(400\): invalid flags: .*colour", err),
            f"400 with the server's message: {err!r}")
    h.check_eq(get_flags(ctx)["version"], before["version"] + 2, "version after a refused set")


def check_rollback(ctx):
    rc, out, err = ctx.ctl.run("set", "writes=dual", "reads_new_percent=30")
    if rc == 1 and re.search(r"PUT /flags refused \((404|405)\)", err):
        ctx.log("PUT /flags not built: rolling back from the config's flags")
    else:
        h.check_eq((rc, err), (0, ""), f"set before rollback (stdout {out!r})")
    before = get_flags(ctx)
    rc, out, err = ctx.ctl.run("rollback", "--reason", "p99 doubled")
    if skip_if_not_built(ctx, rc, err, "POST", "/rollback"):
        return
    h.check_eq((rc, err), (0, ""), f"ctl rollback exit code and stderr (stdout {out!r})")
    after = get_flags(ctx)
    m = re.fullmatch(r"rolled back: flags v(\d+), reads_new_percent (\d+), writes ([\w-]+); "
                     r"applied by (\d+) workers? in [\d.]+ ms\n", out)
    h.check(m, f"rollback line: {out!r}")
    h.check_eq(int(m.group(1)), after["version"], "printed version")
    h.check_eq(after["version"], before["version"] + 1, "version after rollback")
    h.check_eq((m.group(2), after["reads_new_percent"]), ("0", 0), "reads_new_percent after rollback")
    h.check_eq(m.group(3), after["writes"], "printed writes")
    h.check(after["writes"] in ("old", "dual"), f"authority back on old: writes {after['writes']}")
    h.check_eq(after.get("reason"), "p99 doubled", "rollback reason recorded")
    h.check_eq(int(m.group(4)), 2, "workers that applied the rollback (config workers: 2)")
    gauge = metric(ctx, "cutover_reads_new_percent")
    if gauge is not None:
        h.check_eq(gauge, 0, "cutover_reads_new_percent after rollback")

    rc, out, err = ctx.ctl.run("--json", "rollback")
    h.check_eq((rc, err), (0, ""), "ctl --json rollback")
    answer = json.loads(out)
    h.check_eq(answer.get("flags"), get_flags(ctx), "rollback --json flags")

    # Past the point of no return a rollback needs --force (when this build routes writes: new).
    rc, out, err = ctx.ctl.run("set", "writes=new")
    if rc == 1 and "PUT /flags refused (409)" in err:
        ctx.log(f"writes=new not exercised, this build refuses it: {err.strip()}")
        return
    h.check_eq((rc, err), (0, ""), f"set writes=new (stdout {out!r})")
    rc, out, err = ctx.ctl.run("rollback")
    h.check_eq(rc, 1, f"rollback from writes new without --force (stderr {err!r})")
    h.check("POST /rollback refused (409)" in err, f"409 named: {err!r}")
    h.check_eq(get_flags(ctx)["writes"], "new", "writes after the refused rollback")
    rc, out, err = ctx.ctl.run("rollback", "--force")
    h.check_eq((rc, err), (0, ""), f"rollback --force (stdout {out!r})")
    h.check(get_flags(ctx)["writes"] in ("old", "dual"), "authority back on old after --force")


def check_status(ctx):
    conn = ctx.tgt.connect()  # one open session the status may count
    try:
        rc, out, err = ctx.ctl.run("status")
        if skip_if_not_built(ctx, rc, err, "GET", "/status"):
            return
        h.check_eq((rc, err), (0, ""), f"ctl status exit code and stderr (stdout {out!r})")
        status, body = api(ctx.admin_port, "GET", "/status")
        h.check_eq(status, 200, "GET /status")
        readable = parse_readable(out)
        for key, value in body.items():
            h.check(key in readable, f"status key '{key}' missing from ctl's output:\n{out}")
            if isinstance(value, dict) and key != "flags" and value:
                check_readable_matches(readable[key], value, f"status.{key}")
        if "flags" in body:
            h.check_eq(readable["flags"]["version"], str(get_flags(ctx)["version"]), "status flags version")
        if "sessions" in body:
            h.check(int(readable["sessions"]) >= 1, f"sessions with one open: {readable['sessions']}")
        if "stores" in body and "old" in body["stores"]:
            h.check_eq(readable["stores"]["old"].get("up"), "true", "old store up")
        printed = json.loads(ctx.ctl.ok("status", "--json"))
        h.check(isinstance(printed, dict) and set(printed) == set(body),
                f"status --json keys {sorted(printed)} vs GET /status {sorted(body)}")
    finally:
        conn.close()


CHECKS = [check_healthz, check_flags_readable, check_flags_json, check_wrong_or_missing_token,
          check_unreachable, check_usage_errors, check_set, check_rollback, check_status]

if __name__ == "__main__":
    h.run(CHECKS, setup)
