#include "router/cache_key.h"

#include <gtest/gtest.h>

#include <string>

#include "router/classifier.h"

namespace cutover::router {
namespace {

std::string key(std::string_view sql) {
  std::string out;
  cacheKey(sql, out);
  return out;
}

TEST(CacheKey, NumbersShareAKey) {
  EXPECT_EQ(key("SELECT abalance FROM pgbench_accounts WHERE aid = 17"),
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 982134"));
  EXPECT_EQ(key("UPDATE t SET v = v + 1.5 WHERE id = 3"), key("UPDATE t SET v = v + 22.75e-3 WHERE id = 40"));
  EXPECT_EQ(key("SELECT .5, 5., 1e10"), key("SELECT .7, 9., 3E+2"));
  EXPECT_EQ(key("SELECT * FROM t LIMIT 1 OFFSET 0"), key("SELECT * FROM t LIMIT 100 OFFSET 2000"));
}

TEST(CacheKey, NamesCommentsAndParametersAreKept) {
  EXPECT_NE(key("SELECT * FROM t1"), key("SELECT * FROM t2"));
  EXPECT_NE(key("SELECT * FROM tä1"), key("SELECT * FROM tä2"));
  EXPECT_NE(key("SELECT * FROM \"7\""), key("SELECT * FROM \"8\""));
  EXPECT_NE(key("SELECT $1"), key("SELECT $2"));
  EXPECT_NE(key("SELECT 1 -- 1\n"), key("SELECT 1 -- 2\n"));
  EXPECT_NE(key("SELECT /* 1 /* 2 */ 3 */ 4"), key("SELECT /* 1 /* 2 */ 5 */ 4"));
  // Token structure is kept: two numbers stay two.
  EXPECT_NE(key("SELECT 1.2.3"), key("SELECT 4"));
}

TEST(CacheKey, StringValuesShareAKey) {
  EXPECT_EQ(key("SELECT * FROM users WHERE email = 'a@x.org' AND status = 'active'"),
            key("SELECT * FROM users WHERE email = 'bob@y.org' AND status = 'gone'"));
  EXPECT_EQ(key("SELECT * FROM t WHERE c IN ('a', 'b') OR d LIKE 'x%'"),
            key("SELECT * FROM t WHERE c IN ('c', 'd') OR d LIKE 'y%'"));
  EXPECT_EQ(key("INSERT INTO t (a, b) VALUES ('it''s', 1) RETURNING 'x'"),
            key("INSERT INTO t (a, b) VALUES ('other', 2) RETURNING 'y'"));
  EXPECT_EQ(key("UPDATE t SET note = E'a\\'b' WHERE k = U&'d\\0061t'"), key("UPDATE t SET note = E'c' WHERE k = U&'z'"));
  EXPECT_EQ(key("SELECT 'a1'"), key("SELECT 'a2'"));
  EXPECT_EQ(key("SELECT f($$ 1 $$, $q$x$q$)"), key("SELECT f($$ 2 $$, $q$y$q$)"));
  EXPECT_EQ(key("SELECT CASE WHEN a = 'x' THEN 'y' ELSE 'z' END"), key("SELECT CASE WHEN a = '1' THEN '2' ELSE '3' END"));
}

TEST(CacheKey, StringsWhoseValueCanMatterAreKept) {
  EXPECT_NE(key("SELECT 'now'::timestamp"), key("SELECT 'epoch'::timestamp"));
  EXPECT_NE(key("SELECT 'a' :: regclass"), key("SELECT 'b' :: regclass"));
  EXPECT_NE(key("SELECT * FROM t WHERE ts > 'now'"), key("SELECT * FROM t WHERE ts > '2020-01-01'"));
  EXPECT_NE(key("INSERT INTO t VALUES ('Tomorrow 10:00')"), key("INSERT INTO t VALUES ('2020-01-02 10:00')"));
  EXPECT_NE(key("SELECT interval '1 day'"), key("SELECT interval '2 days'"));
  EXPECT_NE(key("SELECT timestamptz '2020-01-01'"), key("SELECT timestamptz '2021-01-01'"));
  EXPECT_NE(key("SELECT B'01'"), key("SELECT B'10'"));
  EXPECT_NE(key("COPY t FROM '/a'"), key("COPY t FROM '/b'"));
  EXPECT_NE(key("EXPLAIN (FORMAT 'json') SELECT 1"), key("EXPLAIN (FORMAT 'text') SELECT 1"));
  EXPECT_NE(key("SET search_path TO 'a'"), key("SET search_path TO 'b'"));
  EXPECT_NE(key("DO $$ BEGIN END $$"), key("DO $$ BEGIN PERFORM 1; END $$"));
  EXPECT_NE(key("SELECT E'\\'1'::text"), key("SELECT E'\\'2'::text"));
}

TEST(CacheKey, UnterminatedTextIsItsOwnKey) {
  EXPECT_EQ(key("SELECT 'abc 1"), "SELECT 'abc 1");
  EXPECT_EQ(key("SELECT /* 1"), "SELECT /* 1");
  EXPECT_EQ(key("SELECT $x$ 1"), "SELECT $x$ 1");
}

TEST(WithoutLongLiterals, ElidesOnlyLongConstantsAndComments) {
  std::string out;
  const std::string long_text(20, 'x');
  EXPECT_TRUE(withoutLongLiterals("INSERT INTO t VALUES (1, E'" + long_text + "', 'short', $q$" + long_text +
                                      "$q$) -- " + long_text + "\n",
                                  10, out));
  EXPECT_EQ(out, "INSERT INTO t VALUES (1, E'', 'short', $$$$)  ");
  EXPECT_TRUE(withoutLongLiterals("SELECT /* " + long_text + " */ 'it''s " + long_text + "', \"" + long_text + "\"",
                                  10, out));
  EXPECT_EQ(out, "SELECT   '', \"" + long_text + "\"");   // identifiers are kept
  EXPECT_FALSE(withoutLongLiterals("SELECT 'short'", 10, out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(withoutLongLiterals("SELECT '" + long_text, 10, out));   // unterminated
  EXPECT_EQ(out, "");
}

TEST(CacheKey, ClassifierHitsAcrossNumbersWithTheSameAnswer) {
  Classifier classifier;
  const StatementInfo first = classifier.classify("SELECT * FROM accounts WHERE id = 1 FOR UPDATE");
  const StatementInfo second = classifier.classify("SELECT * FROM accounts WHERE id = 2 FOR UPDATE");
  EXPECT_EQ(classifier.hits(), 1u);
  EXPECT_EQ(first.kind, second.kind);
  EXPECT_EQ(first.tables, second.tables);
  // Other string values: the same entry, the same answer.
  classifier.classify("SELECT * FROM accounts WHERE name = 'alice' FOR UPDATE");
  const StatementInfo named = classifier.classify("SELECT * FROM accounts WHERE name = 'bob' FOR UPDATE");
  EXPECT_EQ(classifier.hits(), 2u);
  EXPECT_EQ(named.kind, first.kind);
  // A clock value is not another value: its own entry, flagged.
  EXPECT_FALSE(classifier.classify("SELECT * FROM accounts WHERE name = 'x'::text").nondeterministic);
  EXPECT_TRUE(classifier.classify("SELECT * FROM accounts WHERE name = 'now'::timestamptz::text").nondeterministic);
  // A different table is a different entry.
  const uint64_t misses = classifier.misses();
  classifier.classify("SELECT * FROM accounts2 WHERE id = 1");
  EXPECT_EQ(classifier.misses(), misses + 1);
}

}  // namespace
}  // namespace cutover::router
