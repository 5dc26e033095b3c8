#!/usr/bin/python3
"""cutover logs in to the old store with md5, SCRAM-SHA-256 and cleartext password auth."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()

# Distinctive passwords so a grep of the logs cannot match anything else.
USERS = {
    "md5user": ("md5", "Md5-pw-7f3a9c1e"),
    "scramuser": ("scram-sha-256", "Scram-pw-b81d44f0"),
    "pwuser": ("password", "Clear-pw-2c6e95aa"),
}
WRONG = "Wrong-pw-93d1c7b2"
ALL_SECRETS = [pw for _, pw in USERS.values()] + [WRONG]


def setup(ctx):
    hba = [f"host all {u} 127.0.0.1/32 {method}" for u, (method, _) in USERS.items()]
    old = ctx.cluster("old", hba=hba)
    for user, (method, pw) in USERS.items():
        enc = "md5" if method == "md5" else "scram-sha-256"
        old.psql(f"SET password_encryption = '{enc}';\n"
                 f"CREATE ROLE {user} LOGIN PASSWORD '{pw}';\n"
                 f"CREATE DATABASE {user}_db OWNER {user};")
    stored = old.psql("SELECT rolname, left(rolpassword, 6) FROM pg_authid "
                      "WHERE rolname LIKE '%user' ORDER BY 1")
    h.check("md5user|md5" in stored and "scramuser|SCRAM-" in stored,
            f"password hashes not stored as intended: {stored}")
    # The store really demands passwords: without one, a direct login fails.
    for user in USERS:
        try:
            old.connect(user=user, db=f"{user}_db").close()
            raise h.HarnessError(f"{user} logged in without a password; pg_hba not applied")
        except psycopg2.OperationalError:
            pass
    return {"old": old}


def no_secret_in_logs(ctx, tgt):
    if not tgt.is_proxy:
        return
    text = tgt.stderr_text()
    for secret in ALL_SECRETS:
        h.check(secret not in text, f"proxy log contains a password ({secret[:6]}...)")


def login_as(ctx, user, store_extra, env=None):
    method, pw = USERS[user]
    store = {"user": user, "database": f"{user}_db", **store_extra}
    tgt = ctx.target(ctx.old, env=env, stores={"old": store}, log_level="debug")
    try:
        # The client itself uses trust towards the proxy and asks for a different user.
        conn = tgt.connect(user="postgres", db="postgres")
        with conn.cursor() as cur:
            cur.execute("SELECT current_user, session_user, current_database()")
            got = cur.fetchone()
            cur.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1); SELECT count(*) FROM t")
            count = cur.fetchone()
        conn.commit()
        conn.close()
        direct = h.Endpoint("127.0.0.1", ctx.old.port, user, f"{user}_db", pw).connect()
        with direct.cursor() as cur:
            cur.execute("SELECT current_user, session_user, current_database()")
            want = cur.fetchone()
            cur.execute("SELECT tableowner FROM pg_tables WHERE tablename = 't'")
            owner = cur.fetchone()
            cur.execute("DROP TABLE t")
        direct.commit()
        direct.close()
        h.check_eq(got, want, f"identity through target vs direct login as {user}")
        h.check_eq(got, (user, user, f"{user}_db"), "identity on the store")
        h.check_eq((count, owner), ((1,), (user,)), "table created as the store user")
        log = ctx.old.log_text()
        h.check(f"user={user} database={user}_db" in log, "store log shows no such login")
        no_secret_in_logs(ctx, tgt)
        ctx.log(f"{user} ({method}): logged in as {got[0]}")
    finally:
        tgt.cleanup()


def check_md5(ctx):
    login_as(ctx, "md5user", {"password_env": "OLD_PW"}, env={"OLD_PW": USERS["md5user"][1]})


def check_scram(ctx):
    login_as(ctx, "scramuser", {"password_env": "OLD_PW"},
             env={"OLD_PW": USERS["scramuser"][1]})


def check_cleartext_password(ctx):
    login_as(ctx, "pwuser", {"password_env": "OLD_PW"}, env={"OLD_PW": USERS["pwuser"][1]})


def check_scram_password_file(ctx):
    tmp = h.make_tmpdir("pwfile")
    try:
        path = os.path.join(tmp, "old.pw")
        with open(path, "w") as f:
            f.write(USERS["scramuser"][1] + "\n")
        os.chmod(path, 0o600)
        login_as(ctx, "scramuser", {"password_file": path})
    finally:
        h.remove_tmpdir(tmp)


def check_wrong_password(ctx):
    for user in USERS:
        tgt = ctx.target(ctx.old, env={"OLD_PW": WRONG}, log_level="debug",
                         stores={"old": {"user": user, "database": f"{user}_db",
                                         "password_env": "OLD_PW"}})
        try:
            try:
                tgt.connect().close()
                raise h.CheckFailed(f"{user}: login succeeded with a wrong store password")
            except psycopg2.OperationalError as e:
                message = str(e).strip()
            ctx.log(f"{user} with wrong password: {message}")
            h.check(WRONG not in message, "the error shows the password to the client")
            if tgt.is_proxy:
                h.check("old" in message, f"error does not name the store 'old': {message!r}")
                h.check(tgt.alive(), "proxy died after a failed store login")
            else:
                h.check("password authentication failed" in message, f"unexpected: {message}")
            no_secret_in_logs(ctx, tgt)
        finally:
            tgt.cleanup()
    log = ctx.old.log_text()
    h.check("password authentication failed for user \"md5user\"" in log,
            "the old store never saw a failed md5user login")


CHECKS = [check_md5, check_scram, check_cleartext_password, check_scram_password_file,
          check_wrong_password]

if __name__ == "__main__":
    h.run(CHECKS, setup)
