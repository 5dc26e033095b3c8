#include "migrate/verify_report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "migrate/verify_chunk.h"

namespace cutover::migrate {
namespace {

ChunkRecord chunk(const char* table, int n, ChunkKind kind, int64_t rows_old, int64_t rows_new,
                  nlohmann::json result) {
  ChunkRecord c;
  c.task = ChunkTask{table, n, kind, {}};
  c.done = true;
  c.done_count = 1;
  c.rows_old = rows_old;
  c.rows_new = rows_new;
  c.result = std::move(result);
  return c;
}

nlohmann::json noDifferences() {
  return {{"differences", nlohmann::json::array()}, {"difference_count", 0}, {"transient", 0}};
}

TEST(VerifyReport, EqualStores) {
  const VerifyReport report = buildReport(
      "j", nlohmann::json::array(),
      {chunk("public.a", 0, ChunkKind::Range, 10, 10, noDifferences()),
       chunk("public.a", 1, ChunkKind::Range, 5, 5, noDifferences()),
       chunk("check:balances", 0, ChunkKind::Check, 0, 0, {{"equal", true}})});
  EXPECT_FALSE(report.differs());
  std::ostringstream out;
  printReport(report, out);
  EXPECT_EQ(out.str(),
            "verify job j\n"
            "public.a: 15 rows, 2 chunk(s): equal\n"
            "check balances: equal\n"
            "result: equal (1 table(s), 1 check(s))\n");
  EXPECT_EQ(reportJson(report)["result"], "equal");
}

TEST(VerifyReport, DifferencesWithKeysAndColumns) {
  RowDiff changed{{"7"}, RowDiffKind::Values, {{"amount", "<redacted 4 bytes>", "<redacted 4 bytes>"}}, {}};
  RowDiff missing{{"9"}, RowDiffKind::MissingOnNew, {}, {}};
  nlohmann::json range = {{"differences", {toJson(changed), toJson(missing)}},
                          {"difference_count", 2},
                          {"transient", 1}};
  nlohmann::json multiset = {{"differences", {{{"key", nlohmann::json::array()},
                                               {"kind", "missing_on_new"},
                                               {"columns", nlohmann::json::array()},
                                               {"detail", "copies: old 2, new 1; row <redacted 7 bytes>"}}}},
                             {"difference_count", 1}};
  const VerifyReport report = buildReport(
      "j", nlohmann::json::array({{{"table", "public.b"}, {"column", "x"}, {"what", "column missing on new"}}}),
      {chunk("public.a", 0, ChunkKind::Range, 10, 9, range),
       chunk("public.n", 0, ChunkKind::Multiset, 3, 2, multiset),
       chunk("check:balances", 0, ChunkKind::Check, 0, 0, {{"equal", false}, {"old", {{"10"}}}, {"new", {{"9"}}}})});
  EXPECT_TRUE(report.differs());
  std::ostringstream out;
  printReport(report, out);
  EXPECT_EQ(out.str(),
            "verify job j\n"
            "schema: 1 difference(s)\n"
            "  public.b.x: column missing on new\n"
            "public.a: rows old 10, new 9, 1 chunk(s): DIFFERS, 2 differing row(s) (1 transient)\n"
            "  key (7): amount old <redacted 4 bytes> new <redacted 4 bytes>\n"
            "  key (9): missing on new\n"
            "public.n: rows old 3, new 2, no primary key: count and multiset hash: DIFFERS, 1 differing row(s)\n"
            "  missing on new: copies: old 2, new 1; row <redacted 7 bytes>\n"
            "check balances: DIFFERS: old [[\"10\"]] new [[\"9\"]]\n"
            "result: differences (1 schema, 2 table(s) with 3 differing row(s), 1 check(s))\n");
  const nlohmann::json json = reportJson(report);
  EXPECT_EQ(json["result"], "differences");
  EXPECT_EQ(json["tables"][0]["differences"][0]["key"], nlohmann::json({"7"}));
  EXPECT_EQ(json["tables"][0]["differences"][0]["columns"][0]["column"], "amount");
  EXPECT_EQ(reportSummary(report)["differing_tables"], 2);
}

}  // namespace
}  // namespace cutover::migrate
