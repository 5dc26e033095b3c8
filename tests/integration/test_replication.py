#!/usr/bin/python3
"""Replication connections (startup parameter `replication`) through cutover.

By default a client asking for a replication connection (replication=database, true, on, 1…)
is refused with FATAL 0A000 before anything reaches a store; with
`allow_replication_connections: true` it is passed through to the authoritative store only,
whatever the flags (dual writes, a 100 % read ramp): IDENTIFY_SYSTEM answers the old store's
system identifier, a slot created exists on old only, and its stream carries a write made
through the proxy.

With --direct the refusal is PostgreSQL's own for a role without the REPLICATION attribute
(42501), and the allowed case connects to old directly.
"""

import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

psycopg2 = h.import_psycopg2()
import psycopg2.extras  # noqa: E402

REPLICATION_HBA = ["host replication all 127.0.0.1/32 trust"]
SLOT = "cutover_it_slot"
ROUTED_FLAGS = {"writes": "dual", "mirror": "sync", "reads_new_percent": 100, "shadow_percent": 0}


def setup(ctx):
    settings = {"wal_level": "logical", "max_wal_senders": 10, "max_replication_slots": 10}
    old = ctx.cluster("old", hba=REPLICATION_HBA, **settings)
    new = ctx.cluster("new", hba=REPLICATION_HBA, **settings)
    # --direct: a role PostgreSQL refuses replication connections to (no REPLICATION attribute).
    old.psql("CREATE ROLE norepl LOGIN")
    for c in (old, new):
        c.psql("CREATE TABLE events (id int PRIMARY KEY, what text)")
    return {"old": old, "new": new}


def system_id(cluster):
    return cluster.psql("SELECT system_identifier FROM pg_control_system()").strip()


def slots(cluster):
    return cluster.psql("SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots").strip()


def proxy_for(ctx, **overrides):
    return ctx.target(ctx.old, new=ctx.new, flags=ROUTED_FLAGS, **overrides)


def check_refused_by_default(ctx):
    tgt = proxy_for(ctx)
    user = "postgres" if tgt.is_proxy else "norepl"
    want_code = "0A000" if tgt.is_proxy else "42501"
    try:
        for value in ("database", "true", "on", "1", "yes"):
            try:
                sock, _, _ = h.raw_login(tgt.port, user=user, replication=value)
                sock.close()
                raise h.CheckFailed(f"replication={value}: the connection was accepted")
            except h.StartupError as e:
                f = e.fields
                ctx.log(f"replication={value}: {f.get('S')} {f.get('C')} {f.get('M')} / {f.get('H')}")
                h.check_eq((f.get("S"), f.get("C")), ("FATAL", want_code), f"replication={value}: severity, SQLSTATE")
                if tgt.is_proxy:
                    h.check_eq(f.get("M"), f"cutover does not accept replication connections (replication={value})",
                               "message")
                    h.check("allow_replication_connections: true" in f.get("H", ""),
                            f"the hint names the option that allows it: {f}")
        # A real client: psql with a replication connection string.
        argv, env = tgt.psql_args(user)
        argv = argv[:-2] + ["-d", "dbname=postgres replication=database"]
        p = h.subprocess.run(argv + ["-c", "CREATE_REPLICATION_SLOT psql_slot LOGICAL test_decoding"],
                             stdout=h.subprocess.PIPE, stderr=h.subprocess.STDOUT, text=True, env=env, timeout=60)
        ctx.log(f"psql replication=database: exit {p.returncode}: {p.stdout.strip()}")
        h.check_eq(p.returncode, 2, "psql exit code (connection refused)")
        want = ("cutover does not accept replication connections (replication=database)" if tgt.is_proxy
                else "must be superuser or replication role to start walsender")
        h.check(want in p.stdout, f"psql output lacks {want!r}: {p.stdout!r}")
        # psycopg2's replication connection.
        try:
            psycopg2.connect(tgt.dsn(user), connection_factory=psycopg2.extras.LogicalReplicationConnection).close()
            raise h.CheckFailed("psycopg2 LogicalReplicationConnection accepted")
        except psycopg2.OperationalError as e:
            ctx.log(f"psycopg2 LogicalReplicationConnection: {str(e).strip()}")
            h.check(want in str(e), f"psycopg2 error lacks {want!r}: {e}")
        # Nothing reached a store: no slot anywhere.
        h.check_eq(slots(ctx.old), "", "replication slots on old")
        h.check_eq(slots(ctx.new), "", "replication slots on new")
        # Not a replication connection: replication=false (and an invalid value, as PostgreSQL).
        sock, _, _ = h.raw_login(tgt.port, user=user, replication="false")
        rows, _, err = h.raw_query(sock, "SELECT 'normal session'")
        sock.close()
        h.check_eq((rows, err), ([("normal session",)], None), "replication=false is a normal session")
        try:
            sock, _, _ = h.raw_login(tgt.port, user=user, replication="maybe")
            sock.close()
            raise h.CheckFailed("replication=maybe accepted")
        except h.StartupError as e:
            h.check_eq((e.fields.get("C"), e.fields.get("M")),
                       ("22023", 'invalid value for parameter "replication": "maybe"'), "replication=maybe")
    finally:
        tgt.cleanup()


def check_allowed_goes_to_the_authoritative_store_only(ctx):
    tgt = proxy_for(ctx, allow_replication_connections=True)
    old_id, new_id = system_id(ctx.old), system_id(ctx.new)
    h.check(old_id != new_id, f"the two clusters have distinct system ids ({old_id})")
    repl = psycopg2.connect(tgt.dsn(), connection_factory=psycopg2.extras.LogicalReplicationConnection)
    try:
        cur = repl.cursor()
        cur.execute("IDENTIFY_SYSTEM")
        row = cur.fetchone()
        ctx.log(f"IDENTIFY_SYSTEM: {row}; old {old_id}, new {new_id}")
        h.check_eq(str(row[0]), old_id, "IDENTIFY_SYSTEM systemid (the old store's)")
        h.check_eq(row[3], "postgres", "IDENTIFY_SYSTEM dbname")
        cur.create_replication_slot(SLOT, output_plugin="test_decoding")
        h.check_eq(slots(ctx.old), SLOT, "replication slots on old")
        h.check_eq(slots(ctx.new), "", "replication slots on new (never mirrored)")
        # A write through the proxy (dual: on both stores) shows in old's stream.
        w = tgt.connect()
        w.autocommit = True
        with w.cursor() as wc:
            wc.execute("INSERT INTO events VALUES (1, 'through the proxy')")
        w.close()
        if tgt.is_proxy:
            h.check_eq(ctx.new.psql("SELECT what FROM events WHERE id = 1").strip(), "through the proxy",
                       "the write mirrored to new")
        cur.start_replication(slot_name=SLOT, decode=True)
        seen = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("INSERT" in s for s in seen):
            msg = cur.read_message()
            if msg is None:
                select.select([cur], [], [], 1.0)
                continue
            seen.append(msg.payload)
            msg.cursor.send_feedback(flush_lsn=msg.data_start)
        ctx.log(f"decoded: {seen}")
        h.check(any("table public.events: INSERT: id[integer]:1 what[text]:'through the proxy'" in s for s in seen),
                f"the slot's stream carries the insert: {seen}")
    finally:
        repl.close()
        tgt.cleanup()
        for c in (ctx.old, ctx.new):
            c.psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{SLOT}'")
            c.psql("TRUNCATE events")
    # A physical replication connection (replication=true) too.
    tgt = proxy_for(ctx, allow_replication_connections=True)
    try:
        phys = psycopg2.connect(tgt.dsn(), connection_factory=psycopg2.extras.PhysicalReplicationConnection)
        try:
            cur = phys.cursor()
            cur.execute("IDENTIFY_SYSTEM")
            row = cur.fetchone()
            h.check_eq((str(row[0]), row[3]), (old_id, None), "physical IDENTIFY_SYSTEM (systemid, no dbname)")
        finally:
            phys.close()
    finally:
        tgt.cleanup()


CHECKS = [check_refused_by_default, check_allowed_goes_to_the_authoritative_store_only]

if __name__ == "__main__":
    h.run(CHECKS, setup)
