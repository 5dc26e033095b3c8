#include "compare/divergence.h"

#include <gtest/gtest.h>

#include <regex>

namespace cutover::compare {
namespace {

TEST(DivergenceTest, ToJsonNamesEveryField) {
  Divergence d;
  d.time = "2026-11-21T07:50:01.123Z";
  d.session_id = 17;
  d.transaction_id = 4;
  d.kind = std::string(divergence_kind::kTagMismatch);
  d.statement = "UPDATE t SET x = $1 WHERE id = $2";
  d.parameters = {"5", std::nullopt, hexParameter(std::string("\x00\xff", 2))};
  d.authoritative_store = "old";
  d.secondary_store = "new";
  d.authoritative_outcome = "UPDATE 3";
  d.secondary_outcome = "UPDATE 2";
  EXPECT_EQ(toJson(d), nlohmann::json::parse(R"({
      "time": "2026-11-21T07:50:01.123Z", "session_id": 17, "transaction_id": 4,
      "kind": "tag_mismatch", "statement": "UPDATE t SET x = $1 WHERE id = $2",
      "parameters": ["5", null, "\\x00ff"], "authoritative_store": "old",
      "secondary_store": "new", "authoritative_outcome": "UPDATE 3",
      "secondary_outcome": "UPDATE 2"})"));
}

TEST(DivergenceTest, EmptyParametersAreAnEmptyArray) {
  EXPECT_EQ(toJson(Divergence{})["parameters"], nlohmann::json::array());
}

TEST(DivergenceTest, HexParameter) {
  EXPECT_EQ(hexParameter(""), "\\x");
  EXPECT_EQ(hexParameter("AZ"), "\\x415a");
  EXPECT_EQ(hexParameter(std::string("\x01\x10\xab", 3)), "\\x0110ab");
}

TEST(DivergenceTest, WithParametersAsPostgresLogsThem) {
  EXPECT_EQ(withParameters("SELECT 1", {}), "SELECT 1");
  EXPECT_EQ(withParameters("UPDATE t SET n = $1 WHERE id = $2", {std::string("it's"), std::nullopt}),
            "UPDATE t SET n = $1 WHERE id = $2 [parameters: $1 = 'it''s', $2 = NULL]");
  EXPECT_EQ(withParameters("UPDATE t SET n = $1; ", {std::string("1")}), "UPDATE t SET n = $1 [parameters: $1 = '1'];");
  const std::string big(2000, 'x');
  const std::string shown = withParameters("INSERT INTO t VALUES ($1)", {big});
  EXPECT_EQ(shown, "INSERT INTO t VALUES ($1) [parameters: $1 = '" + std::string(1024, 'x') + "'…]");
}

TEST(DivergenceTest, TimeIsRfc3339UtcWithMilliseconds) {
  EXPECT_TRUE(std::regex_match(nowRfc3339Ms(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << nowRfc3339Ms();
}

}  // namespace
}  // namespace cutover::compare
