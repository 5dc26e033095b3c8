#include "router/classifier.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "router/prepared_statements.h"
#include "router/statement_rules.h"

namespace cutover::router {
namespace {

using K = StatementKind;
using T = TransactionCommand;
using S = SessionCommand;
using Tables = std::vector<std::string>;

struct Case {
  const char* sql;
  StatementKind kind;
  Tables tables = {};
  bool nondeterministic = false;
  bool order_by = false;
  bool limit = false;
  TransactionCommand transaction = T::None;
  SessionCommand session = S::None;
  const char* reason_contains = "";
};

// Every statement is classified uncached and through a Classifier (twice: miss, then hit).
const Case kCases[] = {
    // --- pure reads
    {"SELECT 1", K::Read},
    {"select * from users", K::Read, {"users"}},
    {"SELECT * FROM Users", K::Read, {"users"}},
    {"SELECT * FROM \"Users\"", K::Read, {"Users"}},
    {"SELECT * FROM public.users u JOIN orders o ON o.user_id = u.id", K::Read, {"orders", "public.users"}},
    {"SELECT * FROM mydb.public.users", K::Read, {"mydb.public.users"}},
    {"SELECT id FROM users WHERE id = $1", K::Read, {"users"}},
    {"SELECT id FROM users ORDER BY id", K::Read, {"users"}, false, true},
    {"SELECT id FROM users ORDER BY id LIMIT 10", K::Read, {"users"}, false, true, true},
    {"SELECT id FROM users LIMIT 10", K::Read, {"users"}, false, false, true},
    {"SELECT id FROM users OFFSET 5", K::Read, {"users"}, false, false, true},
    {"SELECT id FROM users FETCH FIRST 3 ROWS ONLY", K::Read, {"users"}, false, false, true},
    {"SELECT * FROM (SELECT id FROM users ORDER BY id LIMIT 5) s", K::Read, {"users"}},
    {"SELECT id FROM a UNION SELECT id FROM b ORDER BY 1", K::Read, {"a", "b"}, false, true},
    {"SELECT id FROM a UNION ALL SELECT id FROM b", K::Read, {"a", "b"}},
    {"SELECT id FROM a INTERSECT SELECT id FROM b", K::Read, {"a", "b"}},
    {"SELECT id FROM a EXCEPT SELECT id FROM b", K::Read, {"a", "b"}},
    {"SELECT count(*) FROM orders", K::Read, {"orders"}},
    {"SELECT sum(total), avg(total), min(total), max(total) FROM orders GROUP BY user_id", K::Read, {"orders"}},
    {"SELECT user_id, count(*) FROM orders GROUP BY user_id HAVING count(*) > 1", K::Read, {"orders"}},
    {"SELECT coalesce(name, 'x'), lower(name), upper(name), length(name) FROM users", K::Read, {"users"}},
    {"SELECT substring(name from 1 for 3), position('a' in name), trim(both ' ' from name) FROM users", K::Read, {"users"}},
    {"SELECT extract(year from created_at), date_trunc('day', created_at) FROM orders", K::Read, {"orders"}},
    {"SELECT created_at AT TIME ZONE 'UTC' FROM orders", K::Read, {"orders"}},
    {"SELECT pg_catalog.count(*) FROM orders", K::Read, {"orders"}},
    {"SELECT * FROM generate_series(1, 10)", K::Read},
    {"SELECT array_agg(id), string_agg(name, ',') FROM users", K::Read, {"users"}},
    {"SELECT data->>'name', data #> '{a,b}', jsonb_array_length(data->'xs') FROM docs", K::Read, {"docs"}},
    {"SELECT jsonb_build_object('a', 1), to_jsonb(u) FROM users u", K::Read, {"users"}},
    {"SELECT row_number() OVER (PARTITION BY user_id ORDER BY id) FROM orders", K::Read, {"orders"}},
    {"SELECT lag(total) OVER w FROM orders WINDOW w AS (ORDER BY id)", K::Read, {"orders"}},
    {"SELECT EXISTS (SELECT 1 FROM orders WHERE user_id = u.id) FROM users u", K::Read, {"orders", "users"}},
    {"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", K::Read, {"orders", "users"}},
    {"SELECT * FROM users u, LATERAL (SELECT * FROM orders o WHERE o.user_id = u.id LIMIT 1) x", K::Read, {"orders", "users"}},
    {"SELECT CASE WHEN a > 1 THEN 'x' ELSE 'y' END, greatest(a, b), least(a, b), nullif(a, b) FROM t", K::Read, {"t"}},
    {"SELECT a::text, CAST(b AS int), a || b FROM t", K::Read, {"t"}},
    {"SELECT 'a' SIMILAR TO 'b', 'x' LIKE 'y%', 'z' ~ 'q'", K::Read},
    {"SELECT version()", K::Read},
    {"SELECT current_setting('search_path')", K::Read},
    {"SELECT current_user, session_user, current_database()", K::Read},
    {"SELECT pg_sleep(0.1)", K::Read},
    {"SELECT to_char(now(), 'YYYY')", K::Read, {}, true},
    {"SELECT now()", K::Read, {}, true},
    {"SELECT CURRENT_TIMESTAMP", K::Read, {}, true},
    {"SELECT current_date, localtimestamp", K::Read, {}, true},
    {"SELECT random()", K::Read, {}, true},
    {"SELECT gen_random_uuid()", K::Read, {}, true},
    {"SELECT clock_timestamp()", K::Read, {}, true},
    {"SELECT 'now'::timestamptz", K::Read, {}, true},
    {"SELECT 'today'::date", K::Read, {}, true},
    {"SELECT '2020-01-01'::date", K::Read},
    {"SELECT * FROM t TABLESAMPLE SYSTEM (10)", K::Read, {"t"}},
    {"SELECT DISTINCT ON (a) a, b FROM t ORDER BY a, b", K::Read, {"t"}, false, true},
    {"WITH x AS (SELECT * FROM users) SELECT * FROM x", K::Read, {"users"}},
    {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", K::Read},
    {"WITH orders AS (SELECT 1 AS id) SELECT * FROM orders, public.orders", K::Read, {"public.orders"}},
    {"VALUES (1, 'a'), (2, 'b')", K::Read},
    {"VALUES (1), (2) ORDER BY 1", K::Read, {}, false, true},
    {"TABLE users", K::Read, {"users"}},
    {"SHOW search_path", K::Read},
    {"SHOW ALL", K::Read},
    {"EXPLAIN SELECT * FROM users", K::Read, {"users"}},
    {"EXPLAIN DELETE FROM users", K::Read, {"users"}},
    {"EXPLAIN (ANALYZE false, VERBOSE) DELETE FROM users", K::Read, {"users"}},
    {"EXPLAIN (ANALYZE off) UPDATE users SET a = 1", K::Read, {"users"}},
    {"EXPLAIN ANALYZE SELECT * FROM users", K::Read, {"users"}},
    {"EXPLAIN (ANALYZE, BUFFERS) SELECT 1", K::Read},
    {"COPY users TO STDOUT", K::Read, {"users"}},
    {"COPY users (id, name) TO STDOUT WITH (FORMAT csv)", K::Read, {"users"}},
    {"COPY (SELECT * FROM users WHERE id > 3) TO STDOUT", K::Read, {"users"}},
    {"SELECT 1 -- trailing comment", K::Read},
    {"/* leading comment; with a semicolon */ SELECT 1", K::Read},
    {"SELECT $$it's; a dollar; quoted string$$", K::Read},
    {"SELECT $tag$ DELETE FROM users; $tag$ AS text", K::Read},
    {"SELECT 'DROP TABLE users; --' AS s", K::Read},
    {"SELECT \"delete\" FROM \"update\"", K::Read, {"update"}},
    {"  \n\tSELECT 1  ", K::Read},
    {"SELECT 1;", K::Read},
    {"SELECT has_table_privilege('users', 'select'), pg_typeof(1), format_type(23, -1)", K::Read},
    {"SELECT pg_relation_size('users'), pg_size_pretty(pg_total_relation_size('users'))", K::Read},
    {"SELECT * FROM pg_catalog.pg_class WHERE relname = 'users'", K::Read, {"pg_catalog.pg_class"}},
    {"SELECT * FROM information_schema.tables", K::Read, {"information_schema.tables"}},
    {"SELECT regexp_replace(name, 'a', 'b'), split_part(name, ',', 1), md5(name) FROM users", K::Read, {"users"}},
    {"SELECT unnest(ARRAY[1,2]), array_length(ARRAY[1], 1), cardinality(ARRAY[1])", K::Read},
    {"SELECT to_tsvector('english', body) @@ to_tsquery('cat') FROM posts", K::Read, {"posts"}},
    {"SELECT (SELECT max(id) FROM orders) AS m", K::Read, {"orders"}},
    {"SELECT * FROM users WHERE name = ANY($1::text[])", K::Read, {"users"}},
    {"SELECT 1 ORDER BY 1 LIMIT ALL", K::Read, {}, false, true, true},

    // --- reads that are not pure
    {"SELECT * FROM users FOR UPDATE", K::Write, {"users"}, false, false, false, T::None, S::None, "FOR UPDATE locks rows"},
    {"SELECT * FROM users WHERE id = 1 FOR NO KEY UPDATE", K::Write, {"users"}, false, false, false, T::None, S::None, "FOR NO KEY UPDATE"},
    {"SELECT * FROM users FOR SHARE", K::Write, {"users"}, false, false, false, T::None, S::None, "FOR SHARE"},
    {"SELECT * FROM users FOR KEY SHARE SKIP LOCKED", K::Write, {"users"}, false, false, false, T::None, S::None, "FOR KEY SHARE"},
    {"SELECT * FROM jobs ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", K::Write, {"jobs"}, false, true, true},
    {"SELECT * FROM (SELECT * FROM users FOR UPDATE) s", K::Write, {"users"}},
    {"SELECT nextval('orders_id_seq')", K::Write, {}, true, false, false, T::None, S::None, "nextval changes a sequence"},
    {"SELECT setval('s', 42)", K::Write, {}, true, false, false, T::None, S::None, "setval"},
    {"SELECT currval('s')", K::Write, {}, true},
    {"SELECT lastval()", K::Write, {}, true},
    {"SELECT pg_catalog.nextval('s')", K::Write, {}, true},
    {"SELECT id, nextval('s') FROM users", K::Write, {"users"}, true},
    {"SELECT my_fn(1)", K::Write, {}, false, false, false, T::None, S::None, "calls function my_fn (not known to be read-only)"},
    {"SELECT public.my_fn(1)", K::Write, {}, false, false, false, T::None, S::None, "calls function public.my_fn"},
    {"SELECT public.lower('A')", K::Write, {}, false, false, false, T::None, S::None, "public.lower"},
    {"SELECT \"Count\"(*) FROM t", K::Write, {"t"}},
    {"SELECT * FROM my_srf(1)", K::Write, {}, false, false, false, T::None, S::None, "my_srf"},
    {"SELECT * FROM users WHERE audit_log(id)", K::Write, {"users"}},
    {"SELECT pg_advisory_lock(1)", K::Write, {}, false, false, false, T::None, S::None, "advisory"},
    {"SELECT pg_try_advisory_xact_lock(1, 2)", K::Write},
    {"SELECT pg_advisory_unlock_all()", K::Write},
    {"SELECT set_config('search_path', 'x', false)", K::Write, {}, false, false, false, T::None, S::None, "set_config"},
    {"SELECT pg_notify('ch', 'payload')", K::Write},
    {"SELECT lo_create(0)", K::Write},
    {"SELECT lo_unlink(1234)", K::Write},
    {"SELECT pg_terminate_backend(123)", K::Write},
    {"SELECT txid_current()", K::Write, {}, true},
    {"SELECT dblink('x', 'select 1')", K::Write},
    {"WITH d AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM d", K::Write, {"users"}, false, false, false, T::None, S::None, "data-modifying CTE (DELETE)"},
    {"WITH u AS (UPDATE users SET n = n + 1 RETURNING id) SELECT count(*) FROM u", K::Write, {"users"}, false, false, false, T::None, S::None, "UPDATE"},
    {"WITH i AS (INSERT INTO log(msg) VALUES ('x') RETURNING id) SELECT id FROM i", K::Write, {"log"}, false, false, false, T::None, S::None, "INSERT"},
    {"WITH a AS (SELECT 1), b AS (DELETE FROM t RETURNING 1) SELECT * FROM a", K::Write, {"t"}},
    {"SELECT * INTO new_users FROM users", K::Ddl, {"new_users", "users"}, false, false, false, T::None, S::None, "SELECT INTO"},
    {"CREATE TABLE archive AS SELECT * FROM orders", K::Ddl, {"archive", "orders"}},
    {"CREATE MATERIALIZED VIEW mv AS SELECT 1", K::Ddl, {"mv"}},
    {"EXPLAIN ANALYZE DELETE FROM users", K::Write, {"users"}, false, false, false, T::None, S::None, "EXPLAIN ANALYZE"},
    {"EXPLAIN (ANALYZE true) UPDATE users SET a = 1", K::Write, {"users"}},
    {"EXPLAIN (ANALYZE 1, FORMAT json) INSERT INTO t VALUES (1)", K::Write, {"t"}},
    {"EXPLAIN (ANALYZE false, ANALYZE true) INSERT INTO t VALUES (1)", K::Write, {"t"}},
    {"EXPLAIN (ANALYZE true, ANALYZE false) INSERT INTO t VALUES (1)", K::Read, {"t"}},
    {"EXPLAIN ANALYZE SELECT * FROM users FOR UPDATE", K::Write, {"users"}},
    {"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", K::Ddl, {"x"}},
    {"EXPLAIN SELECT my_fn()", K::Write},
    {"COPY users FROM STDIN", K::Write, {"users"}, false, false, false, T::None, S::None, "COPY FROM"},
    {"COPY users (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)", K::Write, {"users"}},
    {"COPY users FROM '/tmp/users.csv'", K::Write, {"users"}},
    {"COPY users TO '/tmp/users.csv'", K::Write, {"users"}},
    {"COPY users TO PROGRAM 'gzip > /tmp/u.gz'", K::Write, {"users"}},
    {"COPY (DELETE FROM users RETURNING *) TO STDOUT", K::Write, {"users"}},
    {"COPY (SELECT nextval('s')) TO STDOUT", K::Write, {}, true},

    // --- writes
    {"INSERT INTO users (name) VALUES ('a')", K::Write, {"users"}},
    {"INSERT INTO users (name) VALUES ($1) RETURNING id", K::Write, {"users"}},
    {"INSERT INTO public.users VALUES (DEFAULT, 'x')", K::Write, {"public.users"}},
    {"INSERT INTO users (id, created_at) VALUES (nextval('s'), now())", K::Write, {"users"}, true},
    {"INSERT INTO users (id) VALUES (gen_random_uuid())", K::Write, {"users"}, true},
    {"INSERT INTO archive SELECT * FROM orders WHERE created_at < now() - interval '1 year'", K::Write, {"archive", "orders"}, true},
    {"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET n = t.n + 1", K::Write, {"t"}},
    {"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", K::Write, {"t"}},
    {"UPDATE users SET name = 'b' WHERE id = 1", K::Write, {"users"}},
    {"UPDATE users SET updated_at = CURRENT_TIMESTAMP", K::Write, {"users"}, true},
    {"UPDATE users u SET n = o.n FROM orders o WHERE o.user_id = u.id", K::Write, {"orders", "users"}},
    {"UPDATE accounts SET balance = balance + $1 WHERE aid = $2", K::Write, {"accounts"}},
    {"DELETE FROM users WHERE id = 1", K::Write, {"users"}},
    {"DELETE FROM users USING orders WHERE orders.user_id = users.id", K::Write, {"orders", "users"}},
    {"DELETE FROM users WHERE id = 1 RETURNING *", K::Write, {"users"}},
    {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)", K::Write, {"s", "t"}},
    {"WITH s AS (SELECT 1 AS id) UPDATE t SET v = 1 FROM s WHERE t.id = s.id", K::Write, {"t"}},
    {"TRUNCATE users", K::Write, {"users"}},
    {"TRUNCATE TABLE a, b RESTART IDENTITY CASCADE", K::Write, {"a", "b"}},
    {"CALL my_procedure(1)", K::Write, {}, false, false, false, T::None, S::None, "CALL"},
    {"DO $$ BEGIN PERFORM 1; END $$", K::Write, {}, false, false, false, T::None, S::None, "DO block"},
    {"DO LANGUAGE plpgsql $body$ BEGIN DELETE FROM users; END $body$", K::Write},
    {"LOCK TABLE users IN ACCESS EXCLUSIVE MODE", K::Write, {"users"}, false, false, false, T::None, S::None, "LOCK TABLE"},
    {"LOCK users", K::Write, {"users"}},
    {"NOTIFY channel, 'hello'", K::Write, {}, false, false, false, T::None, S::None, "NOTIFY"},
    {"VACUUM users", K::Write, {"users"}},
    {"VACUUM (ANALYZE, VERBOSE) users", K::Write, {"users"}},
    {"ANALYZE users", K::Write, {"users"}},
    {"CLUSTER users USING users_pkey", K::Write, {"users"}},
    {"REINDEX TABLE users", K::Write, {"users"}},
    {"REFRESH MATERIALIZED VIEW mv", K::Write, {"mv"}},
    {"CHECKPOINT", K::Write},

    // --- DDL
    {"CREATE TABLE users (id bigserial PRIMARY KEY, name text)", K::Ddl, {"users"}},
    {"CREATE TABLE orders (id int, user_id int REFERENCES users(id))", K::Ddl, {"orders", "users"}},
    {"CREATE TEMP TABLE scratch (id int)", K::Ddl, {"scratch"}},
    {"CREATE TABLE IF NOT EXISTS s.t (created timestamptz DEFAULT now())", K::Ddl, {"s.t"}, true},
    {"ALTER TABLE users ADD COLUMN email text", K::Ddl, {"users"}},
    {"ALTER TABLE users RENAME TO customers", K::Ddl, {"users"}},
    {"DROP TABLE users", K::Ddl, {"users"}},
    {"DROP TABLE IF EXISTS a.b, c CASCADE", K::Ddl, {"a.b", "c"}},
    {"DROP VIEW v", K::Ddl, {"v"}},
    {"DROP INDEX users_name_idx", K::Ddl},
    {"DROP FUNCTION my_fn(int)", K::Ddl},
    {"CREATE INDEX CONCURRENTLY users_name_idx ON users (name)", K::Ddl, {"users"}},
    {"CREATE UNIQUE INDEX ON orders (id)", K::Ddl, {"orders"}},
    {"CREATE VIEW v AS SELECT * FROM users", K::Ddl, {"users", "v"}},
    {"CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql", K::Ddl},
    {"CREATE SEQUENCE s", K::Ddl, {"s"}},
    {"ALTER SEQUENCE s RESTART WITH 10", K::Ddl, {"s"}},
    {"CREATE SCHEMA app", K::Ddl},
    {"CREATE EXTENSION IF NOT EXISTS pgcrypto", K::Ddl},
    {"CREATE TYPE mood AS ENUM ('a', 'b')", K::Ddl},
    {"CREATE TRIGGER t AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()", K::Ddl, {"users"}},
    {"COMMENT ON TABLE users IS 'people'", K::Ddl},
    {"GRANT SELECT ON users TO reader", K::Ddl, {"users"}},
    {"REVOKE ALL ON users FROM PUBLIC", K::Ddl, {"users"}},
    {"GRANT reader TO app", K::Ddl},
    {"ALTER SYSTEM SET work_mem = '64MB'", K::Ddl},
    {"CREATE DATABASE x", K::Ddl},
    {"CREATE ROLE app LOGIN", K::Ddl},

    // --- transaction control
    {"BEGIN", K::Transaction, {}, false, false, false, T::Begin},
    {"begin isolation level serializable", K::Transaction, {}, false, false, false, T::Begin},
    {"BEGIN READ ONLY", K::Transaction, {}, false, false, false, T::Begin},
    {"START TRANSACTION", K::Transaction, {}, false, false, false, T::Begin},
    {"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE", K::Transaction, {}, false, false, false, T::Begin},
    {"COMMIT", K::Transaction, {}, false, false, false, T::Commit},
    {"END", K::Transaction, {}, false, false, false, T::Commit},
    {"COMMIT AND CHAIN", K::Transaction, {}, false, false, false, T::Commit},
    {"ROLLBACK", K::Transaction, {}, false, false, false, T::Rollback},
    {"ABORT", K::Transaction, {}, false, false, false, T::Rollback},
    {"SAVEPOINT sp1", K::Transaction, {}, false, false, false, T::Savepoint},
    {"RELEASE SAVEPOINT sp1", K::Transaction, {}, false, false, false, T::Release},
    {"RELEASE sp1", K::Transaction, {}, false, false, false, T::Release},
    {"ROLLBACK TO SAVEPOINT sp1", K::Transaction, {}, false, false, false, T::RollbackToSavepoint},
    {"ROLLBACK TO sp1", K::Transaction, {}, false, false, false, T::RollbackToSavepoint},
    {"PREPARE TRANSACTION 'tx1'", K::Transaction, {}, false, false, false, T::PrepareTransaction},
    {"COMMIT PREPARED 'tx1'", K::Transaction, {}, false, false, false, T::CommitPrepared},
    {"ROLLBACK PREPARED 'tx1'", K::Transaction, {}, false, false, false, T::RollbackPrepared},

    // --- session state
    {"SET search_path TO app, public", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET statement_timeout = 5000", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET LOCAL statement_timeout = 0", K::Session, {}, false, false, false, T::None, S::Set, "SET LOCAL"},
    {"SET SESSION work_mem = '8MB'", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET TIME ZONE 'UTC'", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET TRANSACTION READ ONLY", K::Session, {}, false, false, false, T::None, S::Set, "SET TRANSACTION"},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET CONSTRAINTS ALL DEFERRED", K::Session, {}, false, false, false, T::None, S::Set},
    {"RESET search_path", K::Session, {}, false, false, false, T::None, S::Reset},
    {"RESET ALL", K::Session, {}, false, false, false, T::None, S::Reset},
    {"DISCARD ALL", K::Session, {}, false, false, false, T::None, S::Discard},
    {"DISCARD PLANS", K::Session, {}, false, false, false, T::None, S::Discard},
    {"PREPARE q(int) AS SELECT * FROM users WHERE id = $1", K::Session, {"users"}, false, false, false, T::None, S::Prepare},
    {"PREPARE w AS DELETE FROM users WHERE id = $1", K::Session, {"users"}, false, false, false, T::None, S::Prepare},
    {"EXECUTE q(1)", K::Write, {}, false, false, false, T::None, S::Execute},
    {"DEALLOCATE q", K::Session, {}, false, false, false, T::None, S::Deallocate},
    {"DEALLOCATE PREPARE ALL", K::Session, {}, false, false, false, T::None, S::Deallocate},
    {"LISTEN jobs", K::Session, {}, false, false, false, T::None, S::Listen},
    {"UNLISTEN jobs", K::Session, {}, false, false, false, T::None, S::Unlisten},
    {"UNLISTEN *", K::Session, {}, false, false, false, T::None, S::Unlisten},
    {"LOAD 'auto_explain'", K::Session, {}, false, false, false, T::None, S::Other},
    {"DECLARE c CURSOR FOR SELECT * FROM users ORDER BY id", K::Session, {"users"}, false, true, false, T::None, S::Other},
    {"DECLARE c CURSOR FOR SELECT * FROM users FOR UPDATE", K::Write, {"users"}},
    {"FETCH 10 FROM c", K::Session, {}, false, false, false, T::None, S::Other},
    {"MOVE NEXT IN c", K::Session, {}, false, false, false, T::None, S::Other},
    {"CLOSE c", K::Session, {}, false, false, false, T::None, S::Other},

    // --- multi-statement strings
    {"SELECT 1; SELECT 2", K::Read},
    {"SELECT * FROM a; SELECT * FROM b", K::Read, {"a", "b"}},
    {"SELECT 1; INSERT INTO t VALUES (1)", K::Write, {"t"}, false, false, false, T::None, S::None, "statement 2 of 2: INSERT"},
    {"INSERT INTO t VALUES (1); SELECT * FROM t ORDER BY 1", K::Write, {"t"}},
    {"BEGIN; INSERT INTO t VALUES (1); COMMIT", K::Write, {"t"}, false, false, false, T::Begin},
    {"BEGIN; SELECT * FROM t; COMMIT;", K::Transaction, {"t"}, false, false, false, T::Begin},
    {"SELECT 1; COMMIT", K::Transaction, {}, false, false, false, T::Commit},
    {"SET search_path = x; SELECT 1", K::Session, {}, false, false, false, T::None, S::Set},
    {"SET search_path = x; UPDATE t SET a = 1", K::Write, {"t"}, false, false, false, T::None, S::Set},
    {"CREATE TABLE x (id int); INSERT INTO x VALUES (1)", K::Ddl, {"x"}},
    {"SELECT now(); SELECT 1", K::Read, {}, true},
    {"SELECT 'a;b'; SELECT $$;$$", K::Read},
    {"SELECT 1; /* comment; */ SELECT 2 -- ; more", K::Read},
    {"SELECT 1;;; SELECT 2", K::Read},
    {"BEGIN; SAVEPOINT a; ROLLBACK TO a; COMMIT", K::Transaction, {}, false, false, false, T::Begin},

    // --- unparsable and empty
    {"SELEC 1", K::Write, {}, false, false, false, T::None, S::None, "does not parse"},
    {"SELECT * FROM", K::Write, {}, false, false, false, T::None, S::None, "syntax error"},
    {"SELECT 1; DELET FROM t", K::Write, {}, false, false, false, T::None, S::None, "does not parse"},
    {"SELECT 'unterminated", K::Write},
    {"SELECT $$unterminated", K::Write},
    {"", K::Read, {}, false, false, false, T::None, S::None, "empty"},
    {"   ", K::Read},
    {"-- only a comment", K::Read},
    {";", K::Read},
};

std::string describe(const StatementInfo& info) {
  std::string tables;
  for (const std::string& table : info.tables) tables += table + " ";
  return std::string(toString(info.kind)) + " txn=" + std::string(toString(info.transaction)) +
         " session=" + std::string(toString(info.session)) + " tables=[" + tables + "] reason=" +
         info.reason;
}

void expectCase(const Case& c, const StatementInfo& info) {
  SCOPED_TRACE(std::string(c.sql) + " -> " + describe(info));
  EXPECT_EQ(info.kind, c.kind);
  EXPECT_EQ(info.tables, c.tables);
  EXPECT_EQ(info.nondeterministic, c.nondeterministic);
  EXPECT_EQ(info.top_level_order_by, c.order_by);
  EXPECT_EQ(info.has_limit, c.limit);
  EXPECT_EQ(info.transaction, c.transaction);
  EXPECT_EQ(info.session, c.session);
  EXPECT_NE(info.reason.find(c.reason_contains), std::string::npos);
  EXPECT_FALSE(info.reason.empty());
}

TEST(ClassifierTable, AtLeast150Statements) { EXPECT_GE(std::size(kCases), 150u); }

TEST(ClassifierTable, EveryStatementUncached) {
  for (const Case& c : kCases) expectCase(c, classifySql(c.sql));
}

TEST(ClassifierTable, EveryStatementThroughTheCacheMissThenHit) {
  Classifier classifier;
  for (const Case& c : kCases) expectCase(c, classifier.classify(c.sql));
  EXPECT_EQ(classifier.misses(), std::size(kCases));
  for (const Case& c : kCases) expectCase(c, classifier.classify(c.sql));
  EXPECT_EQ(classifier.hits(), std::size(kCases));
}

TEST(Classifier, ParseErrorFlag) {
  EXPECT_TRUE(classifySql("SELEC 1").parse_error);
  EXPECT_TRUE(classifySql(std::string_view("SELECT 1\0; DROP TABLE t", 23)).parse_error);
  EXPECT_FALSE(classifySql("SELECT 1").parse_error);
  EXPECT_FALSE(classifySql("").parse_error);
}

TEST(Classifier, FillsFromQueryFlag) {
  for (const char* sql : {"CREATE TABLE r AS SELECT random() AS x", "SELECT now() AS at INTO r",
                          "CREATE MATERIALIZED VIEW m AS SELECT 'now'::timestamptz AS at"}) {
    const StatementInfo info = classifySql(sql);
    EXPECT_TRUE(info.fills_from_query) << sql;
    EXPECT_TRUE(info.nondeterministic) << sql;
  }
  EXPECT_FALSE(classifySql("CREATE MATERIALIZED VIEW m AS SELECT random() WITH NO DATA").fills_from_query);
  EXPECT_FALSE(classifySql("CREATE TABLE t (at timestamptz DEFAULT now())").fills_from_query);
}

TEST(Classifier, ChainFlag) {
  EXPECT_TRUE(classifySql("COMMIT AND CHAIN").chain);
  EXPECT_TRUE(classifySql("rollback and chain").chain);
  EXPECT_FALSE(classifySql("COMMIT").chain);
  EXPECT_FALSE(classifySql("COMMIT AND NO CHAIN").chain);
  EXPECT_EQ(classifySql("END AND CHAIN").transaction, TransactionCommand::Commit);
}

TEST(Classifier, MultiStatementFlag) {
  EXPECT_TRUE(classifySql("SELECT 1; SELECT 2").multi_statement);
  EXPECT_FALSE(classifySql("SELECT 1;").multi_statement);
  EXPECT_FALSE(classifySql("SELECT 1 ORDER BY 1; SELECT 2").top_level_order_by);
}

TEST(Classifier, CreatesTemporaryFlag) {
  for (const char* sql : {"CREATE TEMP TABLE t (a int)", "CREATE TEMPORARY TABLE t AS SELECT 1",
                          "CREATE LOCAL TEMP TABLE t (a int) ON COMMIT DROP", "SELECT 1 AS a INTO TEMP t",
                          "CREATE TEMP VIEW v AS SELECT 1", "CREATE TEMP SEQUENCE s",
                          "SELECT 1; CREATE TEMP TABLE t (a int)"}) {
    EXPECT_TRUE(classifySql(sql).creates_temporary) << sql;
  }
  for (const char* sql : {"CREATE TABLE t (a int)", "SELECT * FROM pg_temp.t", "INSERT INTO t VALUES (1)",
                          "SELECT 1 INTO t2", "CREATE UNLOGGED TABLE t (a int)", "DROP TABLE t"}) {
    EXPECT_FALSE(classifySql(sql).creates_temporary) << sql;
  }
}

TEST(Classifier, CatalogFlag) {
  for (const char* sql :
       {"SELECT c.oid, c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(items)$'",
        "SELECT * FROM pg_class", "SELECT column_name FROM information_schema.columns WHERE table_name = 'items'",
        "SELECT pg_relation_size('items')", "SELECT 'items'::regclass::oid", "SELECT oid::regtype FROM pg_type",
        "SELECT 'public.items'::pg_catalog.regclass", "SELECT i.id FROM items i WHERE i.tableoid = 'items'::regclass",
        "SELECT 1; SELECT * FROM pg_namespace", "SELECT pg_catalog.pg_get_userbyid(10)"}) {
    StatementInfo info = classifySql(sql);
    EXPECT_TRUE(info.catalog) << sql;
    EXPECT_EQ(info.kind, StatementKind::Read) << sql;
    EXPECT_TRUE(info.reason.starts_with("catalog read: ") || info.multi_statement) << sql << ": " << info.reason;
  }
  for (const char* sql : {"SELECT * FROM items", "SELECT lower(name) FROM app.items", "SELECT 1::int8",
                          "SELECT * FROM app.pg_like_name", "INSERT INTO items VALUES (1)"}) {
    EXPECT_FALSE(classifySql(sql).catalog) << sql;
  }
}

TEST(Classifier, TransactionScopedFlag) {
  for (const char* sql : {"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", "SET LOCAL work_mem = '64MB'",
                          "SET CONSTRAINTS ALL DEFERRED", "SET TRANSACTION READ ONLY",
                          "SET TRANSACTION SNAPSHOT '00000003-0000001B-1'"}) {
    StatementInfo info = classifySql(sql);
    EXPECT_TRUE(info.transaction_scoped) << sql;
    EXPECT_EQ(info.kind, StatementKind::Session) << sql;
  }
  for (const char* sql : {"SET work_mem = '64MB'", "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                          "RESET work_mem", "SET search_path = app"}) {
    EXPECT_FALSE(classifySql(sql).transaction_scoped) << sql;
  }
}

TEST(Classifier, LearnedWritesAreClassifiedAsWrites) {
  Classifier classifier;
  EXPECT_EQ(classifier.classify("SELECT n FROM v WHERE id = 1").kind, StatementKind::Read);
  classifier.learnWrite("SELECT n FROM v WHERE id = 7", "refused in a read-only transaction (25006): a write");
  const StatementInfo& learned = classifier.classify("SELECT n FROM v WHERE id = 1");   // the same shape
  EXPECT_EQ(learned.kind, StatementKind::Write);
  EXPECT_TRUE(learned.wrappable);
  EXPECT_EQ(learned.reason, "refused in a read-only transaction (25006): a write");
  EXPECT_EQ(classifier.classify("SELECT n FROM v").kind, StatementKind::Read);   // another shape
  EXPECT_EQ(classifier.learnedWrites(), 1u);
  // Learned before it was ever classified (or after it left the cache): applied on the miss.
  Classifier fresh(1);
  fresh.learnWrite("SELECT * FROM w", "why");
  fresh.classify("SELECT 1");   // evicts nothing learned: the set is not the cache
  EXPECT_EQ(fresh.classify("SELECT * FROM w").kind, StatementKind::Write);
}

TEST(Classifier, AllFlag) {
  EXPECT_TRUE(classifySql("DEALLOCATE ALL").all);
  EXPECT_TRUE(classifySql("DISCARD ALL").all);
  EXPECT_TRUE(classifySql("RESET ALL").all);
  EXPECT_TRUE(classifySql("UNLISTEN *").all);
  EXPECT_FALSE(classifySql("DEALLOCATE q").all);
  EXPECT_FALSE(classifySql("DISCARD PLANS").all);
  EXPECT_FALSE(classifySql("UNLISTEN jobs").all);
}

TEST(Classifier, PrepareRecordsNameAndQueryKind) {
  StatementInfo read = classifySql("PREPARE q(int) AS SELECT * FROM users WHERE id = $1 ORDER BY id");
  EXPECT_EQ(read.prepared_name, "q");
  EXPECT_EQ(read.prepared_kind, K::Read);
  EXPECT_TRUE(read.top_level_order_by);
  StatementInfo write = classifySql("PREPARE w AS UPDATE users SET n = 1");
  EXPECT_EQ(write.prepared_name, "w");
  EXPECT_EQ(write.prepared_kind, K::Write);
  EXPECT_EQ(classifySql("PREPARE l AS SELECT * FROM t FOR UPDATE").prepared_kind, K::Write);
  StatementInfo execute = classifySql("EXECUTE q(1)");
  EXPECT_EQ(execute.prepared_name, "q");
  EXPECT_EQ(execute.prepared_kind, K::Read);
  EXPECT_EQ(classifySql("EXECUTE q(nextval('s'))").prepared_kind, K::Write);
  EXPECT_EQ(classifySql("DEALLOCATE q").prepared_name, "q");
}

TEST(PreparedStatements, ExecuteTakesTheKindRecordedAtPrepare) {
  PreparedStatements prepared;
  prepared.apply(classifySql("PREPARE q(int) AS SELECT * FROM users WHERE id = $1"));
  prepared.apply(classifySql("PREPARE w AS DELETE FROM orders"));
  EXPECT_EQ(prepared.size(), 2u);

  StatementInfo q = prepared.resolve(classifySql("EXECUTE q(1)"));
  EXPECT_EQ(q.kind, K::Read);
  EXPECT_EQ(q.session, S::Execute);
  EXPECT_EQ(q.tables, Tables{"users"});
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE w")).kind, K::Write);
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE w")).tables, Tables{"orders"});
  // A writing argument makes even a prepared read a write.
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE q(nextval('s'))")).kind, K::Write);
  // Unknown names stay writes.
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE nope")).kind, K::Write);
  // Non-EXECUTE statements pass through.
  EXPECT_EQ(prepared.resolve(classifySql("SELECT 1")).kind, K::Read);

  prepared.apply(classifySql("DEALLOCATE q"));
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE q(1)")).kind, K::Write);
  EXPECT_EQ(prepared.size(), 1u);
  prepared.apply(classifySql("PREPARE q AS SELECT 1"));
  prepared.apply(classifySql("DISCARD PLANS"));
  EXPECT_EQ(prepared.size(), 2u);
  prepared.apply(classifySql("DISCARD ALL"));
  EXPECT_EQ(prepared.size(), 0u);
  prepared.apply(classifySql("PREPARE q AS SELECT 1"));
  prepared.apply(classifySql("DEALLOCATE ALL"));
  EXPECT_EQ(prepared.size(), 0u);
}

TEST(PreparedStatements, RedefinitionReplaces) {
  PreparedStatements prepared;
  prepared.apply(classifySql("PREPARE p AS SELECT 1"));
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE p")).kind, K::Read);
  prepared.apply(classifySql("DEALLOCATE p"));
  prepared.apply(classifySql("PREPARE p AS INSERT INTO t VALUES (1)"));
  EXPECT_EQ(prepared.resolve(classifySql("EXECUTE p")).kind, K::Write);
}

TEST(Classifier, DeepOperatorChainsAreWritesNotCrashes) {
  // libpg_query recurses per nesting level; 100,000 levels would overflow the stack.
  std::string chain = "SELECT 1";
  for (int i = 0; i < 100000; ++i) chain += "+1";
  StatementInfo deep = classifySql(chain);
  EXPECT_EQ(deep.kind, K::Write);
  EXPECT_NE(deep.reason.find("too many operators"), std::string::npos);
  std::string casts = "SELECT 1";
  for (int i = 0; i < 20000; ++i) casts += "::int";
  EXPECT_EQ(classifySql(casts).kind, K::Write);
  // Long but flat statements are still parsed: a 50,000-value IN list stays a read.
  std::string in_list = "SELECT * FROM t WHERE id IN (0";
  for (int i = 1; i < 50000; ++i) in_list += ", " + std::to_string(i);
  in_list += ")";
  EXPECT_EQ(classifySql(in_list).kind, K::Read);
  // Moderately deep chains parse normally.
  std::string moderate = "SELECT 1";
  for (int i = 0; i < 4000; ++i) moderate += " + 1";
  EXPECT_EQ(classifySql(moderate).kind, K::Read);
}

TEST(Classifier, ExplainAnalyseSpelling) {
  EXPECT_EQ(classifySql("EXPLAIN ANALYSE DELETE FROM t").kind, K::Write);
  EXPECT_EQ(classifySql("EXPLAIN (ANALYSE) DELETE FROM t").kind, K::Write);
  EXPECT_EQ(classifySql("EXPLAIN (ANALYZE 0) DELETE FROM t").kind, K::Read);
}

TEST(ClassifierCache, HitsAndMissesAreCountedByExactText) {
  Classifier classifier;
  classifier.classify("SELECT 1");
  classifier.classify("SELECT 1");
  classifier.classify("select 1");  // different text, different entry
  EXPECT_EQ(classifier.misses(), 2u);
  EXPECT_EQ(classifier.hits(), 1u);
  EXPECT_EQ(classifier.cacheSize(), 2u);
}

TEST(ClassifierCache, EvictsLeastRecentlyUsedByEntries) {
  // Distinct by name: texts that differ only in numbers share an entry (cache_key.h).
  Classifier classifier(2);
  classifier.classify("SELECT a");
  classifier.classify("SELECT b");
  classifier.classify("SELECT a");                    // a is now the most recent
  classifier.classify("INSERT INTO t VALUES (1)");    // evicts b
  EXPECT_EQ(classifier.cacheSize(), 2u);
  uint64_t misses = classifier.misses();
  classifier.classify("SELECT a");
  EXPECT_EQ(classifier.misses(), misses);
  classifier.classify("SELECT b");
  EXPECT_EQ(classifier.misses(), misses + 1);
}

TEST(ClassifierCache, BoundedByTextBytes) {
  Classifier classifier(1000, 1600);  // entries up to 100 bytes are cached
  std::string padding(80, ' ');
  for (int i = 0; i < 100; ++i) classifier.classify("SELECT c" + std::to_string(i) + padding);
  EXPECT_LE(classifier.cacheBytes(), 1600u);
  EXPECT_GE(classifier.cacheSize(), 15u);
  EXPECT_LE(classifier.cacheSize(), 19u);
}

TEST(ClassifierCache, LongTextIsClassifiedButNotCached) {
  Classifier classifier(10, 1600);
  std::string long_text = "SELECT 1" + std::string(200, ' ');
  EXPECT_EQ(classifier.classify(long_text).kind, K::Read);
  EXPECT_EQ(classifier.cacheSize(), 0u);
  EXPECT_EQ(classifier.classify("DELETE FROM t" + std::string(200, ' ')).kind, K::Write);
}

TEST(ClassifierCache, LongLiteralsDoNotChangeTheAnswer) {
  Classifier classifier(10, 1600);
  const std::string hex = "'\\x" + std::string(4 << 20, 'a') + "'";
  const StatementInfo& insert = classifier.classify("INSERT INTO blobs VALUES (1, " + hex + "::bytea)");
  EXPECT_EQ(insert.kind, K::Write);
  EXPECT_EQ(insert.tables, Tables{"blobs"});
  EXPECT_FALSE(insert.parse_error);
  const StatementInfo& read = classifier.classify("SELECT length($x$" + std::string(1 << 20, '+') + "$x$) FROM t");
  EXPECT_EQ(read.kind, K::Read) << read.reason;   // the constant's '+' signs are not operators
  EXPECT_EQ(read.tables, Tables{"t"});
  EXPECT_EQ(classifier.classify("SELECT nextval('s') /* " + std::string(5000, 'x') + " */").kind, K::Write);
  EXPECT_TRUE(classifier.classify("SELECT '" + std::string(5000, 'x')).parse_error);   // unterminated
  EXPECT_EQ(classifier.cacheSize(), 0u);
}

TEST(ClassifierCache, ReferenceSurvivesUntilNextClassify) {
  Classifier classifier(1);
  const StatementInfo& info = classifier.classify("DELETE FROM users");
  EXPECT_EQ(info.kind, K::Write);
  EXPECT_EQ(info.tables, Tables{"users"});
}

}  // namespace
}  // namespace cutover::router
