#include "compare/mismatch.h"

#include <gtest/gtest.h>

#include "compare/noise.h"
#include "router/statement_rules.h"
#include "tests/unit/compare/result_builder.h"

namespace cutover::compare {
namespace {

using testing::Column;
using testing::Row;
using testing::digest;

const std::vector<Column> kColumns = {{"id", 23}, {"email", 25}};
const char* const kStatement = "SELECT id, email FROM users WHERE email LIKE 'ann%' ORDER BY id";

Mismatch changedEmail(bool log_values) {
  CompareRules rules;
  rules.ordered = true;
  rules.log_values = log_values;
  ResultDigester old_side = digest(rules, kColumns, {{"1", "ann@example.com"}, {"2", std::nullopt}});
  ResultDigester new_side = digest(rules, kColumns, {{"1", "ann@example.org"}, {"2", std::nullopt}});
  ResultComparison comparison = compareResults(old_side, new_side, rules);
  return mismatchOf(comparison, old_side, new_side, kStatement, rules);
}

TEST(Mismatch, RedactedByDefault) {
  Mismatch m = changedEmail(false);
  m.session_id = 42;
  m.old_ms = 1.5;
  m.new_ms = 2.25;
  m.time = "2026-11-21T07:50:01.123Z";
  nlohmann::json expected = nlohmann::json::parse(R"({
    "time": "2026-11-21T07:50:01.123Z", "session_id": 42,
    "fingerprint": ")" + m.fingerprint + R"(",
    "query": "SELECT id, email FROM users WHERE email LIKE $1 ORDER BY id",
    "kind": "values", "result": "mismatch", "noise": "",
    "detail": "2 rows on each side, different values; first in column email",
    "old_rows": 2, "new_rows": 2, "old_ms": 1.5, "new_ms": 2.25, "old_error": "", "new_error": "",
    "rows": [{"old_row": 0, "new_row": 0,
              "values": [{"column": "email", "old": "<redacted 15 bytes>", "new": "<redacted 15 bytes>"}]}]
  })");
  EXPECT_EQ(toJson(m), expected);
  EXPECT_EQ(m.fingerprint.size(), 16u);
  EXPECT_EQ(toJson(m).dump().find("ann"), std::string::npos);  // neither the literal nor the values
}

TEST(Mismatch, LogValuesKeepsStatementAndValues) {
  Mismatch m = changedEmail(true);
  nlohmann::json json = toJson(m);
  EXPECT_EQ(json["statement"], kStatement);
  EXPECT_EQ(json["rows"][0]["values"][0]["old"], "ann@example.com");
  EXPECT_EQ(json["rows"][0]["values"][0]["new"], "ann@example.org");
}

TEST(Mismatch, ErrorsAndMissingRows) {
  CompareRules rules;
  ResultDigester old_side = digest(rules, kColumns, {{"1", std::nullopt}});
  ResultDigester new_side = testing::failed(rules, "42703", "column \"email\" does not exist");
  Mismatch m = mismatchOf(compareResults(old_side, new_side, rules), old_side, new_side, "SELECT id, email FROM users", rules);
  EXPECT_EQ(m.kind, "error_one_side");
  EXPECT_EQ(m.old_error, "");
  EXPECT_EQ(m.new_error, "42703 column \"email\" does not exist");
  EXPECT_EQ(m.old_rows, 1u);
  EXPECT_FALSE(m.time.empty());

  ResultDigester fewer = digest(rules, kColumns, {});
  m = mismatchOf(compareResults(old_side, fewer, rules), old_side, fewer, "SELECT id, email FROM users", rules);
  nlohmann::json row = toJson(m)["rows"][0];
  EXPECT_EQ(row["old_row"], 0);
  EXPECT_TRUE(row["new_row"].is_null());
  EXPECT_EQ(row["values"][1]["column"], "email");
  EXPECT_TRUE(row["values"][1]["old"].is_null());  // NULL
  EXPECT_TRUE(row["values"][1]["new"].is_null());  // no row
}

TEST(Mismatch, UnparsableStatementKeepsNoText) {
  CompareRules rules;
  ResultDigester a = digest(rules, kColumns, {{"1", "x"}});
  ResultDigester b = digest(rules, kColumns, {{"1", "y"}});
  Mismatch m = mismatchOf(compareResults(a, b, rules), a, b, "SELEC 'secret'", rules);
  EXPECT_EQ(m.fingerprint, "");
  EXPECT_EQ(m.query, "");
  EXPECT_FALSE(toJson(m).contains("statement"));
}

TEST(Noise, FromTheStatement) {
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t ORDER BY random() LIMIT 1")), "random() differs from run to run");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT id, now() FROM t")), "now() in the result reads the clock");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t LIMIT 10")), "LIMIT/OFFSET without ORDER BY picks arbitrary rows");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t OFFSET 10")), "LIMIT/OFFSET without ORDER BY picks arbitrary rows");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t FETCH FIRST 3 ROWS ONLY")),
            "LIMIT/OFFSET without ORDER BY picks arbitrary rows");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t ORDER BY id LIMIT 10")), "");
  EXPECT_EQ(noiseOf(router::classifySql("SELECT * FROM t WHERE created_at > now() - interval '1 day'")), "");
}

}  // namespace
}  // namespace cutover::compare
