#include "compare/write_outcome.h"

#include <gtest/gtest.h>

#include <string>

#include "compare/divergence.h"

namespace cutover::compare {
namespace {

std::span<const uint8_t> bytesOf(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A DataRow body of text values.
std::string row(std::initializer_list<std::string> values) {
  std::string body;
  body.push_back(0);
  body.push_back(static_cast<char>(values.size()));
  for (const std::string& v : values) {
    const uint32_t n = static_cast<uint32_t>(v.size());
    for (int shift : {24, 16, 8, 0}) body.push_back(static_cast<char>((n >> shift) & 0xff));
    body += v;
  }
  return body;
}

WriteOutcome inserted(std::initializer_list<std::initializer_list<std::string>> rows) {
  WriteOutcome o;
  for (const auto& r : rows) o.addRow(bytesOf(row(r)));
  o.addTag("INSERT 0 " + std::to_string(rows.size()));
  return o;
}

TEST(WriteOutcome, SameAnswersAgree) {
  EXPECT_EQ(judgeWrite(inserted({{"1", "a"}, {"2", "b"}}), inserted({{"1", "a"}, {"2", "b"}}), {}), "");
}

TEST(WriteOutcome, ReturningRowsAreComparedByValueInAnyOrder) {
  const WriteOutcome a = inserted({{"1", "a"}, {"2", "b"}});
  // An UPDATE's RETURNING order is each store's physical order: no difference in the data.
  EXPECT_EQ(judgeWrite(a, inserted({{"2", "b"}, {"1", "a"}}), {}), "");
  EXPECT_EQ(judgeWrite(a, inserted({{"1", "a"}, {"2", "c"}}), {}), divergence_kind::kReturningMismatch);
  // A multiset: a row twice is not the row once.
  EXPECT_EQ(judgeWrite(inserted({{"1", "a"}, {"1", "a"}}), inserted({{"1", "a"}, {"2", "b"}}), {}),
            divergence_kind::kReturningMismatch);
  // Separator safety: ("1a","") is not ("1","a").
  EXPECT_EQ(judgeWrite(inserted({{"1a", ""}}), inserted({{"1", "a"}}), {}), divergence_kind::kReturningMismatch);
  // Expected to differ (serials, now()) or not asked for: not a divergence.
  EXPECT_EQ(judgeWrite(a, inserted({{"3", "a"}, {"4", "b"}}), {.nondeterministic = true}), "");
  EXPECT_EQ(judgeWrite(a, inserted({{"3", "a"}, {"4", "b"}}), {.compare_rows = false}), "");
}

TEST(WriteOutcome, OversizedRowsCountByLength) {
  WriteOutcome a, b, c;
  a.addRowOfLength(100000);
  b.addRowOfLength(100000);
  c.addRowOfLength(100001);
  EXPECT_EQ(judgeWrite(a, b, {}), "");
  EXPECT_EQ(judgeWrite(a, c, {}), divergence_kind::kReturningMismatch);
  EXPECT_EQ(a.rows, 1u);
}

TEST(WriteOutcome, ErrorOnOneSideAndTagMismatch) {
  WriteOutcome ok = inserted({{"1"}});
  WriteOutcome failed;
  failed.addError("23505", "duplicate key value violates unique constraint \"t_pkey\"");
  failed.addError("25P02", "current transaction is aborted");   // only the first error counts
  EXPECT_EQ(failed.error, "23505 duplicate key value violates unique constraint \"t_pkey\"");
  EXPECT_EQ(judgeWrite(ok, failed, {}), divergence_kind::kErrorOneSide);
  EXPECT_EQ(judgeWrite(failed, ok, {}), divergence_kind::kErrorOneSide);

  WriteOutcome updated;
  updated.addTag("UPDATE 0");
  WriteOutcome updated_one;
  updated_one.addTag("UPDATE 1");
  EXPECT_EQ(judgeWrite(updated, updated_one, {}), divergence_kind::kTagMismatch);

  // Both failed: tags count only when asked (async compares a transaction's tags up to the error).
  WriteOutcome f1 = failed, f2 = failed;
  f1.tags = {"INSERT 0 1"};
  EXPECT_EQ(judgeWrite(f1, f2, {}), "");
  EXPECT_EQ(judgeWrite(f1, f2, {.tags_when_failed = true}), divergence_kind::kTagMismatch);
}

TEST(WriteOutcome, TransactionAddsTagsAndKeepsTheFirstError) {
  WriteOutcome txn = inserted({});
  WriteOutcome second;
  second.addTag("UPDATE 2");
  second.addError("40001", "could not serialize access");
  WriteOutcome third;
  third.addError("25P02", "current transaction is aborted");
  txn.add(second);
  txn.add(third);
  EXPECT_EQ(txn.tags, (std::vector<std::string>{"INSERT 0 0", "UPDATE 2"}));
  EXPECT_EQ(txn.error, "40001 could not serialize access");
  EXPECT_EQ(txn.describe(), "INSERT 0 0; UPDATE 2; ERROR 40001 could not serialize access");
  EXPECT_EQ(WriteOutcome{}.describe(), "(no result)");
  EXPECT_NE(inserted({{"1"}}).describe().find("; 1 rows returned, digest "), std::string::npos);
}

TEST(WriteOutcome, FirstDifferenceNamesTheStatementOfABatch) {
  auto batch = [](std::initializer_list<std::string> tags, const char* error = nullptr) {
    WriteOutcome o;
    for (const std::string& tag : tags) o.addTag(tag);
    if (error != nullptr) o.addError("23505", error);
    return o;
  };
  EXPECT_EQ(firstDifference(batch({"UPDATE 1", "INSERT 0 1"}), batch({"UPDATE 1", "INSERT 0 1"})), std::string::npos);
  EXPECT_EQ(firstDifference(batch({"UPDATE 1", "UPDATE 1"}), batch({"UPDATE 1", "UPDATE 0"})), 1u);
  // The secondary stopped at its second statement's error: that is the one.
  EXPECT_EQ(firstDifference(batch({"UPDATE 1", "INSERT 0 1", "UPDATE 1"}), batch({"UPDATE 1"}, "duplicate key")), 1u);
  EXPECT_EQ(firstDifference(batch({"UPDATE 1"}, "duplicate key"), batch({"UPDATE 1", "INSERT 0 1"})), 1u);
}

}  // namespace
}  // namespace cutover::compare
