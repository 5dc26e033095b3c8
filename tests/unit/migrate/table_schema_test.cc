#include "migrate/table_schema.h"

#include <gtest/gtest.h>

#include "tests/unit/migrate/plans.h"

namespace cutover::migrate {
namespace {

using testing::column;
using testing::orders;

TEST(PlanTables, SchemaDifferencesAreReportedAsSuch) {
  TableSchema old_orders = orders();
  TableSchema new_orders = orders();
  new_orders.columns[1] = column("note", "character varying(10)", 1043, true);  // other type
  new_orders.columns.pop_back();                                                // score missing
  new_orders.columns.push_back(column("extra", "integer", 23));
  TableSchema only_old{"public", "audit", {column("id", "integer", 23)}, {"id"}};
  TableSchema only_new{"public", "fresh", {column("id", "integer", 23)}, {}};
  const VerifyPlan plan =
      planTables({only_old, old_orders}, {new_orders, only_new}, {}, {}, {}, false);
  const std::vector<SchemaDifference> want = {
      {"public.audit", "", "table missing on new"},
      {"public.fresh", "", "table missing on old"},
      {"public.orders", "extra", "column missing on old"},
      {"public.orders", "note", "type: old text, new character varying(10)"},
      {"public.orders", "score", "column missing on new"},
  };
  EXPECT_EQ(plan.schema, want);
  ASSERT_EQ(plan.tables.size(), 1u);
  std::vector<std::string> compared;
  for (const auto& c : plan.tables[0].compared) compared.push_back(c.name);
  EXPECT_EQ(compared, (std::vector<std::string>{"id", "note", "amount"}));
  EXPECT_EQ(plan.tables[0].key_columns, 1u);
}

TEST(PlanTables, IgnoredColumnsAreLeftOutButKeysStay) {
  config::CompareConfig compare;
  compare.ignore_columns = {"score", "id"};
  compare.tables["orders"].ignore_columns = {"note"};
  const VerifyPlan plan = planTables({orders()}, {orders()}, {}, {}, compare, false);
  std::vector<std::string> compared;
  for (const auto& c : plan.tables.at(0).compared) compared.push_back(c.name);
  EXPECT_EQ(compared, (std::vector<std::string>{"id", "amount"}));
}

TEST(PlanTables, DifferentPrimaryKeys) {
  TableSchema new_orders = orders();
  new_orders.key = {"id", "note"};
  const VerifyPlan plan = planTables({orders()}, {new_orders}, {}, {}, {}, false);
  ASSERT_EQ(plan.schema.size(), 1u);
  EXPECT_EQ(plan.schema[0].what, "primary key: old (id), new (id, note)");
  EXPECT_TRUE(plan.tables.at(0).hasKey());  // old's key, whose columns new has
  TableSchema keyless = orders();
  keyless.key.clear();
  const VerifyPlan multiset = planTables({keyless}, {keyless}, {}, {}, {}, false);
  EXPECT_FALSE(multiset.tables.at(0).hasKey());
  EXPECT_TRUE(multiset.schema.empty());
}

TEST(PlanTables, Selection) {
  TableSchema a{"public", "a", {column("id", "integer", 23)}, {"id"}};
  TableSchema b{"sales", "a", {column("id", "integer", 23)}, {"id"}};
  TableSchema c{"public", "c", {column("id", "integer", 23)}, {"id"}};
  EXPECT_EQ(planTables({a, b, c}, {a, b, c}, {"a"}, {}, {}, false).tables.size(), 2u);
  EXPECT_EQ(planTables({a, b, c}, {a, b, c}, {"sales.a"}, {}, {}, false).tables.size(), 1u);
  EXPECT_EQ(planTables({a, b, c}, {a, b, c}, {}, {"public.a", "c"}, {}, false).tables.size(), 1u);
}

}  // namespace
}  // namespace cutover::migrate
