#!/usr/bin/python3
"""The front door: client authentication (SCRAM-SHA-256[-PLUS], md5, users file copied from
pg_authid), TLS to clients and to the store, per-user limits, startup hardening, SIGHUP reload,
and no secret in the proxy's debug log.

Every negative case asserts the exact SQLSTATE and message (read from a raw socket: psycopg2 has no
pgcode for connection errors) and that the old store saw no connection for it (its
`log_connections` lines are counted before and after).

With --direct the checks run against PostgreSQL itself where it has an analogue: the old store
gets the same roles, `host md5db ... md5` lines stand for cutover's `auth.method: md5`, and
PostgreSQL's own wording is logged where cutover deliberately differs (it answers every
authentication failure with the same 28P01).
"""

import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)
JAVA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java")
PGJDBC_JAR = "/usr/share/java/postgresql.jar"

# Distinctive passwords, so a grep of a log cannot match anything else.
STORE_USER, STORE_PW = "cutover_svc", "Store-pw-5e0b7d21"
PASSWORDS = {
    "alice": "Alice-pw-3c9f10ab",      # SCRAM verifier copied from pg_authid
    "bob": "Bob-pw-77d2e4c6",          # SCRAM verifier copied from pg_authid
    "md5u": "Md5u-pw-a1b2c3d4",        # md5 hash copied from pg_authid
    "plainu": "Plainu-pw-e5f60718",    # plaintext entry in the users file
}
WRONG = "Wrong-pw-0d9e8f7a"
UNKNOWN = "nosuchuser"

# Everything that must never appear in a proxy log; the SCRAM helper adds nonces and proofs.
SECRETS = {STORE_PW, WRONG, *PASSWORDS.values()}
# The debug logs of every proxy this run started, gathered before their temp dirs go.
PROXY_LOGS = []


def auth_failed(user):
    return ("28P01", f'password authentication failed for user "{user}"')


# ---------------------------------------------------------------------------------------------
# Certificates


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise h.HarnessError(f"openssl {' '.join(args)} failed:\n{p.stdout}")


def make_ca(tmp, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN=cutover test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=tmp)
    return os.path.join(tmp, f"{name}.crt")


def make_server_cert(tmp, name, ca):
    ext = os.path.join(tmp, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN=localhost/O={name}", cwd=tmp)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", ext, cwd=tmp)
    os.chmod(os.path.join(tmp, f"{name}.key"), 0o600)
    return os.path.join(tmp, f"{name}.crt"), os.path.join(tmp, f"{name}.key")


def der_of(pem_path):
    with open(pem_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def copy_for_postgres(src, dst, mode):
    shutil.copyfile(src, dst)
    os.chmod(dst, mode)
    if h.IS_ROOT:
        shutil.chown(dst, "postgres", "postgres")


# ---------------------------------------------------------------------------------------------
# Setup


def setup(ctx):
    tmp = h.make_tmpdir("front-door")
    h._register(_TmpDir(tmp))
    os.chmod(tmp, 0o755)   # the clusters run as postgres and read their certificates here
    h.require_tool("openssl", "openssl")
    ca = make_ca(tmp, "ca")
    wrong_ca = make_ca(tmp, "wrongca")
    cert1, key1 = make_server_cert(tmp, "server1", "ca")
    cert2, key2 = make_server_cert(tmp, "server2", "ca")
    pg_cert, pg_key = os.path.join(tmp, "pg.crt"), os.path.join(tmp, "pg.key")
    copy_for_postgres(cert1, pg_cert, 0o644)
    copy_for_postgres(key1, pg_key, 0o600)

    roles = ",".join(PASSWORDS)
    # The store demands SCRAM from cutover's own login. For --direct, the client roles get the
    # method cutover would apply: md5 in database md5db (auth.method md5), SCRAM elsewhere.
    hba = [f"host all {STORE_USER} 127.0.0.1/32 scram-sha-256",
           f"host md5db {roles} 127.0.0.1/32 md5",
           f"host all {roles},{UNKNOWN} 127.0.0.1/32 scram-sha-256"]
    old = ctx.cluster("old", hba=hba, ssl="on", ssl_cert_file=pg_cert, ssl_key_file=pg_key)
    nossl = ctx.cluster("nossl", hba=[f"host all {STORE_USER} 127.0.0.1/32 scram-sha-256"])
    for cluster in (old, nossl):
        cluster.psql(f"SET password_encryption = 'scram-sha-256';\n"
                     f"CREATE ROLE {STORE_USER} LOGIN PASSWORD '{STORE_PW}';\n"
                     f"GRANT pg_read_all_stats TO {STORE_USER};")
    sql = "CREATE DATABASE md5db;\n"
    for user, pw in PASSWORDS.items():
        enc = "md5" if user == "md5u" else "scram-sha-256"
        sql += f"SET password_encryption = '{enc}';\nCREATE ROLE {user} LOGIN PASSWORD '{pw}';\n"
    old.psql(sql)

    # The documented operator procedure, literally: copy rolpassword out of pg_authid.
    rows = old.psql("SELECT rolname || '|' || rolpassword FROM pg_authid "
                    "WHERE rolname IN ('alice', 'bob', 'md5u') ORDER BY 1").split()
    verifiers = dict(r.split("|", 1) for r in rows)
    h.check(verifiers["alice"].startswith("SCRAM-SHA-256$4096:")
            and verifiers["md5u"].startswith("md5"), f"unexpected pg_authid contents: {verifiers}")
    SECRETS.update(verifiers.values())
    for v in verifiers.values():   # the parts of a verifier are secrets on their own
        if v.startswith("SCRAM-"):
            SECRETS.update(p for p in v.replace("$", ":").split(":")[1:] if len(p) > 8)
    users_file = os.path.join(tmp, "users.txt")
    with open(users_file, "w") as f:
        f.write("# copied from pg_authid.rolpassword\n")
        for user, secret in verifiers.items():
            f.write(f'"{user}" "{secret}"\n')
        f.write(f'"plainu" "{PASSWORDS["plainu"]}"\n')
    os.chmod(users_file, 0o600)

    fixtures = {"tmp": tmp, "ca": ca, "wrong_ca": wrong_ca, "cert1": cert1, "key1": key1,
                "cert2": cert2, "key2": key2, "users_file": users_file, "old": old,
                "nossl": nossl, "verifiers": verifiers}
    ctx.fixtures.update(fixtures)
    fixtures["main"] = start_target(ctx)
    return fixtures


class _TmpDir:
    def __init__(self, path):
        self.path = path

    def cleanup(self):
        h.remove_tmpdir(self.path)


def proxy_config(ctx, old=None, **overrides):
    """The front-door configuration: SCRAM from the users file, TLS offered to clients (allow),
    and cutover's own SCRAM login to the store over verify-full TLS."""
    old = old or ctx.old
    base = {
        "log_level": "debug",
        "auth": {"method": "scram-sha-256", "users_file": ctx.users_file},
        "tls": {"mode": "allow", "cert_file": ctx.cert1, "key_file": ctx.key1},
        "stores": {"old": {"user": STORE_USER, "password_env": "FD_STORE_PW",
                           "sslmode": "verify-full", "sslrootcert": ctx.ca}},
    }
    return h.deep_merge(base, overrides)


class LoggedProxy(h.Proxy):
    """A Proxy whose stderr is kept for the final secrets grep after it is cleaned up."""

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(5)
        text = self.stderr_text()
        if text and not getattr(self, "_logged", False):
            PROXY_LOGS.append(text)
            self._logged = True
        super().cleanup()


def start_target(ctx, old=None, **overrides):
    """A cutover proxy configured by proxy_config, or with --direct the old store itself (the
    clients then log in to PostgreSQL with their own roles)."""
    old = old or ctx.old
    if ctx.direct:
        return h.DirectTarget(old)
    return LoggedProxy(ctx.binary, old=old, env={"FD_STORE_PW": STORE_PW},
                       **proxy_config(ctx, old, **overrides))


def store_connections(cluster):
    return cluster.log_text().count("connection received")


class NoStoreConnection:
    """`with NoStoreConnection(ctx, cluster):` fails the check if the store logged a connection
    inside the block (proxy mode only: with --direct the store is the target)."""

    def __init__(self, ctx, cluster=None):
        self.ctx, self.cluster = ctx, cluster or ctx.old

    def __enter__(self):
        self.before = store_connections(self.cluster)
        return self

    def __exit__(self, exc_type, *_):
        if exc_type is not None or self.ctx.direct:
            return False
        time.sleep(0.3)   # anything the proxy would have started has reached the store's log
        got = store_connections(self.cluster) - self.before
        h.check_eq(got, 0, "connections the old store received for a refused client")
        return False


# ---------------------------------------------------------------------------------------------
# A raw client: SSLRequest/TLS, and every authentication exchange done by hand so a check can
# misbehave on purpose and read the ErrorResponse fields.


def _msg(kind, body):
    return kind + struct.pack("!i", len(body) + 4) + body


def open_socket(port, tls=False, cafile=None, timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if not tls:
        return sock
    sock.sendall(SSL_REQUEST)
    answer = sock.recv(1)
    if answer != b"S":
        sock.close()
        raise h.CheckFailed(f"SSLRequest answered {answer!r}, want b'S'")
    context = ssl.create_default_context(cafile=cafile)
    return context.wrap_socket(sock, server_hostname="localhost")


class Login:
    """The outcome of raw_login: auth request codes seen, error fields or None, the socket."""

    def __init__(self):
        self.codes, self.error, self.sock, self.mechanisms = [], None, None, []

    @property
    def ok(self):
        return self.error is None and self.sock is not None

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def raw_login(port, user, password, database="postgres", tls=False, cafile=None,
              mechanism=None, gs2=None, tamper_proof=False, extra_params=None):
    """Logs in by hand. `mechanism` picks the SASL mechanism (default: PLUS if offered, else
    SCRAM-SHA-256); `gs2` overrides the gs2 header; `tamper_proof` flips a byte of the proof.
    Returns a Login; its socket stays open after success."""
    out = Login()
    sock = open_socket(port, tls=tls, cafile=cafile)
    sock.sendall(h.startup_packet(user, database, **(extra_params or {})))
    scram = None
    while True:
        msg = h.read_message(sock)
        if msg is None:
            sock.close()
            raise h.CheckFailed(f"connection closed during login (auth codes {out.codes})")
        kind, body = msg
        if kind == b"E":
            out.error = h.error_fields(body)
            sock.close()
            return out
        if kind == b"Z":
            out.sock = sock
            return out
        if kind != b"R":
            continue
        (code,) = struct.unpack("!i", body[:4])
        out.codes.append(code)
        if code == 3:
            sock.sendall(_msg(b"p", password.encode() + b"\0"))
        elif code == 5:
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
            outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
            sock.sendall(_msg(b"p", b"md5" + outer.encode() + b"\0"))
        elif code == 10:
            out.mechanisms = [m.decode() for m in body[4:].split(b"\0") if m]
            mech = mechanism or ("SCRAM-SHA-256-PLUS" if "SCRAM-SHA-256-PLUS" in out.mechanisms
                                 else "SCRAM-SHA-256")
            scram = ScramClient(password, mech, sock, gs2)
            first = scram.client_first()
            sock.sendall(_msg(b"p", mech.encode() + b"\0" + struct.pack("!i", len(first)) + first))
        elif code == 11:
            sock.sendall(_msg(b"p", scram.client_final(body[4:], tamper_proof)))
        elif code == 12:
            scram.check_server_final(body[4:])


class ScramClient:
    """RFC 5802/7677 client side, by hand, recording its nonce and proof as secrets."""

    def __init__(self, password, mechanism, sock, gs2=None):
        self.password = password.encode()
        self.cbind_data = b""
        if mechanism.endswith("-PLUS"):
            # tls-server-end-point: the hash of the server certificate (SHA-256 for ECDSA-SHA256).
            self.cbind_data = hashlib.sha256(sock.getpeercert(binary_form=True)).digest()
            self.gs2 = gs2 or "p=tls-server-end-point,,"
        else:
            self.gs2 = gs2 or "n,,"
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        SECRETS.add(self.nonce)

    def client_first(self):
        self.first_bare = f"n=,r={self.nonce}"
        return (self.gs2 + self.first_bare).encode()

    def client_final(self, server_first, tamper):
        server_first = server_first.decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        h.check(attrs["r"].startswith(self.nonce), "server nonce does not extend the client's")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", "sha256").digest()
        stored_key = hashlib.sha256(client_key).digest()
        cbind = base64.b64encode(self.gs2.encode() + self.cbind_data).decode()
        without_proof = f"c={cbind},r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, "sha256").digest()
        proof = bytearray(a ^ b for a, b in zip(client_key, signature))
        if tamper:
            proof[7] ^= 0x01
        self.server_key = hmac.new(salted, b"Server Key", "sha256").digest()
        self.auth_message = auth_message
        proof_b64 = base64.b64encode(bytes(proof)).decode()
        SECRETS.update({proof_b64, attrs["r"], base64.b64encode(client_key).decode()})
        return f"{without_proof},p={proof_b64}".encode()

    def check_server_final(self, server_final):
        want = base64.b64encode(hmac.new(self.server_key, self.auth_message, "sha256").digest())
        h.check_eq(server_final, b"v=" + want, "SCRAM server signature")


def check_login_error(ctx, login, want, what):
    """Exact SQLSTATE and message in proxy mode; PostgreSQL's own answer is logged directly."""
    h.check(login.error is not None, f"{what}: login succeeded (auth codes {login.codes})")
    got = (login.error.get("S"), login.error.get("C"), login.error.get("M"))
    if ctx.direct:
        ctx.log(f"{what}: PostgreSQL answers {got}")
        return got
    h.check_eq(got, ("FATAL",) + want, f"{what}: (severity, SQLSTATE, message)")
    ctx.log(f"{what}: {got[1]} {got[2]}")
    return got


def psycopg2_error(dsn):
    try:
        psycopg2.connect(dsn).close()
    except psycopg2.OperationalError as e:
        return str(e).strip()
    raise h.CheckFailed(f"psycopg2 logged in: {dsn}")


def scalar(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()


def tls_dsn(ctx, ep, user, **kw):
    """libpq settings for a verified TLS connection; host=localhost is what the cert names."""
    return ep.dsn(user, password=PASSWORDS.get(user, WRONG), host="localhost",
                  hostaddr="127.0.0.1", sslmode="verify-full", sslrootcert=ctx.ca, **kw)


# ---------------------------------------------------------------------------------------------
# Successful logins


def check_scram_psycopg2_verify_full_channel_binding(ctx):
    ep = ctx.main.endpoint()
    before = store_connections(ctx.old)
    conn = psycopg2.connect(tls_dsn(ctx, ep, "alice", channel_binding="require"))
    # The counter NoStoreConnection relies on does see a login that gets through.
    h.check(store_connections(ctx.old) > before, "the store logged no connection for a login")
    try:
        h.check(conn.info.ssl_in_use, "psycopg2 connection is not TLS")
        user, one = scalar(conn, "SELECT current_user, 1")
        want_user = "alice" if ctx.direct else STORE_USER
        h.check_eq((user, one), (want_user, 1), "(current_user on the store, SELECT 1)")
        ctx.log(f"alice over {conn.info.ssl_attribute('protocol')} with channel binding; "
                f"store user {user}")
    finally:
        conn.close()
    # What the client chose: SCRAM-SHA-256-PLUS, done by hand, server signature verified.
    login = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], tls=True, cafile=ctx.ca)
    try:
        h.check(login.ok, f"raw SCRAM-SHA-256-PLUS login failed: {login.error}")
        h.check_eq(login.mechanisms, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
                   "mechanisms offered over TLS")
        h.check_eq(login.codes, [10, 11, 12, 0], "authentication requests")
    finally:
        login.close()


def check_scram_psql_verify_full_channel_binding(ctx):
    ep = ctx.main.endpoint()
    conninfo = (f"host=localhost hostaddr=127.0.0.1 port={ep.port} user=bob dbname=postgres "
                f"sslmode=verify-full sslrootcert={ctx.ca} channel_binding=require")
    env = dict(os.environ, PGPASSWORD=PASSWORDS["bob"])
    env.pop("PGSERVICE", None)
    p = subprocess.run(["psql", "-X", "-A", "-t", "-d", conninfo, "-c", "SELECT 40 + 2",
                        "-c", r"\conninfo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=env, timeout=60)
    h.check_eq(p.returncode, 0, f"psql exit code (output {p.stdout!r})")
    lines = p.stdout.splitlines()
    h.check_eq(lines[0], "42", "psql result")
    h.check("SSL connection (protocol: TLSv1." in p.stdout, f"psql not on TLS: {p.stdout!r}")
    ctx.log(lines[-1])


def check_md5_method_md5_user(ctx):
    tgt = start_target(ctx, auth={"method": "md5"})
    try:
        login = raw_login(tgt.port, "md5u", PASSWORDS["md5u"], database="md5db")
        h.check(login.ok, f"md5 login failed: {login.error}")
        login.close()
        h.check_eq(login.codes, [5, 0], "authentication requests (5 = MD5Password)")
        conn = tgt.connect(user="md5u", db="md5db", password=PASSWORDS["md5u"])
        h.check_eq(scalar(conn, "SELECT 7"), (7,), "query after md5 login via psycopg2")
        conn.close()
        with NoStoreConnection(ctx):
            login = raw_login(tgt.port, "md5u", WRONG, database="md5db")
        check_login_error(ctx, login, auth_failed("md5u"), "md5 with a wrong password")
    finally:
        tgt.cleanup()


def check_md5_method_scram_user_runs_scram(ctx):
    tgt = start_target(ctx, auth={"method": "md5"})
    try:
        login = raw_login(tgt.port, "alice", PASSWORDS["alice"], database="md5db")
        h.check(login.ok, f"SCRAM login under auth.method md5 failed: {login.error}")
        login.close()
        h.check_eq(login.codes, [10, 11, 12, 0], "authentication requests (10 = SASL)")
        conn = tgt.connect(user="alice", db="md5db", password=PASSWORDS["alice"])
        h.check_eq(scalar(conn, "SELECT 8"), (8,), "query via psycopg2")
        conn.close()
    finally:
        tgt.cleanup()


def check_plaintext_users_file_entry(ctx):
    for method, db, codes in (("scram-sha-256", "postgres", [10, 11, 12, 0]),
                              ("md5", "md5db", None)):
        tgt = start_target(ctx, auth={"method": method})
        try:
            login = raw_login(tgt.port, "plainu", PASSWORDS["plainu"], database=db)
            h.check(login.ok, f"plaintext entry, auth.method {method}: {login.error}")
            login.close()
            if codes:
                h.check_eq(login.codes, codes, f"authentication requests under {method}")
            # Under md5 cutover hashes the plaintext entry (code 5); PostgreSQL, holding a SCRAM
            # verifier for plainu, runs SCRAM (code 10).
            ctx.log(f"plainu under {method}: auth codes {login.codes}")
            conn = tgt.connect(user="plainu", db=db, password=PASSWORDS["plainu"])
            h.check_eq(scalar(conn, "SELECT 9"), (9,), "query via psycopg2")
            conn.close()
        finally:
            tgt.cleanup()


# ---------------------------------------------------------------------------------------------
# Authentication failures: one identical 28P01, nothing reaches the store


def check_wrong_password(ctx):
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, "alice", WRONG)
        message = psycopg2_error(ctx.main.dsn("alice", password=WRONG))
    check_login_error(ctx, login, auth_failed("alice"), "wrong password")
    h.check(message.endswith('FATAL:  password authentication failed for user "alice"'),
            f"psycopg2 message: {message!r}")


def check_unknown_user(ctx):
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, UNKNOWN, WRONG)
        message = psycopg2_error(ctx.main.dsn(UNKNOWN, password=WRONG))
    check_login_error(ctx, login, auth_failed(UNKNOWN), "unknown user")
    # The mock exchange looks like a real one up to the proof.
    h.check_eq(login.codes, [10, 11], "authentication requests for an unknown user")
    h.check(message.endswith(f'FATAL:  password authentication failed for user "{UNKNOWN}"'),
            f"psycopg2 message: {message!r}")


def check_tampered_scram_proof(ctx):
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], tamper_proof=True)
        login_tls = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], tls=True,
                              cafile=ctx.ca, tamper_proof=True)
    check_login_error(ctx, login, auth_failed("alice"), "tampered proof")
    check_login_error(ctx, login_tls, auth_failed("alice"), "tampered proof (PLUS over TLS)")
    h.check_eq(login.codes, [10, 11], "authentication requests before the refusal")


def check_unsupported_sasl_mechanism(ctx):
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], mechanism="SCRAM-SHA-1")
    # PostgreSQL: 08P01 "invalid SASL authentication mechanism"; cutover gives no hint.
    check_login_error(ctx, login, auth_failed("alice"), "mechanism SCRAM-SHA-1")


def check_channel_binding_downgrade_refused(ctx):
    """Over TLS with PLUS offered, a client claiming "y" (it supports binding but thinks the
    server does not) reveals a man in the middle that stripped PLUS (RFC 5802 section 6)."""
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], tls=True, cafile=ctx.ca,
                          mechanism="SCRAM-SHA-256", gs2="y,,")
    # PostgreSQL: 08P01 "SCRAM channel binding negotiation error".
    check_login_error(ctx, login, auth_failed("alice"), "gs2 header y,, over TLS")
    h.check_eq(login.mechanisms, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"], "mechanisms offered")
    # Without TLS "y,," is legitimate (no PLUS was offered): the login succeeds.
    plain = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], gs2="y,,")
    h.check(plain.ok, f"y,, without TLS refused: {plain.error}")
    plain.close()


def check_md5_secret_under_scram_method(ctx):
    with NoStoreConnection(ctx):
        login = raw_login(ctx.main.port, "md5u", PASSWORDS["md5u"])
    check_login_error(ctx, login, auth_failed("md5u"), "md5-only secret, auth.method scram")
    if not ctx.direct:
        h.check_eq(login.codes, [10, 11], "authentication requests (SCRAM, mock)")


# ---------------------------------------------------------------------------------------------
# TLS to clients


def check_tls_mode_require(ctx):
    if ctx.direct:
        print("  [direct] skipped: tls.mode require is cutover's setting (PostgreSQL's "
              "analogue, hostssl lines, answers with different words)")
        return
    tgt = start_target(ctx, tls={"mode": "require"})
    try:
        want = ("28000", "cutover accepts only TLS-encrypted connections (tls.mode: require)")
        with NoStoreConnection(ctx):
            login = raw_login(tgt.port, "alice", PASSWORDS["alice"])
            message = psycopg2_error(tgt.dsn("alice", password=PASSWORDS["alice"],
                                             sslmode="disable"))
        check_login_error(ctx, login, want, "plaintext under tls.mode require")
        h.check_eq(login.codes, [], "authentication requests before the refusal")
        h.check(f"FATAL:  {want[1]}\nHINT:  " in message, f"psycopg2 message: {message!r}")
        conn = tgt.connect(user="alice", password=PASSWORDS["alice"], sslmode="require")
        h.check(conn.info.ssl_in_use, "sslmode=require connection is not TLS")
        h.check_eq(scalar(conn, "SELECT 11"), (11,), "query over sslmode=require")
        conn.close()
    finally:
        tgt.cleanup()


def check_tls_mode_disable_answers_n(ctx):
    tgt = start_target(ctx, old=ctx.nossl, tls={"mode": "disable"},
                       stores={"old": {"sslmode": "disable"}}) if not ctx.direct \
        else h.DirectTarget(ctx.nossl)
    try:
        with socket.create_connection(("127.0.0.1", tgt.port), timeout=5) as s:
            s.sendall(SSL_REQUEST)
            h.check_eq(s.recv(1), b"N", "answer to SSLRequest under tls.mode disable")
            if tgt.is_proxy:   # Debian's PostgreSQL has GSSAPI and answers 'G'
                s.sendall(GSSENC_REQUEST)
                h.check_eq(s.recv(1), b"N", "answer to GSSENCRequest")
        h.check_eq(psycopg2_error(tgt.dsn("alice", password=PASSWORDS["alice"],
                                          sslmode="require")).count("does not support SSL"), 1,
                   "libpq sslmode=require against a server without TLS")
    finally:
        tgt.cleanup()


def check_unencrypted_bytes_after_ssl_request(ctx):
    with NoStoreConnection(ctx):
        with socket.create_connection(("127.0.0.1", ctx.main.port), timeout=3) as s:
            s.sendall(SSL_REQUEST + h.startup_packet("alice", "postgres"))
            got, closed = b"", False
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        closed = True
                        break
                    got += chunk
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                pass
    ctx.log(f"answer {got[:80]!r}, closed={closed}")
    if ctx.direct:
        # PostgreSQL 15 answers 'S' and waits for a handshake; the plaintext bytes it buffered
        # would only be refused after it ("received unencrypted data after SSL request").
        h.check_eq(got, b"S", "PostgreSQL's answer")
        return
    h.check_eq((got, closed), (b"", True), "(bytes sent back, connection closed): want no 'S'")
    h.check(ctx.main.alive(), "proxy died")


# ---------------------------------------------------------------------------------------------
# TLS to the store


def _store_backend_ssl(ctx, conn, cluster):
    (pid,) = scalar(conn, "SELECT pg_backend_pid()")
    direct = cluster.connect()
    try:
        return scalar(direct, "SELECT ssl, usename FROM pg_stat_ssl JOIN pg_stat_activity "
                              "USING (pid) WHERE pid = %s", (pid,))
    finally:
        direct.close()


def check_store_tls_verify_full(ctx):
    conn = psycopg2.connect(tls_dsn(ctx, ctx.main.endpoint(), "alice"))
    try:
        got = _store_backend_ssl(ctx, conn, ctx.old)
    finally:
        conn.close()
    want_user = "alice" if ctx.direct else STORE_USER
    h.check_eq(got, (True, want_user), "(pg_stat_ssl.ssl, user) of the store backend")
    if not ctx.direct:
        h.check("TLS to the old store" in ctx.main.stderr_text(), "proxy did not log store TLS")


def check_store_tls_wrong_ca(ctx):
    if ctx.direct:
        print("  [direct] skipped: proxy-only (cutover's TLS to the store)")
        return
    tgt = start_target(ctx, stores={"old": {"sslrootcert": ctx.wrong_ca}})
    try:
        login = raw_login(tgt.port, "alice", PASSWORDS["alice"])
        h.check(login.error is not None, "logged in through a store certificate from another CA")
        got = (login.error.get("C"), login.error.get("M", ""))
        ctx.log(f"{got[0]} {got[1]}")
        h.check_eq(got[0], "08001", "SQLSTATE")
        h.check(got[1].startswith(f"cutover could not establish TLS with the old store "
                                  f"127.0.0.1:{ctx.old.port}"), f"message: {got[1]!r}")
        h.check_eq(login.codes, [10, 11, 12], "client authentication completed first")
        h.check(tgt.alive(), "proxy died")
    finally:
        tgt.cleanup()


def check_store_without_tls_sslmode_require(ctx):
    if ctx.direct:
        print("  [direct] skipped: proxy-only (cutover's TLS to the store)")
        return
    tgt = start_target(ctx, old=ctx.nossl, stores={"old": {"sslmode": "require"}})
    try:
        login = raw_login(tgt.port, "alice", PASSWORDS["alice"])
        check_login_error(ctx, login, ("08001", f"the old store 127.0.0.1:{ctx.nossl.port} does "
                                                f"not accept TLS, but stores.old.sslmode is "
                                                f"require"), "store without TLS")
    finally:
        tgt.cleanup()


def check_store_without_tls_sslmode_prefer(ctx):
    if ctx.direct:
        print("  [direct] skipped: proxy-only (cutover's TLS to the store)")
        return
    tgt = start_target(ctx, old=ctx.nossl, stores={"old": {"sslmode": "prefer"}})
    try:
        conn = tgt.connect(user="alice", password=PASSWORDS["alice"])
        try:
            got = _store_backend_ssl(ctx, conn, ctx.nossl)
        finally:
            conn.close()
        h.check_eq(got, (False, STORE_USER), "(pg_stat_ssl.ssl, user) of the store backend")
    finally:
        tgt.cleanup()


# ---------------------------------------------------------------------------------------------
# Limits


def check_max_connections_per_user(ctx):
    if ctx.direct:
        ctx.old.psql("ALTER ROLE alice CONNECTION LIMIT 2")
        tgt = ctx.main
    else:
        tgt = start_target(ctx, max_connections_per_user=2)
    held = []
    try:
        for _ in range(2):
            held.append(tgt.connect(user="alice", password=PASSWORDS["alice"]))
        with NoStoreConnection(ctx):
            login = raw_login(tgt.port, "alice", PASSWORDS["alice"])
        check_login_error(ctx, login, ("53300", 'too many connections for role "alice"'),
                          "third connection for alice")
        if ctx.direct:
            h.check_eq(login.error.get("C"), "53300", "SQLSTATE")
        other = tgt.connect(user="bob", password=PASSWORDS["bob"])
        h.check_eq(scalar(other, "SELECT 12"), (12,), "bob while alice is at her limit")
        other.close()
        for conn in held:
            h.check_eq(scalar(conn, "SELECT 13"), (13,), "alice's held sessions")
        held.pop().close()
        time.sleep(0.2)
        again = tgt.connect(user="alice", password=PASSWORDS["alice"])
        again.close()
    finally:
        for conn in held:
            conn.close()
        if ctx.direct:
            ctx.old.psql("ALTER ROLE alice CONNECTION LIMIT -1")
        elif tgt is not ctx.main:
            tgt.cleanup()


def check_oversized_startup_packet(ctx):
    # A well-formed packet just over PostgreSQL's 10,000-byte limit (MAX_STARTUP_PACKET_LENGTH).
    packet = h.startup_packet("alice", "postgres", application_name="a" * 9960)
    h.check(len(packet) > 10_000, f"packet is {len(packet)} bytes")
    with NoStoreConnection(ctx):
        with socket.create_connection(("127.0.0.1", ctx.main.port), timeout=5) as s:
            s.sendall(packet)
            fields, closed = {}, False
            while True:
                try:
                    msg = h.read_message(s)
                except ConnectionResetError:
                    msg = None
                if msg is None:
                    closed = True
                    break
                h.check(msg[0] == b"E", f"answer {msg[0]!r} to a {len(packet)}-byte packet")
                fields = h.error_fields(msg[1])
    ctx.log(f"{len(packet)} bytes: closed={closed} error={fields}")
    h.check(closed, "connection not closed")
    if not ctx.direct:   # PostgreSQL closes without a word
        h.check_eq(fields.get("C"), "08P01", "SQLSTATE")
        h.check(ctx.main.alive(), "proxy died")
    # Just under the limit is a normal login.
    packet_ok = {"application_name": "b" * 9800}
    login = raw_login(ctx.main.port, "alice", PASSWORDS["alice"], extra_params=packet_ok)
    h.check(login.ok, f"login with a 9.9 kB startup packet failed: {login.error}")
    login.close()


# ---------------------------------------------------------------------------------------------
# SIGHUP: the certificate is reloaded, sessions survive


def presented_cert(port, cafile):
    with open_socket(port, tls=True, cafile=cafile) as s:
        return s.getpeercert(binary_form=True)


def check_sighup_reloads_certificate(ctx):
    if ctx.direct:
        print("  [direct] skipped: reloading the old store's certificate would disturb the "
              "other checks; PostgreSQL reloads ssl_cert_file on SIGHUP as well")
        return
    cert = os.path.join(ctx.tmp, "reload.crt")
    key = os.path.join(ctx.tmp, "reload.key")
    shutil.copyfile(ctx.cert1, cert)
    shutil.copyfile(ctx.key1, key)
    os.chmod(key, 0o600)
    tgt = start_target(ctx, tls={"cert_file": cert, "key_file": key})
    try:
        first, second = der_of(ctx.cert1), der_of(ctx.cert2)
        h.check(presented_cert(tgt.port, ctx.ca) == first, "proxy does not present server1")
        session = psycopg2.connect(tls_dsn(ctx, tgt.endpoint(), "alice"))
        shutil.copyfile(ctx.cert2, cert)
        shutil.copyfile(ctx.key2, key)
        tgt.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while presented_cert(tgt.port, ctx.ca) != second:
            h.check(time.monotonic() < deadline, "still the old certificate 5 s after SIGHUP")
            time.sleep(0.1)
        fp = hashlib.sha256(second).hexdigest()[:16]
        ctx.log(f"new certificate presented after SIGHUP (sha256 {fp}...)")
        h.check_eq(scalar(session, "SELECT 21"), (21,), "session opened before the reload")
        fresh = psycopg2.connect(tls_dsn(ctx, tgt.endpoint(), "bob", channel_binding="require"))
        h.check_eq(scalar(fresh, "SELECT 22"), (22,), "new verify-full session after reload")
        fresh.close()
        # A broken key file: logged, and the running certificate stays.
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        tgt.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reload failed" not in tgt.stderr_text():
            h.check(time.monotonic() < deadline, "no 'reload failed' logged for a broken key")
            time.sleep(0.1)
        h.check(presented_cert(tgt.port, ctx.ca) == second, "certificate changed after a "
                                                            "failed reload")
        h.check_eq(scalar(session, "SELECT 23"), (23,), "session after the failed reload")
        session.close()
    finally:
        tgt.cleanup()


# ---------------------------------------------------------------------------------------------
# pgjdbc


def check_pgjdbc_ssl_verify_full(ctx):
    javac = h.require_tool("javac", "default-jdk-headless")
    java = h.require_tool("java", "default-jre-headless")
    if not os.path.exists(PGJDBC_JAR):
        raise h.HarnessError(f"{PGJDBC_JAR} missing: install libpostgresql-jdbc-java")
    classes = os.path.join(ctx.tmp, "classes")
    os.makedirs(classes, exist_ok=True)
    p = subprocess.run([javac, "-d", classes, "-cp", PGJDBC_JAR,
                        os.path.join(JAVA_DIR, "SslCheck.java")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    h.check_eq(p.returncode, 0, f"javac exit code ({p.stdout})")

    def run(user, password):
        return subprocess.run([java, "-cp", f"{PGJDBC_JAR}:{classes}", "SslCheck", "localhost",
                               str(ctx.main.port), user, password, ctx.ca],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=120)

    ok = run("alice", PASSWORDS["alice"])
    want_user = "alice" if ctx.direct else STORE_USER
    h.check_eq((ok.returncode, ok.stdout.strip()), (0, f"ssl=true user={want_user} one=1"),
               "pgjdbc verify-full SCRAM login")
    with NoStoreConnection(ctx):
        bad = run("alice", WRONG)
    h.check_eq((bad.returncode, bad.stdout.strip()),
               (1, 'ERROR 28P01 FATAL: password authentication failed for user "alice"'),
               "pgjdbc with a wrong password")


# ---------------------------------------------------------------------------------------------
# Logs


def check_auth_query(ctx):
    """auth.query: a user the users file does not list is looked up in the old store, over one
    shared, cached connection; failures are the same 28P01."""
    if ctx.direct:
        print("  SKIP auth_query: proxy-only (PostgreSQL reads pg_authid itself)", flush=True)
        return
    password = "Qry-pw-5e1d70aa"
    SECRETS.add(password)
    ctx.old.psql("SET password_encryption = 'scram-sha-256';\n"
                 f"CREATE ROLE qryuser LOGIN PASSWORD '{password}';")
    tgt = start_target(ctx, auth={"query": "SELECT rolpassword FROM pg_authid WHERE rolname = $1 AND rolcanlogin",
                                  "query_user": "postgres", "query_ttl_s": 60})
    try:
        for attempt in range(3):   # the first login asks the store, the others hit the cache
            login = raw_login(tgt.port, "qryuser", password)
            h.check(login.error is None, f"login {attempt} via auth.query failed: {login.error}")
            login.sock.close()
        with NoStoreConnection(ctx):
            check_login_error(ctx, raw_login(tgt.port, "qryuser", WRONG), auth_failed("qryuser"),
                              "wrong password (auth.query)")
        check_login_error(ctx, raw_login(tgt.port, "nosuchrole", WRONG), auth_failed("nosuchrole"),
                          "unknown user (auth.query)")
        login = raw_login(tgt.port, "alice", PASSWORDS["alice"])   # the users file still wins
        h.check(login.error is None, f"users-file login failed with auth.query set: {login.error}")
        login.sock.close()
        lookups = ctx.old.psql("SELECT count(*) FROM pg_stat_activity "
                               "WHERE application_name = 'cutover-auth-query'").strip()
        h.check_eq(lookups, "1", "auth.query connections open on the old store")
    finally:
        tgt.cleanup()


def check_no_secrets_in_logs(ctx):
    """Runs last: every proxy of this run logged at debug level."""
    if ctx.direct:
        print("  [direct] skipped: proxy-only (PostgreSQL's log is not cutover's)")
        return
    texts = PROXY_LOGS + [ctx.main.stderr_text()]
    total = sum(len(t) for t in texts)
    h.check(total > 0, "no proxy log gathered")
    secrets = sorted(s for s in SECRETS if s)
    for secret in secrets:
        for text in texts:
            h.check(secret not in text, f"a proxy log contains a secret ({secret[:6]}...)")
    ctx.log(f"{len(secrets)} secrets (passwords, verifiers and their parts, nonces, proofs) "
            f"absent from {len(texts)} proxy logs, {total} bytes at log_level debug")


CHECKS = [check_auth_query, 
    check_scram_psycopg2_verify_full_channel_binding,
    check_scram_psql_verify_full_channel_binding,
    check_md5_method_md5_user,
    check_md5_method_scram_user_runs_scram,
    check_plaintext_users_file_entry,
    check_wrong_password,
    check_unknown_user,
    check_tampered_scram_proof,
    check_unsupported_sasl_mechanism,
    check_channel_binding_downgrade_refused,
    check_md5_secret_under_scram_method,
    check_tls_mode_require,
    check_tls_mode_disable_answers_n,
    check_unencrypted_bytes_after_ssl_request,
    check_store_tls_verify_full,
    check_store_tls_wrong_ca,
    check_store_without_tls_sslmode_require,
    check_store_without_tls_sslmode_prefer,
    check_max_connections_per_user,
    check_oversized_startup_packet,
    check_sighup_reloads_certificate,
    check_pgjdbc_ssl_verify_full,
    check_no_secrets_in_logs,
]

if __name__ == "__main__":
    h.run(CHECKS, setup)
