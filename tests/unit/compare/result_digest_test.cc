#include "compare/result_digest.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compare/result_compare.h"
#include "tests/unit/compare/result_builder.h"

namespace cutover::compare {
namespace {

using testing::Column;
using testing::Row;
using testing::bytes;

const std::vector<Column> kColumns = {{"id", 23}, {"name", 25}, {"price", 701}, {"at", 1184}};

Row rowNumber(uint64_t i) {
  return {std::to_string(i), "customer " + std::to_string(i % 1000), std::to_string(i % 977) + ".25",
          "2024-05-01 12:00:00+02"};
}

// Feeds `count` rows numbered from `first` in steps of `step` (mod count), the row `changed` with
// another name; checks memory as it goes.
ResultDigester bigResult(const CompareRules& rules, uint64_t count, uint64_t step, uint64_t changed = UINT64_MAX) {
  ResultDigester digester(rules);
  digester.onRowDescription(bytes(testing::rowDescriptionBody(kColumns)));
  std::string body;
  size_t retained_after_fill = 0;
  for (uint64_t n = 0; n < count; ++n) {
    const uint64_t i = (n * step) % count;
    Row row = rowNumber(i);
    if (i == changed) row[1] = "someone else";
    testing::dataRowBody(row, body);
    digester.onDataRow(bytes(body));
    EXPECT_LE(digester.retainedRowBytes(), rules.sample_bytes) << "after row " << n;
    if (n == 10'000) retained_after_fill = digester.retainedRowBytes();
    if (n > 10'000 && digester.retainedRowBytes() != retained_after_fill) {
      ADD_FAILURE() << "retained bytes grew after the sample filled, at row " << n;
      break;
    }
  }
  digester.onCommandComplete(bytes(testing::commandCompleteBody("SELECT " + std::to_string(count))));
  return digester;
}

TEST(ResultDigest, MillionRowsInConstantMemory) {
  CompareRules rules;
  rules.sample_bytes = 64 * 1024;
  constexpr uint64_t kRows = 1'000'000;
  ResultDigester in_order = bigResult(rules, kRows, 1);
  EXPECT_EQ(in_order.rows(), kRows);
  EXPECT_TRUE(in_order.malformed().empty()) << in_order.malformed();
  EXPECT_FALSE(in_order.sampleComplete());
  EXPECT_GT(in_order.sampledRows().size(), 1000u);
  EXPECT_LE(in_order.retainedRowBytes(), rules.sample_bytes);

  // The same rows in another order (a permutation: 7 is prime to 10^6): the same multiset.
  ResultDigester shuffled = bigResult(rules, kRows, 7);
  EXPECT_TRUE(compareResults(in_order, shuffled, rules).match());
  CompareRules ordered = rules;
  ordered.ordered = true;
  EXPECT_EQ(compareResults(in_order, shuffled, ordered).kind, MismatchKind::Order);

  // One value changed far beyond the sample.
  ResultDigester changed = bigResult(rules, kRows, 1, 900'000);
  ResultComparison c = compareResults(in_order, changed, rules);
  EXPECT_EQ(c.kind, MismatchKind::Values);
  EXPECT_TRUE(c.rows.empty());
}

TEST(ResultDigest, SampleIsAPrefixWithinTheBudget) {
  CompareRules rules;
  rules.sample_bytes = 100;
  ResultDigester digester(rules);
  digester.onRowDescription(bytes(testing::rowDescriptionBody({{"v", 25}})));
  digester.onDataRow(bytes(testing::dataRowBody({std::string(40, 'a')})));  // 4 + 46 bytes
  digester.onDataRow(bytes(testing::dataRowBody({std::string(60, 'b')})));  // does not fit
  digester.onDataRow(bytes(testing::dataRowBody({std::string(10, 'c')})));  // would fit: not taken
  digester.onCommandComplete(bytes(testing::commandCompleteBody("SELECT 3")));
  EXPECT_EQ(digester.rows(), 3u);
  EXPECT_FALSE(digester.sampleComplete());
  ASSERT_EQ(digester.sampledRows().size(), 1u);
  EXPECT_EQ(digester.sampledRows()[0].size(), 46u);
  EXPECT_LE(digester.retainedRowBytes(), 100u);
}

TEST(ResultDigest, ZeroBudgetKeepsNothing) {
  CompareRules rules;
  rules.sample_bytes = 0;
  ResultDigester digester(rules);
  digester.onDataRow(bytes(testing::dataRowBody({"x"})));
  EXPECT_EQ(digester.retainedRowBytes(), 0u);
  EXPECT_FALSE(digester.sampleComplete());
}

TEST(ResultDigest, ColumnsAndTag) {
  CompareRules rules;
  rules.ignore_columns = {"name"};
  ResultDigester digester = testing::digest(rules, kColumns, {rowNumber(1)});
  ASSERT_EQ(digester.columns().size(), 4u);
  EXPECT_EQ(digester.columns()[1].name, "name");
  EXPECT_TRUE(digester.columns()[1].ignored);
  EXPECT_EQ(digester.columns()[2].kind, ValueKind::Float8);
  EXPECT_EQ(digester.columns()[3].kind, ValueKind::Timestamptz);
  EXPECT_EQ(digester.commandTag(), "SELECT 1");
  EXPECT_TRUE(digester.finished());
}

TEST(ResultDigest, MessagesOutOfOrderAreMalformed) {
  CompareRules rules;
  const std::string description = testing::rowDescriptionBody({{"v", 25}});
  ResultDigester twice(rules);
  twice.onRowDescription(bytes(description));
  twice.onRowDescription(bytes(description));
  EXPECT_EQ(twice.malformed(), "a second RowDescription");

  ResultDigester late(rules);
  late.onCommandComplete(bytes(testing::commandCompleteBody("SELECT 0")));
  late.onDataRow(bytes(testing::dataRowBody({"x"})));
  EXPECT_EQ(late.malformed(), "DataRow after the end of the result");

  ResultDigester truncated(rules);
  std::string body = testing::dataRowBody({"hello"});
  body.pop_back();
  truncated.onDataRow(bytes(body));
  EXPECT_EQ(truncated.malformed(), "DataRow value 1 has length 5, 4 bytes left");

  ResultDigester trailing(rules);
  trailing.onDataRow(bytes(testing::dataRowBody({"x"}) + "!"));
  EXPECT_EQ(trailing.malformed(), "DataRow has 1 bytes after its 1 values");

  ResultDigester bad_description(rules);
  bad_description.onRowDescription(bytes(std::string("\x00\x01", 2)));
  EXPECT_FALSE(bad_description.malformed().empty());
}

TEST(ResultDigest, SplitDataRow) {
  RowValues values;
  std::string why;
  // The values view into the body: it must outlive them.
  const std::string body = testing::dataRowBody({"a", std::nullopt, ""});
  ASSERT_TRUE(splitDataRow(bytes(body), values, &why)) << why;
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], "a");
  EXPECT_EQ(values[1], std::nullopt);
  EXPECT_EQ(values[2], "");
  EXPECT_FALSE(splitDataRow(bytes(std::string("\x00", 1)), values, &why));
  EXPECT_EQ(why, "DataRow ends before its value count");
  EXPECT_FALSE(splitDataRow(bytes(std::string("\x00\x01\x00\x00", 4)), values, &why));
  EXPECT_EQ(why, "DataRow ends before the length of value 1");
}

TEST(ResultDigest, IgnoredColumnDoesNotShiftTheOthers) {
  // {id, note, v} with note ignored hashes rows like {id, v}.
  CompareRules rules;
  rules.ignore_columns = {"note"};
  ResultDigester with_note = testing::digest(rules, {{"id", 23}, {"note", 25}, {"v", 25}}, {{"1", "x", "a"}});
  ResultDigester without = testing::digest(rules, {{"id", 23}, {"v", 25}}, {{"1", "a"}});
  EXPECT_EQ(with_note.multisetHash(), without.multisetHash());
  EXPECT_EQ(with_note.orderedHash(), without.orderedHash());
}

}  // namespace
}  // namespace cutover::compare
