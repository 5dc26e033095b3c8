#!/usr/bin/python3
"""Runs one driver-compatibility program directly against PostgreSQL and through cutover.

    run_client.py --cutover BIN --workdir DIR libpq --binary PATH
    run_client.py --cutover BIN --workdir DIR jdbc  --source CutoverJdbcTest.java
    run_client.py --cutover BIN --workdir DIR node  --source tests/clients/node

Two fresh clusters are started: `ref`, which the driver talks to directly, and `old`, which sits
behind the proxy. The driver must pass both ways, print identical result lines both ways, and
leave identical table contents in both databases. Prints `ok <step>` / `FAIL <step>: ...`;
exits 1 on any failure. `--direct` skips the proxy (to check a driver program on its own).
"""

import argparse
import difflib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as h  # noqa: E402

PGJDBC_JAR = "/usr/share/java/postgresql.jar"
DRIVER_TIMEOUT_S = 240
NODE_FILES = ("package.json", "package-lock.json", "test.js")


class SetupFailed(Exception):
    pass


def run_tool(argv, what, cwd=None, timeout=240):
    """Runs a build/install step; raises SetupFailed with its output when it fails."""
    try:
        p = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
    except FileNotFoundError as e:
        raise SetupFailed(f"{what}: {e}")
    except subprocess.TimeoutExpired:
        raise SetupFailed(f"{what}: did not finish within {timeout}s")
    if p.returncode != 0:
        raise SetupFailed(f"{what} failed with exit code {p.returncode}:\n{p.stdout}")


def which(tool, package):
    path = shutil.which(tool)
    if path is None:
        raise SetupFailed(f"{tool} not found: install the Debian package {package}")
    return path


def prepare_libpq(args):
    if not os.access(args.binary, os.X_OK):
        raise SetupFailed(f"{args.binary} is not an executable file (build target libpq_pipeline)")
    return [args.binary]


def prepare_jdbc(args):
    javac = which("javac", "default-jdk-headless")
    java = which("java", "default-jdk-headless")
    if not os.path.exists(PGJDBC_JAR):
        raise SetupFailed(f"{PGJDBC_JAR} missing: install the Debian package libpostgresql-jdbc-java")
    classes = os.path.join(args.workdir, "jdbc-classes")
    os.makedirs(classes, exist_ok=True)
    run_tool([javac, "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-cp", PGJDBC_JAR,
              "-d", classes, args.source], "javac")
    return [java, "-cp", f"{PGJDBC_JAR}:{classes}", "CutoverJdbcTest"]


def prepare_node(args):
    node = which("node", "nodejs")
    npm = which("npm", "npm")
    # Install into a copy in the build tree so the source tree never gets a node_modules.
    copy = os.path.join(args.workdir, "node")
    os.makedirs(copy, exist_ok=True)
    for name in NODE_FILES:
        shutil.copy2(os.path.join(args.source, name), os.path.join(copy, name))
    run_tool([npm, "install", "--no-audit", "--no-fund"], "npm install", cwd=copy)
    return [node, os.path.join(copy, "test.js")]


PREPARE = {"libpq": prepare_libpq, "jdbc": prepare_jdbc, "node": prepare_node}


def run_driver(cmd, endpoint, label):
    """Runs the driver against host/port; returns (exit code, stdout lines, stderr)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PG") or k in ("PGTZ",)}
    env.update(PGHOST=endpoint.host, PGPORT=str(endpoint.port), PGUSER="postgres",
               PGDATABASE="postgres", PGCONNECT_TIMEOUT="10")
    argv = cmd + [endpoint.host, str(endpoint.port), "postgres", "postgres"]
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=DRIVER_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out.splitlines(), f"{label}: killed after {DRIVER_TIMEOUT_S}s"
    return p.returncode, p.stdout.splitlines(), p.stderr


def show_run(label, rc, lines, stderr):
    print(f"--- {label}: exit {rc}")
    for line in lines:
        print(f"    {line}")
    if stderr.strip():
        print(f"--- {label}: driver stderr (tail)")
        for line in stderr.strip().splitlines()[-40:]:
            print(f"    {line}")


def table_contents(cluster):
    """{table: [row text, ...]} for every table of schema public, rows in text order."""
    out = cluster.psql("SELECT string_agg(quote_ident(tablename), ' ' ORDER BY tablename)"
                       " FROM pg_tables WHERE schemaname = 'public';").strip()
    tables = {}
    for table in out.split():
        rows = cluster.psql(f"SELECT x::text FROM {table} AS x ORDER BY 1;")
        tables[table] = rows.splitlines()
    return tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--cutover", help="path of the cutover binary")
    ap.add_argument("--workdir", required=True, help="build directory for compiled drivers")
    ap.add_argument("--direct", action="store_true", help="run only against PostgreSQL")
    sub = ap.add_subparsers(dest="driver", required=True)
    sub.add_parser("libpq").add_argument("--binary", required=True)
    sub.add_parser("jdbc").add_argument("--source", required=True)
    sub.add_parser("node").add_argument("--source", required=True)
    args = ap.parse_args()
    args.workdir = os.path.abspath(args.workdir)

    failures = 0

    def fail(step, why):
        nonlocal failures
        failures += 1
        print(f"FAIL {step}: {why}", flush=True)

    try:
        cmd = PREPARE[args.driver](args)
        print(f"ok prepare_{args.driver}", flush=True)
    except SetupFailed as e:
        fail(f"prepare_{args.driver}", e)
        return 1
    if not args.direct and not (args.cutover and os.access(args.cutover, os.X_OK)):
        fail("setup", f"no cutover binary at {args.cutover!r} (pass --cutover, or --direct)")
        return 1

    try:
        ref = h.PgCluster("ref")
        old = None if args.direct else h.PgCluster("old")
    except h.HarnessError as e:
        fail("clusters", e)
        return 1

    rc, direct_lines, stderr = run_driver(cmd, ref.endpoint(), "direct")
    show_run("direct", rc, direct_lines, stderr)
    if rc == 0 and not any(l.startswith("FAIL") for l in direct_lines):
        print("ok direct", flush=True)
    else:
        fail("direct", f"driver exit {rc} against PostgreSQL directly (see above)")
    if args.direct:
        return 1 if failures else 0

    try:
        proxy = h.Proxy(args.cutover, old=old)
    except h.HarnessError as e:
        fail("proxy_start", e)
        return 1
    rc, proxy_lines, stderr = run_driver(cmd, proxy.endpoint(), "proxy")
    show_run("proxy", rc, proxy_lines, stderr)
    if rc == 0 and not any(l.startswith("FAIL") for l in proxy_lines):
        print("ok proxy", flush=True)
    else:
        fail("proxy", f"driver exit {rc} through cutover (see above)")
        print("--- cutover stderr (tail)")
        for line in proxy.stderr_text().splitlines()[-40:]:
            print(f"    {line}")
    if not proxy.alive():
        fail("proxy_alive", f"cutover exited with {proxy.proc.poll()} during the run")

    if proxy_lines == direct_lines:
        print("ok same_output", flush=True)
    else:
        diff = "\n".join(difflib.unified_diff(direct_lines, proxy_lines, "direct", "proxy",
                                              lineterm=""))
        fail("same_output", f"result lines differ:\n{diff}")

    try:
        ref_tables, old_tables = table_contents(ref), table_contents(old)
    except h.HarnessError as e:
        fail("same_tables", e)
    else:
        differing = sorted(t for t in set(ref_tables) | set(old_tables)
                           if ref_tables.get(t) != old_tables.get(t))
        if differing:
            fail("same_tables", f"tables differ between direct and proxied runs: {differing}")
        elif not ref_tables:
            fail("same_tables", "the driver left no tables to compare")
        else:
            print(f"ok same_tables ({len(ref_tables)} tables)", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        code = main()
    finally:
        h.cleanup_all()
    for report in h.SANITIZER_REPORTS:   # filled by Proxy.cleanup()
        print(f"FAIL sanitizer: the proxy reported a finding in {report}", flush=True)
        code = 1
    sys.exit(code)
