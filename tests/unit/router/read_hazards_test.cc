#include "router/read_hazards.h"

#include <gtest/gtest.h>

#include "router/statement_rules.h"

namespace cutover::router {
namespace {

using Rows = std::vector<std::vector<std::optional<std::string>>>;

ReadHazards hazards() {
  return readHazardsFrom(Rows{{"function", "f:lower"}, {"function", "f:now"}, {"function of a row", "c:f"},
                              {"view", "r:v"}, {"operator", "o:###"}, {"type", "t:wdom"},
                              {"table with a row-level security policy", "r:secret"}});
}

std::string hazard(std::string_view sql) {
  StatementInfo info = classifySql(sql);
  EXPECT_EQ(info.kind, StatementKind::Read) << sql;
  return hazardOf(info, hazards());
}

TEST(ReadHazards, EveryFormOfAHiddenWriteIsNamed) {
  EXPECT_EQ(hazard("SELECT * FROM v"), "reads view v, which calls a volatile function of the database (it may write)");
  EXPECT_NE(hazard("TABLE app.v"), "");
  EXPECT_NE(hazard("SELECT 1 FROM t JOIN v ON true"), "");
  EXPECT_EQ(hazard("SELECT 1 ### 2"), "uses operator ###, whose function is volatile (it may write)");
  EXPECT_NE(hazard("SELECT 1::wdom"), "");
  EXPECT_NE(hazard("SELECT CAST(1 AS app.wdom)"), "");
  EXPECT_NE(hazard("SELECT t1.f FROM t1"), "");
  EXPECT_NE(hazard("SELECT lower(5)"), "");
  EXPECT_NE(hazard("SELECT now(); SELECT 1"), "");
  EXPECT_NE(hazard("SELECT * FROM secret"), "");
  EXPECT_NE(hazard("SELECT (SELECT max(x) FROM v) AS m"), "");
}

TEST(ReadHazards, OtherReadsAreNot) {
  EXPECT_EQ(hazard("SELECT upper(name), id FROM t WHERE id = 1"), "");
  EXPECT_EQ(hazard("SELECT * FROM vv"), "");
  EXPECT_EQ(hazard("SELECT 1 + 2, 3::int"), "");
  // A function named like a column is matched only by a column reference, and only when the
  // function takes one row: "now" is a function here, so a column called now is not a hazard.
  EXPECT_EQ(hazard("SELECT t.now FROM t"), "");
  EXPECT_EQ(hazardOf(classifySql("SELECT lower(5)"), ReadHazards{}), "");
}

TEST(ReadHazards, TooManyToTellMakesEveryReadAWrite) {
  Rows rows(ReadHazards::kMaxReadHazards + 1, {"function", "f:x"});
  ReadHazards many = readHazardsFrom(rows);
  EXPECT_TRUE(many.overflow);
  EXPECT_NE(hazardOf(classifySql("SELECT 1"), many), "");
}

TEST(ReadHazards, AnUnreadableCatalogMakesEveryReadAWrite) {
  ReadHazards unknown;
  unknown.unreadable = "could not read it";
  EXPECT_EQ(hazardOf(classifySql("SELECT 1"), unknown), "could not read it");
}

TEST(ReadHazards, TheQueryIsBounded) {
  EXPECT_NE(readHazardsQuery().find("LIMIT 100001"), std::string::npos);
}

}  // namespace
}  // namespace cutover::router
