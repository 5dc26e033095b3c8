#include <gtest/gtest.h>

#include <string>

#include "router/statement_rules.h"

namespace cutover::router {
namespace {

struct Case {
  const char* sql;
  const char* reason;  // "" = repeatable
};

// StatementInfo::unrepeatable as the classifier fills it (router/repeatability.h).
const Case kCases[] = {
    // repeatable
    {"SELECT * FROM orders WHERE id = 1", ""},
    {"SELECT * FROM orders WHERE created_at > now() - interval '1 day'", ""},
    {"SELECT * FROM orders o JOIN users u ON u.id = o.user_id AND u.seen < now()", ""},
    {"SELECT user_id, count(*) FROM orders GROUP BY user_id HAVING max(created_at) < now()", ""},
    {"SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM users LIMIT 1)", ""},
    {"SELECT * FROM orders WHERE id IN (SELECT id FROM big ORDER BY id LIMIT 10)", ""},
    {"SELECT DISTINCT user_id FROM orders", ""},
    {"SELECT DISTINCT ON (user_id) * FROM orders ORDER BY user_id, id", ""},
    {"SELECT * FROM orders LIMIT 5", ""},  // the top level's own LIMIT: has_limit
    {"SELECT 1 UNION ALL SELECT 2", ""},
    {"SELECT * FROM myschema.now()", ""},  // not the built-in: could be anything, not flagged
    // not repeatable
    {"SELECT * FROM orders ORDER BY random() LIMIT 10", "random() differs from run to run"},
    {"SELECT * FROM orders WHERE random() < 0.1", "random() differs from run to run"},
    {"SELECT id, gen_random_uuid() FROM orders", "gen_random_uuid() differs from run to run"},
    {"SELECT pg_backend_pid()", "pg_backend_pid() differs from run to run"},
    {"SELECT id, now() FROM orders", "now() in the result reads the clock"},
    {"SELECT clock_timestamp()", "clock_timestamp() in the result reads the clock"},
    {"SELECT pg_catalog.now()", "now() in the result reads the clock"},
    {"SELECT current_timestamp", "CURRENT_TIMESTAMP in the result reads the clock"},
    {"SELECT current_timestamp(3)", "CURRENT_TIMESTAMP in the result reads the clock"},
    {"SELECT localtime", "LOCALTIME in the result reads the clock"},
    {"SELECT current_date - 1", "CURRENT_DATE in the result reads the clock"},
    {"SELECT 'now'::timestamptz", "'now' in the result reads the clock"},
    {"SELECT * FROM orders ORDER BY now() - created_at", "now() in the result reads the clock"},
    {"SELECT * FROM (SELECT id, now() AS t FROM orders) s", "now() in the result reads the clock"},
    {"SELECT * FROM orders TABLESAMPLE SYSTEM (10)", "TABLESAMPLE picks rows by chance"},
    {"SELECT * FROM orders TABLESAMPLE BERNOULLI (5) REPEATABLE (1)", "TABLESAMPLE picks rows by chance"},
    {"SELECT * FROM orders WHERE id IN (SELECT id FROM big LIMIT 10)",
     "LIMIT/OFFSET without ORDER BY in a subquery picks arbitrary rows"},
    {"SELECT * FROM (SELECT * FROM big OFFSET 5) s ORDER BY id",
     "LIMIT/OFFSET without ORDER BY in a subquery picks arbitrary rows"},
    {"(SELECT id FROM a LIMIT 1) UNION ALL (SELECT id FROM b ORDER BY id LIMIT 1)",
     "LIMIT/OFFSET without ORDER BY in a subquery picks arbitrary rows"},
    {"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.x IN (SELECT x FROM v LIMIT 2))",
     "LIMIT/OFFSET without ORDER BY in a subquery picks arbitrary rows"},
    {"SELECT DISTINCT ON (user_id) * FROM orders", "DISTINCT ON without ORDER BY keeps an arbitrary row per group"},
    {"SHOW timezone", "SHOW answers with the server's own setting"},
    {"EXPLAIN SELECT * FROM orders", "EXPLAIN output is the store's own plan"},
    {"EXPLAIN ANALYZE SELECT * FROM orders", "EXPLAIN ANALYZE output holds timings and the store's own plan"},
    {"PREPARE p AS SELECT random()", "random() differs from run to run"},
    {"DECLARE c CURSOR FOR SELECT now()", "now() in the result reads the clock"},
    {"SELECT 1; SELECT random()", "random() differs from run to run"},
};

class Repeatability : public ::testing::TestWithParam<Case> {};

TEST_P(Repeatability, ReasonFromTheParseTree) {
  const Case& c = GetParam();
  StatementInfo info = classifySql(c.sql);
  EXPECT_FALSE(info.parse_error) << c.sql;
  EXPECT_EQ(info.unrepeatable, c.reason) << c.sql;
}

INSTANTIATE_TEST_SUITE_P(Statements, Repeatability, ::testing::ValuesIn(kCases));

TEST(Repeatability, NarrowerThanNondeterministic) {
  // The classifier's nondeterministic flag covers the whole text; a clock read in WHERE is not
  // noise for a shadow comparison.
  StatementInfo info = classifySql("SELECT id FROM orders WHERE created_at > now()");
  EXPECT_TRUE(info.nondeterministic);
  EXPECT_EQ(info.unrepeatable, "");
}

TEST(Repeatability, DeepExpressionDoesNotOverflow) {
  std::string sql = "SELECT 1";
  for (int i = 0; i < 5000; ++i) sql += "+1";
  sql += ", random()";
  EXPECT_EQ(classifySql(sql).unrepeatable, "random() differs from run to run");
}

}  // namespace
}  // namespace cutover::router
