#!/usr/bin/env python3
"""The admin API over TLS (admin.tls): a real proxy with a throwaway CA and server certificate
(made with the openssl CLI, as test_front_door.py does), the real `cutover ctl` over https://, and
Python's urllib with an ssl context on that CA.

Checks: ctl flags/set/status/rollback with --cacert; without --cacert the certificate is not
trusted (exit 3, OpenSSL's reason); --insecure works and warns; GET /healthz 200 and PUT /flags
401 without a token through urllib; plain HTTP to the TLS port gets no HTTP answer while the proxy
keeps serving SQL and the API; unloadable certificate files stop the proxy at start-up with the
key and file named.

`--direct`: there is no proxy (and so no admin API): every check logs that it is skipped.
"""

import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_front_door import make_ca, make_server_cert  # noqa: E402

TOKEN_ENV = "CUTOVER_ADMIN_TOKEN"


def ctl(ctx, *args, admin=None, token=True):
    """(exit code, stdout, stderr) of `cutover ctl --admin URL ARGS`."""
    env = dict(os.environ)
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = ctx.token
    argv = [ctx.binary, "ctl", "--admin", admin or ctx.url] + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def api(ctx, method, path, body=None, token=None, context=None):
    """(status, parsed JSON or text) of one HTTPS call verified against the test CA."""
    if context is None:
        context = ssl.create_default_context(cafile=ctx.ca)
    return h.admin_request(None, method, path, body=body, token=token, url=ctx.url, context=context)


def get_flags(ctx):
    status, body = api(ctx, "GET", "/flags")
    h.check_eq(status, 200, f"GET /flags over TLS (body {body!r})")
    return body


def skipped(ctx, what):
    if ctx.direct:
        ctx.log(f"skipped (--direct, proxy only): {what}")
        return True
    return False


def setup(ctx):
    if ctx.direct:
        return {}
    h.require_tool("openssl", "openssl")
    tmp = h.TmpDir("admin-tls").path
    make_ca(tmp, "ca")
    cert, key = make_server_cert(tmp, "admin", "ca")
    make_ca(tmp, "other-ca")
    old, new = ctx.cluster("old"), ctx.cluster("new")
    journal_dir = os.path.join(tmp, "journal")
    os.makedirs(journal_dir)
    admin_port = h.free_port()
    token = "admin-tls-" + secrets.token_hex(12)
    proxy = ctx.target(old, new=new, env={TOKEN_ENV: token}, flags={"writes": "old", "reads_new_percent": 0},
                       journal_dir=journal_dir,
                       admin={"listen": f"127.0.0.1:{admin_port}", "token_env": TOKEN_ENV,
                              "tls": {"cert_file": cert, "key_file": key}})
    if not h.wait_port(admin_port, 10):
        raise h.HarnessError(f"admin API not listening on 127.0.0.1:{admin_port}")
    return {"tmp": tmp, "ca": os.path.join(tmp, "ca.crt"), "other_ca": os.path.join(tmp, "other-ca.crt"),
            "cert": cert, "key": key, "old": old, "new": new, "tgt": proxy, "admin_port": admin_port,
            "token": token, "url": f"https://127.0.0.1:{admin_port}"}


def check_ctl_flags_with_cacert(ctx):
    if skipped(ctx, "ctl flags over https"):
        return
    body = get_flags(ctx)
    for url in (ctx.url, f"https://localhost:{ctx.admin_port}"):  # IP and DNS subjectAltName
        rc, out, err = ctl(ctx, "--cacert", ctx.ca, "flags", admin=url)
        h.check_eq((rc, err), (0, ""), f"ctl --admin {url} --cacert flags (stdout {out!r})")
        h.check(out.startswith(f"version: {body['version']}\n"), f"flags output starts with the version: {out!r}")
        h.check(re.search(r"^writes: old$", out, re.M), f"writes as configured: {out!r}")
    rc, out, err = ctl(ctx, "--cacert", ctx.ca, "--json", "flags")
    h.check_eq((rc, err), (0, ""), "ctl --json flags over https")
    h.check_eq(json.loads(out), get_flags(ctx), "ctl --json flags vs GET /flags over TLS")


def check_set_status_rollback(ctx):
    if skipped(ctx, "ctl set, status, rollback over https"):
        return
    before = get_flags(ctx)
    rc, out, err = ctl(ctx, "--cacert", ctx.ca, "set", "writes=dual", "reads_new_percent=20",
                       "--reason", "ramp over tls")
    h.check_eq((rc, err), (0, ""), f"ctl set over https (stdout {out!r})")
    after = get_flags(ctx)
    h.check_eq(after["version"], before["version"] + 1, "version after set")
    h.check_eq((after["writes"], after["reads_new_percent"], after.get("reason")), ("dual", 20, "ramp over tls"),
               "flags after set")

    conn = ctx.tgt.connect()  # SQL through the proxy while the API is TLS
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 41 + 1")
            h.check_eq(cur.fetchone()[0], 42, "a query through the proxy")
        rc, out, err = ctl(ctx, "--cacert", ctx.ca, "status")
        h.check_eq((rc, err), (0, ""), f"ctl status over https (stdout {out!r})")
        h.check(re.search(rf"^  version: {after['version']}$", out, re.M), f"status shows flags v{after['version']}:\n{out}")
        status, body = api(ctx, "GET", "/status")
        h.check_eq(status, 200, "GET /status over TLS")
        h.check(body.get("sessions", 0) >= 1, f"status counts the open session: {body.get('sessions')!r}")
    finally:
        conn.close()

    rc, out, err = ctl(ctx, "--cacert", ctx.ca, "rollback", "--reason", "tls rollback")
    h.check_eq((rc, err), (0, ""), f"ctl rollback over https (stdout {out!r})")
    h.check(re.fullmatch(r"rolled back: flags v\d+, reads_new_percent 0, writes [\w-]+; applied by \d+ workers? "
                         r"in [\d.]+ ms\n", out), f"rollback line: {out!r}")
    flags = get_flags(ctx)
    h.check_eq((flags["version"], flags["reads_new_percent"], flags.get("reason")),
               (after["version"] + 1, 0, "tls rollback"), "flags after rollback")


def check_untrusted_without_cacert(ctx):
    if skipped(ctx, "certificate verification"):
        return
    before = get_flags(ctx)
    rc, out, err = ctl(ctx, "set", "reads_new_percent=5")  # the system trust store: not our CA
    h.check_eq(rc, 3, f"exit code without --cacert (stderr {err!r})")
    h.check_eq(out, "", "stdout when the certificate is not trusted")
    h.check(f"cutover ctl: the admin API at {ctx.url} is not trusted (TLS handshake: certificate verify failed: "
            "unable to get local issuer certificate)" in err, f"the reason, in OpenSSL's words: {err!r}")
    h.check("--cacert FILE" in err and "--insecure" in err, f"what to do: {err!r}")

    rc, out, err = ctl(ctx, "--cacert", ctx.other_ca, "flags")
    h.check_eq(rc, 3, f"exit code with another CA (stderr {err!r})")
    h.check("certificate verify failed" in err and ctx.other_ca in err, f"another CA: {err!r}")
    h.check_eq(get_flags(ctx), before, "flags after refused connections (nothing was sent)")


def check_insecure_works_and_warns(ctx):
    if skipped(ctx, "--insecure"):
        return
    body = get_flags(ctx)
    rc, out, err = ctl(ctx, "--insecure", "flags")
    h.check_eq(rc, 0, f"ctl --insecure flags (stderr {err!r})")
    h.check(out.startswith(f"version: {body['version']}\n"), f"flags printed: {out!r}")
    h.check(err.startswith("cutover ctl: warning: --insecure: the admin API's certificate is not verified"),
            f"the warning on stderr: {err!r}")
    rc, _, err = ctl(ctx, "--insecure", "flags", admin=f"http://127.0.0.1:{ctx.admin_port}")
    h.check_eq(rc, 2, f"--insecure with an http:// URL (stderr {err!r})")


def check_urllib_healthz_and_auth(ctx):
    if skipped(ctx, "urllib over TLS"):
        return
    h.check_eq(api(ctx, "GET", "/healthz"), (200, {"status": "ok"}), "GET /healthz over TLS")
    before = get_flags(ctx)
    status, body = api(ctx, "PUT", "/flags", body={"reads_new_percent": 7})
    h.check_eq(status, 401, f"PUT /flags without a token over TLS (body {body!r})")
    status, body = api(ctx, "PUT", "/flags", body={"reads_new_percent": 7}, token="not-the-token")
    h.check_eq(status, 401, f"PUT /flags with a wrong token over TLS (body {body!r})")
    h.check_eq(get_flags(ctx), before, "flags after refused PUTs")
    # A client that checks the certificate against another CA refuses the server.
    try:
        api(ctx, "GET", "/healthz", context=ssl.create_default_context(cafile=ctx.other_ca))
        raise h.CheckFailed("urllib trusted the admin API with another CA")
    except urllib.error.URLError as e:
        h.check(isinstance(e.reason, ssl.SSLCertVerificationError), f"verification error: {e!r}")


def plain_http_exchange(port):
    """What a plain-HTTP request to `port` gets back before the server closes, and whether it
    closed (False: still open after 10 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return received, True
                received += chunk
        except (socket.timeout, TimeoutError):
            return received, False
        except ConnectionResetError:
            return received, True


def check_plain_http_to_tls_port(ctx):
    if skipped(ctx, "plain HTTP to the TLS port"):
        return
    for attempt in range(5):
        t0 = time.monotonic()
        received, closed = plain_http_exchange(ctx.admin_port)
        h.check(closed, f"attempt {attempt}: the connection was closed (got {received!r} in {time.monotonic() - t0:.1f}s)")
        h.check(not received.startswith(b"HTTP/"), f"attempt {attempt}: no HTTP answer: {received!r}")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ctx.admin_port}/healthz", timeout=10)
        raise h.CheckFailed("urllib got an HTTP answer over plain HTTP from the TLS port")
    except (urllib.error.URLError, ConnectionError, OSError) as e:
        if isinstance(e, urllib.error.HTTPError):
            raise h.CheckFailed(f"plain HTTP got an HTTP status {e.code}")
    rc, out, err = ctl(ctx, "flags", admin=f"http://127.0.0.1:{ctx.admin_port}")
    h.check_eq(rc, 3, f"ctl http:// to the TLS port (stderr {err!r})")
    h.check("if the proxy's config has admin.tls, use https://" in err, f"ctl says to use https: {err!r}")

    # The proxy is still up and serving, SQL and the API alike.
    h.check(ctx.tgt.alive(), "the proxy is still running")
    h.check_eq(api(ctx, "GET", "/healthz"), (200, {"status": "ok"}), "GET /healthz after plain-HTTP attempts")
    conn = ctx.tgt.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            h.check_eq(cur.fetchone()[0], 1, "a query after plain-HTTP attempts")
    finally:
        conn.close()
    rc, _, err = ctl(ctx, "--cacert", ctx.ca, "flags")
    h.check_eq((rc, err), (0, ""), "ctl flags after plain-HTTP attempts")


def start_failure(ctx, tls):
    """The proxy's start-up error with admin.tls = tls (it must not start)."""
    port = h.free_port()
    journal_dir = os.path.join(h.TmpDir("admin-tls-journal").path, "journal")
    try:
        proxy = h.Proxy(ctx.binary, old=ctx.old, env={TOKEN_ENV: ctx.token}, start_timeout=10,
                        journal_dir=journal_dir,
                        admin={"listen": f"127.0.0.1:{port}", "token_env": TOKEN_ENV, "tls": tls})
    except h.HarnessError as e:
        return str(e)
    proxy.cleanup()
    raise h.CheckFailed(f"the proxy started with admin.tls {tls!r}")


def check_unloadable_files_stop_the_start(ctx):
    if skipped(ctx, "start-up with bad admin.tls files"):
        return
    missing = os.path.join(ctx.tmp, "missing.key")
    text = start_failure(ctx, {"cert_file": ctx.cert, "key_file": missing})
    h.check(re.search(rf"admin\.tls\.key_file: cannot read '{re.escape(missing)}': No such file or directory", text),
            f"a missing key file is named: {text[-1500:]}")
    garbage = os.path.join(ctx.tmp, "garbage.crt")
    with open(garbage, "w") as f:
        f.write("not a certificate\n")
    text = start_failure(ctx, {"cert_file": garbage, "key_file": ctx.key})
    h.check(f"admin.tls.cert_file: cannot load the certificate '{garbage}'" in text,
            f"an unloadable certificate is named: {text[-1500:]}")
    other_key = os.path.join(ctx.tmp, "other-ca.key")
    text = start_failure(ctx, {"cert_file": ctx.cert, "key_file": other_key})
    h.check(f"admin.tls.key_file: '{other_key}' is not the key of admin.tls.cert_file '{ctx.cert}'" in text,
            f"a key of another certificate is named: {text[-1500:]}")
    text = start_failure(ctx, {"cert_file": ctx.cert})
    h.check("admin.tls.key_file: required with admin.tls" in text, f"a missing key_file key: {text[-1500:]}")


CHECKS = [check_ctl_flags_with_cacert, check_set_status_rollback, check_untrusted_without_cacert,
          check_insecure_works_and_warns, check_urllib_healthz_and_auth, check_plain_http_to_tls_port,
          check_unloadable_files_stop_the_start]

if __name__ == "__main__":
    h.run(CHECKS, setup)
