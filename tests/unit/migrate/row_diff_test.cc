#include "migrate/row_diff.h"

#include <gtest/gtest.h>

#include "tests/unit/migrate/plans.h"

namespace cutover::migrate {
namespace {

using testing::orders;
using testing::planOf;

KeyedRow row(const char* id, std::optional<std::string> note, const char* amount, const char* score) {
  return KeyedRow{{id}, {std::string(id), std::move(note), std::string(amount), std::string(score)}};
}

TEST(DiffRows, FindsChangedMissingAndExtraRowsColumnByColumn) {
  config::CompareConfig compare;
  compare.float_tolerance = 0;
  const TablePlan plan = planOf(orders(), compare);
  const std::vector<KeyedRow> old_rows = {row("1", "a", "1.50", "0.1"), row("2", "", "2", "1"),
                                          row("3", "c", "3", "3"), row("4", "d", "4", "0.30000000000000004")};
  const std::vector<KeyedRow> new_rows = {row("1", "a", "1.5", "0.1"), row("2", std::nullopt, "2", "1"),
                                          row("4", "d", "4", "0.3"), row("5", "e", "5", "5")};
  const std::vector<RowDiff> diffs = diffRows(plan, old_rows, new_rows);
  ASSERT_EQ(diffs.size(), 4u);
  EXPECT_EQ(diffs[0].key, KeyValues{"2"});  // '' vs NULL
  EXPECT_EQ(diffs[0].kind, RowDiffKind::Values);
  ASSERT_EQ(diffs[0].values.size(), 1u);
  EXPECT_EQ(diffs[0].values[0].column, "note");
  EXPECT_EQ(diffs[0].values[0].old_value, "<redacted 0 bytes>");
  EXPECT_EQ(diffs[0].values[0].new_value, std::nullopt);
  EXPECT_EQ(diffs[1].key, KeyValues{"3"});
  EXPECT_EQ(diffs[1].kind, RowDiffKind::MissingOnNew);
  EXPECT_EQ(diffs[1].values.size(), 4u);
  EXPECT_EQ(diffs[2].key, KeyValues{"4"});  // float last bit, tolerance 0
  ASSERT_EQ(diffs[2].values.size(), 1u);
  EXPECT_EQ(diffs[2].values[0].column, "score");
  EXPECT_EQ(diffs[3].key, KeyValues{"5"});
  EXPECT_EQ(diffs[3].kind, RowDiffKind::ExtraOnNew);
}

TEST(DiffRows, ToleranceAndShownValues) {
  const std::vector<KeyedRow> old_rows = {row("4", "d", "4", "0.30000000000000004"), row("6", "x", "1", "1")};
  const std::vector<KeyedRow> new_rows = {row("4", "d", "4", "0.3"), row("6", "y", "1", "1")};
  TablePlan plan = planOf(orders());  // float_tolerance 1e-9
  plan.rules.log_values = true;
  const std::vector<RowDiff> diffs = diffRows(plan, old_rows, new_rows);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].key, KeyValues{"6"});
  EXPECT_EQ(diffs[0].values[0].old_value, "x");
  EXPECT_EQ(diffs[0].values[0].new_value, "y");
}

TEST(DiffRows, NumericScaleIsConfigurable) {
  config::CompareConfig exact;
  exact.numeric_trailing_zeros = false;
  const std::vector<KeyedRow> o = {row("1", "a", "1.0", "1")};
  const std::vector<KeyedRow> n = {row("1", "a", "1.00", "1")};
  EXPECT_TRUE(diffRows(planOf(orders()), o, n).empty());
  const auto diffs = diffRows(planOf(orders(), exact), o, n);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].values[0].column, "amount");
}

}  // namespace
}  // namespace cutover::migrate
