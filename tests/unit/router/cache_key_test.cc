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

TEST(CacheKey, NamesStringsCommentsAndParametersAreKept) {
  EXPECT_NE(key("SELECT * FROM t1"), key("SELECT * FROM t2"));
  EXPECT_NE(key("SELECT * FROM tä1"), key("SELECT * FROM tä2"));
  EXPECT_NE(key("SELECT * FROM \"7\""), key("SELECT * FROM \"8\""));
  EXPECT_NE(key("SELECT 'a1'"), key("SELECT 'a2'"));
  EXPECT_NE(key("SELECT 'now'::timestamp"), key("SELECT 'epoch'::timestamp"));
  EXPECT_NE(key("SELECT E'\\'1'"), key("SELECT E'\\'2'"));
  EXPECT_NE(key("SELECT $1"), key("SELECT $2"));
  EXPECT_NE(key("SELECT 1 -- 1\n"), key("SELECT 1 -- 2\n"));
  EXPECT_NE(key("SELECT /* 1 /* 2 */ 3 */ 4"), key("SELECT /* 1 /* 2 */ 5 */ 4"));
  EXPECT_NE(key("SELECT $f$ 1 $f$"), key("SELECT $f$ 2 $f$"));
  EXPECT_NE(key("SELECT $$ 1 $$"), key("SELECT $$ 2 $$"));
  // Token structure is kept: two numbers stay two.
  EXPECT_NE(key("SELECT 1.2.3"), key("SELECT 4"));
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
  // A different table is a different entry.
  classifier.classify("SELECT * FROM accounts2 WHERE id = 1");
  EXPECT_EQ(classifier.misses(), 2u);
}

}  // namespace
}  // namespace cutover::router
