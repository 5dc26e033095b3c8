#include "compare/row_compare.h"

#include <gtest/gtest.h>

namespace cutover::compare {
namespace {

const std::vector<RowColumn> kColumns = {
    {"id", 23}, {"x", type_oid::kFloat8}, {"amount", type_oid::kNumeric}, {"at", type_oid::kTimestamptz},
    {"note", 25}};

TEST(RowCompare, EqualUnderTheRules) {
  CompareRules rules;
  const TextRow a = {"1", "0.30000000000000004", "1.50", "2024-01-01 10:00:00+02", "x"};
  const TextRow b = {"1", "0.3", "1.5", "2024-01-01 08:00:00+00", "x"};
  EXPECT_TRUE(compareRowValues(kColumns, a, b, rules).empty());
}

TEST(RowCompare, StrictRulesNameTheColumns) {
  CompareRules rules;
  rules.values.float_tolerance = 0;
  rules.values.numeric_trailing_zeros = false;
  const TextRow a = {"1", "0.30000000000000004", "1.50", "2024-01-01 08:00:00.000001+00", ""};
  const TextRow b = {"1", "0.3", "1.5", "2024-01-01 08:00:00+00", std::nullopt};
  const auto diffs = compareRowValues(kColumns, a, b, rules);
  ASSERT_EQ(diffs.size(), 4u);
  EXPECT_EQ(diffs[0].column, "x");
  EXPECT_EQ(diffs[1].column, "amount");
  EXPECT_EQ(diffs[2].column, "at");
  EXPECT_EQ(diffs[3].column, "note");
  EXPECT_EQ(diffs[3].old_value, "<redacted 0 bytes>");
  EXPECT_EQ(diffs[3].new_value, std::nullopt);
}

TEST(RowCompare, ShownValues) {
  EXPECT_EQ(shownValue(std::string("secret"), false), "<redacted 6 bytes>");
  EXPECT_EQ(shownValue(std::string("secret"), true), "secret");
  EXPECT_EQ(shownValue(std::nullopt, true), std::nullopt);
  const std::string long_value(300, 'a');
  EXPECT_EQ(shownValue(long_value, true), std::string(256, 'a') + "… (300 bytes)");
  CompareRules rules;
  const auto one_sided = oneSidedRow({{"id", 23}, {"v", 25}}, {"7", std::nullopt}, true, rules);
  ASSERT_EQ(one_sided.size(), 2u);
  EXPECT_EQ(one_sided[0].old_value, "<redacted 1 bytes>");
  EXPECT_EQ(one_sided[0].new_value, std::nullopt);
  EXPECT_EQ(one_sided[1].old_value, std::nullopt);
}

}  // namespace
}  // namespace cutover::compare
