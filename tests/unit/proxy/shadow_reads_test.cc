#include "proxy/shadow_reads.h"

#include <gtest/gtest.h>

#include <string>

#include "common/metrics.h"
#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

using router::Store;

double dropped() { return metrics::global().shadowComparisons(metrics::ShadowResult::Dropped).Value(); }

// A shadow of `unit` served by `serve`, charging `bytes` to the budget.
std::shared_ptr<ShadowRead> shadowOf(uint64_t unit, Store serve, size_t bytes = 100) {
  auto s = std::make_shared<ShadowRead>();
  s->unit = unit;
  s->serve = serve;
  s->budget = bytes;
  s->old_side.emplace(s->rules);
  s->new_side.emplace(s->rules);
  return s;
}

std::vector<uint8_t> body(const std::string& encoded) { return {encoded.begin() + 5, encoded.end()}; }

TEST(ShadowReads, AShadowIsJudgedOnceBothSidesAreIn) {
  ShadowBudget budget;
  ShadowReads reads(budget);
  ASSERT_TRUE(reads.start(shadowOf(1, Store::Old, 300)));
  EXPECT_EQ(budget.inFlight(), 1);
  EXPECT_EQ(budget.bytes(), 300u);
  EXPECT_EQ(reads.sideDone(Store::New, false), nullptr);   // the other side first: still waits
  std::shared_ptr<ShadowRead> done = reads.sideDone(Store::Old, true);
  ASSERT_NE(done, nullptr);
  EXPECT_EQ(done->unit, 1u);
  EXPECT_TRUE(done->serve_done && done->other_done);
  EXPECT_EQ(reads.inFlight(), 0u);
  EXPECT_EQ(budget.inFlight(), 0);   // given back as it leaves the flight
  EXPECT_EQ(budget.bytes(), 0u);
}

TEST(ShadowReads, EachStoreAnswersItsSidesInTheOrderTheyWereSent) {
  ShadowBudget budget;
  ShadowReads reads(budget);
  ASSERT_TRUE(reads.start(shadowOf(1, Store::Old)));
  ASSERT_TRUE(reads.sideDone(Store::Old, true) == nullptr);   // unit 1 served; its shadow on new pending
  ASSERT_TRUE(reads.start(shadowOf(2, Store::Old)));
  ASSERT_TRUE(reads.start(shadowOf(3, Store::New)));          // the ramp served unit 3 from new
  // The serve side is the newest's; the other side of each store is its oldest pending.
  EXPECT_EQ(reads.sideFor(Store::New, true)->unit, 3u);
  EXPECT_EQ(reads.sideFor(Store::Old, true), nullptr);        // the newest is served by new
  EXPECT_EQ(reads.sideFor(Store::New, false)->unit, 1u);
  EXPECT_EQ(reads.sideFor(Store::Old, false)->unit, 3u);
  EXPECT_EQ(reads.sideDone(Store::New, false)->unit, 1u);
  EXPECT_EQ(reads.sideFor(Store::New, false)->unit, 2u);
}

TEST(ShadowReads, BoundsDropAndCount) {
  ShadowBudget budget(/*max_shadows=*/3, /*max_bytes=*/1000);
  ShadowReads reads(budget);
  const double before = dropped();
  EXPECT_FALSE(reads.start(shadowOf(1, Store::Old, 1001)));   // more than the worker's bytes
  for (uint64_t u = 2; u <= 4; ++u) EXPECT_TRUE(reads.start(shadowOf(u, Store::Old, 10)));
  EXPECT_FALSE(reads.start(shadowOf(5, Store::Old, 10)));     // the worker's count
  EXPECT_EQ(dropped() - before, 2);
  ShadowBudget wide;
  ShadowReads session(wide);
  for (uint64_t u = 1; u <= ShadowReads::kMaxPerSession; ++u) EXPECT_TRUE(session.start(shadowOf(u, Store::Old)));
  EXPECT_FALSE(session.start(shadowOf(99, Store::Old)));     // the session's own bound
  EXPECT_EQ(wide.inFlight(), static_cast<int>(ShadowReads::kMaxPerSession));
}

TEST(ShadowReads, AnAbandonedReadEndsWithItsOtherSide) {
  ShadowBudget budget;
  ShadowReads reads(budget);
  ASSERT_TRUE(reads.start(shadowOf(7, Store::New)));
  EXPECT_EQ(reads.abandon(7), nullptr);          // its other side (old) is still to come
  EXPECT_EQ(reads.sideFor(Store::New, true), nullptr);   // nothing more is digested on the served side
  std::shared_ptr<ShadowRead> done = reads.sideDone(Store::Old, false);
  ASSERT_NE(done, nullptr);
  EXPECT_TRUE(done->abandoned);
  ASSERT_TRUE(reads.start(shadowOf(8, Store::Old)));
  ASSERT_EQ(reads.sideDone(Store::New, false), nullptr);
  done = reads.abandon(8);                       // its other side was in already: ends now
  ASSERT_NE(done, nullptr);
  EXPECT_TRUE(done->abandoned);
  EXPECT_EQ(budget.inFlight(), 0);
  EXPECT_EQ(reads.abandon(9), nullptr);          // not in flight: nothing
}

TEST(ShadowReads, CancelAndDropAllGiveTheBudgetBack) {
  ShadowBudget budget;
  const double before = dropped();
  {
    ShadowReads reads(budget);
    ASSERT_TRUE(reads.start(shadowOf(1, Store::Old, 50)));
    ASSERT_TRUE(reads.start(shadowOf(2, Store::Old, 60)));
    ASSERT_TRUE(reads.start(shadowOf(3, Store::Old, 70)));
    reads.cancel(2);
    EXPECT_EQ(budget.bytes(), 120u);
    EXPECT_EQ(reads.sideFor(Store::New, false)->unit, 1u);
    EXPECT_EQ(reads.dropAll(), 2u);
    EXPECT_EQ(budget.inFlight(), 0);
    ASSERT_TRUE(reads.start(shadowOf(4, Store::Old, 80)));
  }   // a session closing with a shadow in flight gives its budget back too
  EXPECT_EQ(budget.inFlight(), 0);
  EXPECT_EQ(budget.bytes(), 0u);
  EXPECT_EQ(dropped() - before, 4);
}

TEST(ShadowReads, DigestsEachSideAndSpoilsCopyOutput) {
  auto s = shadowOf(1, Store::Old);
  const auto tag = body(protocol::encode(protocol::CommandComplete{"SELECT 0"}));
  s->digest(Store::Old, protocol::CommandComplete::kType, tag);
  EXPECT_TRUE(s->old_side->finished());
  EXPECT_FALSE(s->new_side->finished());
  s->digest(Store::New, protocol::ParseComplete::kType, {});   // not part of a result
  EXPECT_FALSE(s->new_side->finished());
  s->digest(Store::New, protocol::CopyOutResponse::kType, {});
  EXPECT_FALSE(s->spoiled.empty());
}

}  // namespace
}  // namespace cutover::proxy
