#include "migrate/chunk_sql.h"

#include <gtest/gtest.h>

#include "tests/unit/migrate/plans.h"

namespace cutover::migrate {
namespace {

using testing::column;
using testing::orders;
using testing::planOf;

TEST(ChunkSql, RowEncodingTrimsNumericScaleUnlessConfigured) {
  EXPECT_EQ(rowEncoding(planOf(orders())),
            "ROW(\"id\", \"note\", trim_scale(\"amount\"), \"score\")::text");
  config::CompareConfig exact;
  exact.numeric_trailing_zeros = false;
  EXPECT_EQ(rowEncoding(planOf(orders(), exact)), "ROW(\"id\", \"note\", \"amount\", \"score\")::text");
}

TEST(ChunkSql, ChecksumOverAHalfOpenRange) {
  const Sql sql = checksumSql(planOf(orders()), KeyRange{KeyValues{"10"}, KeyValues{"20"}});
  EXPECT_EQ(sql.text,
            "SELECT count(*), coalesce(sum(hashtextextended(ROW(\"id\", \"note\", "
            "trim_scale(\"amount\"), \"score\")::text, 0)), 0) FROM \"public\".\"orders\" "
            "WHERE (\"id\") > ($1::bigint) AND (\"id\") <= ($2::bigint)");
  ASSERT_EQ(sql.params.size(), 2u);
  EXPECT_EQ(sql.params[0], "10");
  EXPECT_EQ(sql.params[1], "20");
  EXPECT_EQ(checksumSql(planOf(orders()), KeyRange{}).params.size(), 0u);
  const Sql open_end = checksumSql(planOf(orders()), KeyRange{KeyValues{"7"}, std::nullopt});
  EXPECT_TRUE(open_end.text.ends_with("WHERE (\"id\") > ($1::bigint)")) << open_end.text;
}

TEST(ChunkSql, CompositeTextKeyComparedUnderCollateC) {
  TableSchema t{"app", "Lines", {column("region", "text", 25, true), column("n", "integer", 23),
                                 column("v", "text", 25, true)},
                {"region", "n"}};
  const TablePlan plan = planOf(t);
  const Sql range = checksumSql(plan, KeyRange{std::nullopt, KeyValues{"eu", "3"}});
  EXPECT_TRUE(range.text.ends_with(
      "FROM \"app\".\"Lines\" WHERE (\"region\" COLLATE \"C\", \"n\") <= ($1::text, $2::integer)"))
      << range.text;
  EXPECT_EQ(boundariesSql(plan, {}, 500).text,
            "SELECT \"region\", \"n\" FROM (SELECT \"region\", \"n\", row_number() OVER (ORDER BY "
            "\"region\" COLLATE \"C\", \"n\") AS cutover_n FROM \"app\".\"Lines\") s WHERE "
            "cutover_n % 500 = 0 ORDER BY cutover_n");
  const Sql by_key = rowsByKeySql(plan, {{"eu", "1"}, {"us", "2"}});
  EXPECT_EQ(by_key.text,
            "SELECT \"region\", \"n\", \"v\" FROM \"app\".\"Lines\" WHERE (\"region\", \"n\") IN "
            "(($1::text, $2::integer), ($3::text, $4::integer)) ORDER BY \"region\" COLLATE \"C\", \"n\"");
  EXPECT_EQ(by_key.params.size(), 4u);
}

TEST(ChunkSql, AggregatesSkipFloatSums) {
  const TablePlan plan = planOf(orders());
  EXPECT_EQ(aggregatesSql(plan).text,
            "SELECT count(*), sum(\"id\"), min(\"id\"), max(\"id\"), sum(trim_scale(\"amount\")), "
            "min(trim_scale(\"amount\")), max(trim_scale(\"amount\")), min(\"score\"), max(\"score\") "
            "FROM \"public\".\"orders\"");
  const std::vector<std::string> names = {"count", "sum(id)", "min(id)", "max(id)", "sum(amount)",
                                          "min(amount)", "max(amount)", "min(score)", "max(score)"};
  EXPECT_EQ(aggregateNames(plan), names);
}

TEST(ChunkSql, SessionSettingsPinTextForms) {
  const auto& settings = sessionSettings();
  auto has = [&](const char* name, const char* value) {
    for (const auto& [n, v] : settings) {
      if (n == name) return v == value;
    }
    return false;
  };
  EXPECT_TRUE(has("TimeZone", "UTC"));
  EXPECT_TRUE(has("DateStyle", "ISO, YMD"));
  EXPECT_TRUE(has("IntervalStyle", "postgres"));
  EXPECT_TRUE(has("extra_float_digits", "3"));
  EXPECT_TRUE(has("bytea_output", "hex"));
}

}  // namespace
}  // namespace cutover::migrate
