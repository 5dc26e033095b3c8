#include "proxy/mirror_sequencer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace cutover::proxy {
namespace {

TEST(MirrorSequencer, TheLowestTicketIsReadyAtOnce) {
  MirrorSequencer s;
  const uint64_t a = s.take();
  const uint64_t b = s.take();
  EXPECT_LT(a, b);
  EXPECT_TRUE(s.readyOrWait(a, [] { FAIL() << "no wait expected"; }));
  EXPECT_EQ(s.outstanding(), 2u);
}

TEST(MirrorSequencer, AWaiterWakesOnlyWhenEveryLowerTicketIsReleased) {
  MirrorSequencer s;
  const uint64_t a = s.take(), b = s.take(), c = s.take();
  int woken = 0;
  EXPECT_FALSE(s.readyOrWait(c, [&] { ++woken; }));
  s.release(b);   // out of order: a is still outstanding
  EXPECT_EQ(woken, 0);
  s.release(a);
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(s.readyOrWait(c, [] {}));
  s.release(c);
  EXPECT_EQ(s.outstanding(), 0u);
}

TEST(MirrorSequencer, ATicketGivenUpWhileWaitingNeverWakes) {
  MirrorSequencer s;
  const uint64_t a = s.take(), b = s.take(), c = s.take();
  bool b_woken = false, c_woken = false;
  EXPECT_FALSE(s.readyOrWait(b, [&] { b_woken = true; }));
  EXPECT_FALSE(s.readyOrWait(c, [&] { c_woken = true; }));
  s.release(b);   // its session went away while it waited
  EXPECT_FALSE(b_woken);
  s.release(a);
  EXPECT_FALSE(b_woken);
  EXPECT_TRUE(c_woken);
}

TEST(MirrorTicketTest, ReleasedOnceWhenDroppedOrMoved) {
  MirrorSequencer s;
  {
    MirrorTicket t(&s, s.take());
    MirrorTicket moved = std::move(t);
    EXPECT_FALSE(t);
    EXPECT_TRUE(moved);
    EXPECT_EQ(s.outstanding(), 1u);
  }
  EXPECT_EQ(s.outstanding(), 0u);
  MirrorTicket u(&s, s.take());
  u.release();
  u.release();
  EXPECT_EQ(s.outstanding(), 0u);
}

// Threads take tickets and apply "writes" in ticket order only: the applied sequence is exactly
// 1..N whatever the interleaving.
TEST(MirrorSequencer, ThreadsApplyInTicketOrder) {
  MirrorSequencer s;
  constexpr int kThreads = 4, kEach = 2000;
  std::mutex mu;
  std::vector<uint64_t> applied;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        const uint64_t ticket = s.take();
        std::atomic<bool> ready{false};
        if (s.readyOrWait(ticket, [&ready] { ready = true; })) ready = true;
        while (!ready) std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          applied.push_back(ticket);
        }
        s.release(ticket);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(applied.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < applied.size(); ++i) EXPECT_EQ(applied[i], i + 1) << "at " << i;
  EXPECT_EQ(s.outstanding(), 0u);
}

}  // namespace
}  // namespace cutover::proxy
