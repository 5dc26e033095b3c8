#include "migrate/ramp_gate.h"

#include <gtest/gtest.h>

namespace cutover::migrate {
namespace {

flags::FlagSnapshot flagsWith(int global, std::map<std::string, std::optional<int>> tables = {}) {
  flags::FlagSnapshot f;
  f.reads_new_percent = global;
  for (const auto& [name, percent] : tables) {
    config::TableFlags t;
    t.reads_new_percent = percent;
    if (!percent) t.shadow_percent = 5;  // an override that leaves reads_new_percent global
    f.tables[name] = t;
  }
  return f;
}

LastVerify verify(std::string id, std::string state, int64_t age_s, std::vector<std::string> tables,
                  bool filtered = false) {
  LastVerify v;
  v.id = std::move(id);
  v.state = std::move(state);
  v.finished_at = "2026-12-03T08:00:00Z";
  v.age_s = age_s;
  v.tables = std::move(tables);
  v.filtered = filtered;
  v.summary = {{"differing_tables", v.state == "equal" ? 0 : 1}, {"schema_differences", 0}, {"failed_checks", 0}};
  return v;
}

const RampGateRules kRules{3600};

TEST(RampGate, LoweringAndUnchangedAreNeverGated) {
  const std::vector<LastVerify> none;
  EXPECT_TRUE(rampGate(flagsWith(50), flagsWith(10), none, kRules).allowed);
  EXPECT_TRUE(rampGate(flagsWith(50), flagsWith(50), none, kRules).allowed);
  EXPECT_TRUE(rampGate(flagsWith(50), flagsWith(0), none, kRules).raised.empty());
  EXPECT_TRUE(rampGate(flagsWith(0, {{"orders", 40}}), flagsWith(0, {{"orders", 10}}), none, kRules).allowed);
  // Dropping an override that was above the global lowers the table: allowed.
  EXPECT_TRUE(rampGate(flagsWith(10, {{"orders", 40}}), flagsWith(10), none, kRules).allowed);
}

TEST(RampGate, GlobalRaiseNeedsACompleteEqualFreshVerify) {
  const auto before = flagsWith(0), after = flagsWith(5);
  auto decision = rampGate(before, after, {}, kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.raised, std::vector<std::string>{"reads_new_percent"});
  EXPECT_NE(decision.reason.find("no complete verify on record"), std::string::npos) << decision.reason;

  EXPECT_TRUE(rampGate(before, after, {verify("v1", "equal", 60, {"public.a"})}, kRules).allowed);

  decision = rampGate(before, after, {verify("v1", "differences", 60, {"public.a"})}, kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_NE(decision.reason.find("verify v1 (finished 2026-12-03T08:00:00Z) found differences (1 differing table(s)"),
            std::string::npos)
      << decision.reason;

  decision = rampGate(before, after, {verify("v1", "equal", 3601, {"public.a"})}, kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_NE(decision.reason.find("is 3601 s old, more than verify.max_age_s (3600 s)"), std::string::npos)
      << decision.reason;
}

TEST(RampGate, FilteredVerifiesDoNotProveTheWholeDatabase) {
  const auto before = flagsWith(0), after = flagsWith(5);
  // Only a --table verify: not enough for a global raise.
  auto decision = rampGate(before, after, {verify("v2", "equal", 10, {"public.a"}, true)}, kRules);
  EXPECT_FALSE(decision.allowed);
  // A complete one behind it is; but not when a newer filtered one found differences.
  EXPECT_TRUE(rampGate(before, after,
                       {verify("v2", "equal", 10, {"public.a"}, true), verify("v1", "equal", 60, {"public.a"})},
                       kRules)
                  .allowed);
  decision = rampGate(before, after,
                      {verify("v2", "differences", 10, {"public.a"}, true), verify("v1", "equal", 60, {"public.a"})},
                      kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_NE(decision.reason.find("the newer verify v2"), std::string::npos) << decision.reason;
}

TEST(RampGate, TableRaiseNeedsTheNewestVerifyCoveringIt) {
  const auto before = flagsWith(0), after = flagsWith(0, {{"orders", 20}});
  auto decision = rampGate(before, after, {verify("v1", "equal", 10, {"public.items"})}, kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.raised, std::vector<std::string>{"tables.orders.reads_new_percent"});
  EXPECT_NE(decision.reason.find("no verify on record covers orders"), std::string::npos) << decision.reason;
  // A key without schema covers any schema's table of that name; a --table verify is enough.
  EXPECT_TRUE(rampGate(before, after, {verify("v2", "equal", 10, {"shop.orders"}, true)}, kRules).allowed);
  EXPECT_FALSE(rampGate(before, flagsWith(0, {{"app.orders", 20}}), {verify("v2", "equal", 10, {"shop.orders"})},
                        kRules)
                   .allowed);
  // The newest covering verify decides, even when an older one was equal.
  decision = rampGate(before, after,
                      {verify("v3", "differences", 5, {"public.orders"}, true), verify("v1", "equal", 60, {"public.orders"})},
                      kRules);
  EXPECT_FALSE(decision.allowed);
  EXPECT_NE(decision.reason.find("tables.orders.reads_new_percent: verify v3"), std::string::npos) << decision.reason;
}

TEST(RampGate, AGlobalRaiseAlsoRaisesTablesWithoutTheirOwnPercent) {
  // orders has an override that is not reads_new_percent: it follows the global 0 -> 30.
  const auto before = flagsWith(0, {{"orders", std::nullopt}}), after = flagsWith(30, {{"orders", std::nullopt}});
  auto decision = rampGate(before, after, {verify("v1", "equal", 10, {"public.orders", "public.items"})}, kRules);
  EXPECT_TRUE(decision.allowed) << decision.reason;
  EXPECT_EQ(decision.raised, (std::vector<std::string>{"reads_new_percent", "tables.orders.reads_new_percent"}));
  // A table pinned at 30 does not rise with the global.
  decision = rampGate(flagsWith(0, {{"orders", 30}}), flagsWith(30, {{"orders", 30}}),
                      {verify("v1", "equal", 10, {"public.items"})}, kRules);
  EXPECT_TRUE(decision.allowed) << decision.reason;
  EXPECT_EQ(decision.raised, std::vector<std::string>{"reads_new_percent"});
}

}  // namespace
}  // namespace cutover::migrate
