#!/usr/bin/python3
"""ORMs and drivers through cutover's dual-write (issue 13): the stores end identical.

Two real PostgreSQL 15 clusters behind the real proxy, `writes: dual`, `mirror: sync` then
`mirror: async`. tests/clients/orm/orm.js (npm: pg, postgres, knex, sequelize, typeorm, installed
from its package-lock.json into a temporary copy) writes into a table whose bigserial key,
gen_random_uuid(), now() and random() the store picks, in each library's own forms (unnamed and
named statements, pipelining, transactions, RETURNING, upserts, UPDATE … clock_timestamp()).
Afterwards every row is identical on old and new, every column compared, and nothing is
journaled. `--direct`: the script runs against old alone (to check the script itself).
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_dual_write import DualWrite, fresh_db, check_same_contents, setup, wait_drained  # noqa: E402

ORM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients", "orm")
SCHEMA = """
CREATE TABLE items (
  id bigserial PRIMARY KEY,
  u uuid DEFAULT gen_random_uuid(),
  created_at timestamptz DEFAULT now(),
  r float8 DEFAULT random(),
  note text UNIQUE
);
"""
_installed = {}


def installed():
    """A temporary copy of tests/clients/orm with its node_modules (npm ci, once per run)."""
    if "dir" not in _installed:
        npm = shutil.which("npm")
        h.check(npm and shutil.which("node"), "node and npm are needed (the setup script installs nodejs and npm)")
        copy = h.TmpDir("orm").path
        for name in ("package.json", "package-lock.json", "orm.js"):
            shutil.copy(os.path.join(ORM_DIR, name), copy)
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=copy, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
        h.check(p.returncode == 0, f"npm ci in {copy} failed:\n{p.stdout[-3000:]}")
        _installed["dir"] = copy
    return _installed["dir"]


def run_orms(port, db):
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="postgres", PGDATABASE=db)
    p = subprocess.run(["node", "orm.js"], cwd=installed(), env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=240)
    h.check(p.returncode == 0, f"orm.js failed (exit {p.returncode}):\n{p.stdout[-4000:]}")
    steps = [line for line in p.stdout.splitlines() if line.startswith("ok ")]
    h.check_eq(len(steps), 5, f"orm.js steps: {p.stdout[-2000:]}")


def check_orms_leave_identical_stores(ctx):
    for mirror in ("sync", "async"):
        db = f"orm_{mirror}"
        fresh_db(ctx, db)
        for c in ([ctx.old] if ctx.direct else [ctx.old, ctx.new]):
            c.psql(SCHEMA, db=db)
        dw = DualWrite(ctx, mirror=mirror)
        try:
            run_orms(dw.endpoint().port, db)
            if not ctx.direct and mirror == "async":
                wait_drained(dw, "the ORMs' writes")
            contents = check_same_contents(ctx, db, dw=dw)
            h.check_eq(len(contents["public.items"][1]), 33, f"{mirror}: rows written")
            if not ctx.direct:
                h.check_eq(dw.journal(), [], f"{mirror}: divergences.jsonl")
        finally:
            dw.stop()


CHECKS = [check_orms_leave_identical_stores]

if __name__ == "__main__":
    h.run(CHECKS, setup)
