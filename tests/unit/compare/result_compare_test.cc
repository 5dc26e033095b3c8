#include "compare/result_compare.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compare/compare_rules.h"
#include "tests/unit/compare/result_builder.h"

namespace cutover::compare {
namespace {

using testing::Column;
using testing::Row;
using testing::digest;
using testing::failed;

const std::vector<Column> kOrders = {{"id", 23}, {"status", 25}, {"total", 1700}};
const std::vector<Row> kRows = {{"1", "paid", "10.50"}, {"2", "open", "3.00"}, {"3", std::nullopt, "7"}};

// Every verdict is checked twice: with samples holding the whole result (a hash difference is
// rechecked row by row) and with no sample at all (the hashes alone decide).
class CompareTest : public ::testing::TestWithParam<size_t> {
 protected:
  CompareRules rules() const {
    CompareRules rules;
    rules.sample_bytes = GetParam();
    return rules;
  }
  CompareRules ordered() const {
    CompareRules rules = this->rules();
    rules.ordered = true;
    return rules;
  }
  bool sampled() const { return GetParam() > 0; }
};

INSTANTIATE_TEST_SUITE_P(Samples, CompareTest, ::testing::Values(size_t{64 * 1024}, size_t{0}),
                         [](const auto& info) { return info.param > 0 ? "Sampled" : "HashesOnly"; });

TEST_P(CompareTest, IdenticalResultsMatch) {
  CompareRules r = rules();
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, kRows), r);
  EXPECT_TRUE(c.match());
  EXPECT_EQ(toString(c.kind), "match");
  EXPECT_TRUE(c.rows.empty());
}

TEST_P(CompareTest, OtherOrderWithoutOrderByMatches) {
  CompareRules r = rules();
  std::vector<Row> shuffled = {kRows[2], kRows[0], kRows[1]};
  EXPECT_TRUE(compareResults(digest(r, kOrders, kRows), digest(r, kOrders, shuffled), r).match());
}

TEST_P(CompareTest, OtherOrderUnderOrderByIsOrder) {
  CompareRules r = ordered();
  std::vector<Row> shuffled = {kRows[0], kRows[2], kRows[1]};
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, shuffled), r);
  EXPECT_EQ(c.kind, MismatchKind::Order);
  EXPECT_EQ(toString(c.kind), "order");
  EXPECT_TRUE(c.detail.starts_with("the same 3 rows in a different order")) << c.detail;
  if (sampled()) {
    ASSERT_EQ(c.rows.size(), 2u);  // positions 1 and 2 differ
    EXPECT_EQ(c.rows[0].old_row, 1u);
    EXPECT_EQ(c.rows[0].new_row, 1u);
  }
}

TEST_P(CompareTest, SameOrderUnderOrderByMatches) {
  CompareRules r = ordered();
  EXPECT_TRUE(compareResults(digest(r, kOrders, kRows), digest(r, kOrders, kRows), r).match());
}

TEST_P(CompareTest, ChangedValueIsValuesNamingTheColumn) {
  CompareRules r = rules();
  r.log_values = true;
  std::vector<Row> changed = kRows;
  changed[1][1] = "shipped";
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, changed), r);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  if (!sampled()) {
    EXPECT_TRUE(c.rows.empty());
    EXPECT_EQ(c.detail, "3 rows on each side, different values; differing rows not shown: unordered and "
                        "larger than sample_bytes");
    return;
  }
  EXPECT_EQ(c.detail, "3 rows on each side, different values; first in column status");
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0].old_row, 1u);
  EXPECT_EQ(c.rows[0].new_row, 1u);
  ASSERT_EQ(c.rows[0].values.size(), 1u);
  EXPECT_EQ(c.rows[0].values[0].column, "status");
  EXPECT_EQ(c.rows[0].values[0].old_value, "open");
  EXPECT_EQ(c.rows[0].values[0].new_value, "shipped");
}

TEST_P(CompareTest, NullIsNotEmptyText) {
  CompareRules r = rules();
  std::vector<Row> changed = kRows;
  changed[2][1] = "";
  EXPECT_EQ(compareResults(digest(r, kOrders, kRows), digest(r, kOrders, changed), r).kind, MismatchKind::Values);
}

TEST_P(CompareTest, OneRowFewerIsRowCount) {
  CompareRules r = rules();
  std::vector<Row> fewer = {kRows[0], kRows[2]};
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, fewer), r);
  EXPECT_EQ(c.kind, MismatchKind::RowCount);
  EXPECT_EQ(toString(c.kind), "row_count");
  EXPECT_TRUE(c.detail.starts_with("old 3 rows, new 2")) << c.detail;
  if (sampled()) {
    ASSERT_EQ(c.rows.size(), 1u);  // the missing row, on the old side only, every column
    EXPECT_EQ(c.rows[0].old_row, 1u);
    EXPECT_EQ(c.rows[0].new_row, std::nullopt);
    ASSERT_EQ(c.rows[0].values.size(), 3u);
    EXPECT_EQ(c.rows[0].values[0].column, "id");
    EXPECT_EQ(c.rows[0].values[0].old_value, "<redacted 1 bytes>");
    EXPECT_EQ(c.rows[0].values[0].new_value, std::nullopt);
  }
}

TEST_P(CompareTest, UserDefinedTypesAreComparedByValueNotByTheirStoreLocalOid) {
  CompareRules r = rules();
  // An enum created on each store: OID 16393 on old, 16400 on new.
  const std::vector<Column> old_side = {{"id", 23}, {"mood", 16393}}, new_side = {{"id", 23}, {"mood", 16400}};
  const std::vector<Row> rows = {{"1", "happy"}, {"2", "sad"}};
  EXPECT_TRUE(compareResults(digest(r, old_side, rows), digest(r, new_side, rows), r).match());
  ResultComparison c =
      compareResults(digest(r, old_side, rows), digest(r, new_side, {{"1", "happy"}, {"2", "ok"}}), r);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  // A built-in type on one side and a user-defined one on the other is a real difference.
  c = compareResults(digest(r, {{"id", 23}, {"mood", 25}}, rows), digest(r, new_side, rows), r);
  EXPECT_EQ(c.kind, MismatchKind::Columns);
  EXPECT_EQ(c.detail, "column 2: old mood text, new mood type 16400");
}

TEST_P(CompareTest, DifferentColumnNameOrTypeIsColumns) {
  CompareRules r = rules();
  std::vector<Column> renamed = {{"id", 23}, {"state", 25}, {"total", 1700}};
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, renamed, kRows), r);
  EXPECT_EQ(c.kind, MismatchKind::Columns);
  EXPECT_EQ(c.detail, "column 2: old status text, new state text");

  std::vector<Column> retyped = {{"id", 23}, {"status", 25}, {"total", 701}};
  c = compareResults(digest(r, kOrders, kRows), digest(r, retyped, kRows), r);
  EXPECT_EQ(c.kind, MismatchKind::Columns);
  EXPECT_EQ(toString(c.kind), "columns");
  EXPECT_EQ(c.detail, "column 3: old total numeric, new total float8");

  std::vector<Column> fewer = {{"id", 23}, {"status", 25}};
  c = compareResults(digest(r, kOrders, kRows), digest(r, fewer, {{"1", "paid"}}), r);
  EXPECT_EQ(c.kind, MismatchKind::Columns);
  EXPECT_EQ(c.detail, "old 3 columns, new 2");
}

TEST_P(CompareTest, ErrorOnOneSideKeepsBothSqlstates) {
  CompareRules r = rules();
  ResultComparison c = compareResults(digest(r, kOrders, kRows),
                                      failed(r, "42P01", "relation \"orders\" does not exist"), r);
  EXPECT_EQ(c.kind, MismatchKind::ErrorOneSide);
  EXPECT_EQ(toString(c.kind), "error_one_side");
  EXPECT_EQ(c.detail, "old: 3 rows; new: ERROR 42P01 relation \"orders\" does not exist");

  c = compareResults(failed(r, "57014", "canceling statement due to statement timeout"), digest(r, kOrders, kRows), r);
  EXPECT_EQ(c.kind, MismatchKind::ErrorOneSide);
  EXPECT_EQ(c.detail, "old: ERROR 57014 canceling statement due to statement timeout; new: 3 rows");
}

TEST_P(CompareTest, BothFailingAlikeMatchesAndDifferentlyDoesNot) {
  CompareRules r = rules();
  ResultComparison c = compareResults(failed(r, "22012", "division by zero"), failed(r, "22012", "division by zero"), r);
  EXPECT_TRUE(c.match());
  EXPECT_EQ(c.detail, "both failed with SQLSTATE 22012");

  c = compareResults(failed(r, "22012", "division by zero"), failed(r, "42883", "operator does not exist"), r);
  EXPECT_EQ(c.kind, MismatchKind::ErrorDiffers);
  EXPECT_EQ(c.detail, "old: ERROR 22012 division by zero; new: ERROR 42883 operator does not exist");
}

TEST_P(CompareTest, ErrorAfterSomeRowsIsAnError) {
  CompareRules r = rules();
  ResultDigester partial(r);
  partial.onRowDescription(testing::bytes(testing::rowDescriptionBody(kOrders)));
  partial.onDataRow(testing::bytes(testing::dataRowBody(kRows[0])));
  partial.onError(testing::bytes(testing::errorBody("22012", "division by zero")));
  EXPECT_EQ(compareResults(digest(r, kOrders, kRows), partial, r).kind, MismatchKind::ErrorOneSide);
}

TEST_P(CompareTest, DuplicateRowsCount) {
  CompareRules r = rules();
  const std::vector<Column> columns = {{"v", 25}};
  const Row a = {"a"}, b = {"b"};
  EXPECT_EQ(compareResults(digest(r, columns, {a, a, b}), digest(r, columns, {a, b, b}), r).kind,
            MismatchKind::Values);
  EXPECT_EQ(compareResults(digest(r, columns, {a, a}), digest(r, columns, {b, b}), r).kind, MismatchKind::Values);
  EXPECT_EQ(compareResults(digest(r, columns, {a, a, b, b}), digest(r, columns, {a, a, a, a}), r).kind,
            MismatchKind::Values);
  EXPECT_TRUE(compareResults(digest(r, columns, {a, b, a}), digest(r, columns, {a, a, b}), r).match());
}

TEST_P(CompareTest, FloatTolerance) {
  CompareRules r = rules();
  r.values.float_tolerance = 0.1;
  const std::vector<Column> columns = {{"x", 701}};
  auto verdict = [&](const char* a, const char* b) {
    return compareResults(digest(r, columns, {{a}}), digest(r, columns, {{b}}), r).kind;
  };
  EXPECT_EQ(verdict("0.31", "0.35"), MismatchKind::None);    // one cell of the grid
  EXPECT_EQ(verdict("0.31", "0.45"), MismatchKind::Values);  // 0.14 apart
  EXPECT_EQ(verdict("1100", "1120"), MismatchKind::None);    // relative above 1: 2%, one cell
  EXPECT_EQ(verdict("1000", "1200"), MismatchKind::Values);
  EXPECT_EQ(verdict("NaN", "NaN"), MismatchKind::None);
  EXPECT_EQ(verdict("Infinity", "-Infinity"), MismatchKind::Values);
  // 0.29999 and 0.30001 are close but straddle a cell boundary: only the row recheck of a
  // fully sampled result sees they are within the tolerance (the documented limitation).
  EXPECT_EQ(verdict("0.29999", "0.30001"), sampled() ? MismatchKind::None : MismatchKind::Values);
}

TEST_P(CompareTest, FloatToleranceZeroComparesTheValues) {
  CompareRules r = rules();
  r.values.float_tolerance = 0;
  const std::vector<Column> columns = {{"x", 701}, {"y", 700}};
  EXPECT_TRUE(compareResults(digest(r, columns, {{"1e+20", "-0"}}), digest(r, columns, {{"100000000000000000000", "0"}}), r)
                  .match());
  EXPECT_EQ(compareResults(digest(r, columns, {{"0.1", "1"}}), digest(r, columns, {{"0.10000000000000002", "1"}}), r).kind,
            MismatchKind::Values);
}

TEST_P(CompareTest, NumericTrailingZeros) {
  CompareRules r = rules();
  const std::vector<Column> columns = {{"amount", 1700}};
  auto verdict = [&](const CompareRules& rules, const char* a, const char* b) {
    return compareResults(digest(rules, columns, {{a}}), digest(rules, columns, {{b}}), rules).kind;
  };
  EXPECT_EQ(verdict(r, "1.50", "1.5"), MismatchKind::None);
  EXPECT_EQ(verdict(r, "2.000", "2"), MismatchKind::None);
  EXPECT_EQ(verdict(r, "100", "1"), MismatchKind::Values);  // no fraction, no trimming
  EXPECT_EQ(verdict(r, "1.05", "1.5"), MismatchKind::Values);
  r.values.numeric_trailing_zeros = false;
  EXPECT_EQ(verdict(r, "1.50", "1.5"), MismatchKind::Values);
}

TEST_P(CompareTest, TimestamptzOffsets) {
  CompareRules r = rules();
  const std::vector<Column> columns = {{"at", 1184}};
  auto verdict = [&](const CompareRules& rules, const char* a, const char* b) {
    return compareResults(digest(rules, columns, {{a}}), digest(rules, columns, {{b}}), rules).kind;
  };
  EXPECT_EQ(verdict(r, "2024-01-01 10:00:00+02", "2024-01-01 08:00:00+00"), MismatchKind::None);
  EXPECT_EQ(verdict(r, "2024-03-01 00:30:00.25+05:30", "2024-02-29 19:00:00.25+00"), MismatchKind::None);
  EXPECT_EQ(verdict(r, "2024-01-01 10:00:00+02", "2024-01-01 10:00:00+00"), MismatchKind::Values);
  r.values.timestamps_utc = false;
  EXPECT_EQ(verdict(r, "2024-01-01 10:00:00+02", "2024-01-01 08:00:00+00"), MismatchKind::Values);
}

TEST_P(CompareTest, IgnoredColumnsGlobal) {
  CompareRules r = rules();
  r.ignore_columns = {"updated_at"};
  const std::vector<Column> columns = {{"id", 23}, {"updated_at", 1184}};
  EXPECT_TRUE(compareResults(digest(r, columns, {{"1", "2024-01-01 00:00:00+00"}}),
                             digest(r, columns, {{"1", "2025-06-01 00:00:00+00"}}), r)
                  .match());
  // An ignored column is left out entirely: present on one side only is no difference either.
  EXPECT_TRUE(compareResults(digest(r, columns, {{"1", "x"}}), digest(r, {{"id", 23}}, {{"1"}}), r).match());
  // Other columns still count, and keep their place.
  EXPECT_EQ(compareResults(digest(r, columns, {{"1", "x"}}), digest(r, columns, {{"2", "x"}}), r).kind,
            MismatchKind::Values);
}

TEST_P(CompareTest, IgnoredColumnsPerTable) {
  config::CompareConfig config;
  config.sample_bytes = static_cast<uint32_t>(GetParam());
  config.tables["orders"].ignore_columns = {"synced_at"};
  router::StatementInfo reads_orders;
  reads_orders.kind = router::StatementKind::Read;
  reads_orders.tables = {"public.orders"};
  router::StatementInfo reads_users = reads_orders;
  reads_users.tables = {"users"};

  const std::vector<Column> columns = {{"id", 23}, {"synced_at", 25}};
  const std::vector<Row> old_rows = {{"1", "monday"}}, new_rows = {{"1", "tuesday"}};
  CompareRules orders = compareRulesFor(config, reads_orders);
  EXPECT_TRUE(compareResults(digest(orders, columns, old_rows), digest(orders, columns, new_rows), orders).match());
  CompareRules users = compareRulesFor(config, reads_users);
  EXPECT_EQ(compareResults(digest(users, columns, old_rows), digest(users, columns, new_rows), users).kind,
            MismatchKind::Values);
}

TEST(CompareTest, Redaction) {
  CompareRules r;  // differing rows come from the samples: the default 64 KiB
  std::vector<Row> changed = kRows;
  changed[0][1] = "refunded";
  ResultComparison hidden = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, changed), r);
  ASSERT_EQ(hidden.rows.size(), 1u);
  ASSERT_EQ(hidden.rows[0].values.size(), 1u);
  EXPECT_EQ(hidden.rows[0].values[0].column, "status");
  EXPECT_EQ(hidden.rows[0].values[0].old_value, "<redacted 4 bytes>");
  EXPECT_EQ(hidden.rows[0].values[0].new_value, "<redacted 8 bytes>");

  r.log_values = true;
  ResultComparison shown = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, changed), r);
  ASSERT_EQ(shown.rows.size(), 1u);
  EXPECT_EQ(shown.rows[0].values[0].old_value, "paid");
  EXPECT_EQ(shown.rows[0].values[0].new_value, "refunded");
}

TEST(CompareTest, ChangedKeyShowsAsMissingAndExtraRows) {
  CompareRules r;  // differing rows come from the samples: the default 64 KiB
  std::vector<Row> changed = kRows;
  changed[0][0] = "9";  // the first column differs: not paired with the old row
  ResultComparison c = compareResults(digest(r, kOrders, kRows), digest(r, kOrders, changed), r);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].old_row, 0u);
  EXPECT_EQ(c.rows[0].new_row, std::nullopt);
  EXPECT_EQ(c.rows[1].old_row, std::nullopt);
  EXPECT_EQ(c.rows[1].new_row, 0u);
}

TEST_P(CompareTest, OrderedPrefixShowsDifferencesBeyondTheSample) {
  // Samples too small for the whole result: ordered results still compare position by position.
  CompareRules r = ordered();
  r.sample_bytes = sampled() ? 64 : 0;  // room for the first three of these rows
  const std::vector<Column> columns = {{"id", 23}, {"v", 25}};
  std::vector<Row> old_rows, new_rows;
  for (int i = 0; i < 10; ++i) old_rows.push_back({std::to_string(i), "same"});
  new_rows = old_rows;
  new_rows[1][1] = "changed";
  ResultComparison c = compareResults(digest(r, columns, old_rows), digest(r, columns, new_rows), r);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  if (sampled()) {
    ASSERT_EQ(c.rows.size(), 1u);
    EXPECT_EQ(c.rows[0].old_row, 1u);
    EXPECT_EQ(c.rows[0].values[0].column, "v");
  } else {
    EXPECT_TRUE(c.rows.empty());
    EXPECT_EQ(c.detail, "10 rows on each side, different values; no differing row within the sampled rows");
  }
}

TEST(CompareTest, WithoutRowDescriptionValuesCompareAsBytes) {
  CompareRules rules;
  auto undescribed = [&](const std::vector<Row>& rows) {
    ResultDigester digester(rules);
    for (const Row& row : rows) digester.onDataRow(testing::bytes(testing::dataRowBody(row)));
    digester.onCommandComplete(testing::bytes(testing::commandCompleteBody("SELECT")));
    return digester;
  };
  EXPECT_TRUE(compareResults(undescribed({{"1", "a"}}), undescribed({{"1", "a"}}), rules).match());
  ResultComparison c = compareResults(undescribed({{"1", "1.50"}}), undescribed({{"1", "1.5"}}), rules);
  EXPECT_EQ(c.kind, MismatchKind::Values);  // no type known: no numeric normalisation
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0].values[0].column, "column 2");
}

TEST(CompareTest, BinaryFormatComparesBytes) {
  CompareRules rules;
  rules.log_values = true;
  const std::vector<Column> columns = {{"id", 23, 1}, {"amount", 1700, 1}};
  ResultComparison c = compareResults(digest(rules, columns, {{"1", "1.50"}}), digest(rules, columns, {{"1", "1.5"}}), rules);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  ASSERT_EQ(c.rows.size(), 1u);
  ASSERT_EQ(c.rows[0].values.size(), 1u);
  EXPECT_EQ(c.rows[0].values[0].old_value, "\\x312e3530");  // binary values shown as hex
}

TEST(CompareTest, ResultFormatsOverrideADescribedStatement) {
  CompareRules rules;
  const std::vector<Column> columns = {{"amount", 1700, 0}};
  ResultDigester binary(rules);
  const int16_t formats[] = {1};
  binary.onRowDescription(testing::bytes(testing::rowDescriptionBody(columns)), formats);
  EXPECT_EQ(binary.columns()[0].format, 1);
  EXPECT_EQ(binary.columns()[0].kind, ValueKind::Exact);
}

TEST(CompareTest, MalformedOrUnfinishedIsIncomparable) {
  CompareRules rules;
  const std::vector<Column> columns = {{"id", 23}, {"v", 25}};
  ResultDigester bad(rules);
  bad.onRowDescription(testing::bytes(testing::rowDescriptionBody(columns)));
  bad.onDataRow(testing::bytes(testing::dataRowBody({"1"})));  // one value for two columns
  bad.onDataRow(testing::bytes(testing::dataRowBody({"1", "a"})));  // ignored after that
  bad.onCommandComplete(testing::bytes(testing::commandCompleteBody("SELECT 2")));
  EXPECT_EQ(bad.malformed(), "DataRow has 1 values, the result 2 columns");
  ResultComparison c = compareResults(digest(rules, columns, {}), bad, rules);
  EXPECT_EQ(c.kind, MismatchKind::Incomparable);
  EXPECT_EQ(c.detail, "new: DataRow has 1 values, the result 2 columns");

  ResultDigester unfinished(rules);
  unfinished.onRowDescription(testing::bytes(testing::rowDescriptionBody(columns)));
  c = compareResults(unfinished, digest(rules, columns, {}), rules);
  EXPECT_EQ(c.kind, MismatchKind::Incomparable);
  EXPECT_EQ(c.detail, "old: the result did not finish");
}

}  // namespace
}  // namespace cutover::compare
