#include "flags/auto_rollback.h"

#include <gtest/gtest.h>

namespace cutover::flags {
namespace {

using std::chrono::seconds;

config::AutoRollbackConfig thresholds() {
  config::AutoRollbackConfig c;
  c.enabled = true;
  c.window_s = 30;
  c.max_mismatch_rate = 0.001;
  c.max_new_error_rate = 0.01;
  c.max_p99_ratio = 1.5;
  return c;
}

// `n` observations of `seconds` each added into a cumulative snapshot.
void addLatency(metrics::WorkerHistogram::Snapshot& s, double value, uint64_t n) {
  size_t i = 0;
  while (i < metrics::kLatencyBuckets.size() && value > metrics::kLatencyBuckets[i]) ++i;
  s.counts[i] += n;
  s.count += n;
  s.sum += value * static_cast<double>(n);
}

struct Clock {
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + seconds(1000);
  HealthSample sample;
  HealthSample tick(int s = 1) {
    now += seconds(s);
    sample.at = now;
    return sample;
  }
};

TEST(AutoRollback, QuiescentTrafficNeverTrips) {
  AutoRollback ar(thresholds());
  Clock c;
  for (int i = 0; i < 100; ++i) {
    c.sample.new_statements += 100;
    addLatency(c.sample.old_latency, 0.001, 100);
    addLatency(c.sample.new_latency, 0.001, 100);
    EXPECT_FALSE(ar.observe(c.tick())) << i;
  }
}

TEST(AutoRollback, NewStoreErrorRateTrips) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.new_statements += 100;
  c.sample.new_errors += 5;   // 5 % > 1 %
  auto breach = ar.observe(c.tick());
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->figure, "new store error rate");
  EXPECT_DOUBLE_EQ(breach->value, 0.05);
  EXPECT_NE(breach->describe().find("5 errors in 100 statements"), std::string::npos) << breach->describe();
}

TEST(AutoRollback, TooFewStatementsSayNothing) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.new_statements += kMinStatementsForErrorRate - 1;
  c.sample.new_errors += 10;
  EXPECT_FALSE(ar.observe(c.tick()));
}

TEST(AutoRollback, ErrorsOlderThanTheWindowAreForgotten) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.new_statements += 1000;
  c.sample.new_errors += 5;   // 0.5 % < 1 %
  EXPECT_FALSE(ar.observe(c.tick()));
  // 40 s of clean traffic: the window (30 s) no longer holds the errors.
  for (int i = 0; i < 40; ++i) {
    c.sample.new_statements += 1;
    EXPECT_FALSE(ar.observe(c.tick()));
  }
  // Now 1 error in 25 statements is 4 %: trips, and the detail counts only the window's.
  c.sample.new_statements += 24;
  c.sample.new_errors += 1;
  auto breach = ar.observe(c.tick());
  ASSERT_TRUE(breach);
  EXPECT_NE(breach->detail.find("1 errors"), std::string::npos) << breach->detail;
}

TEST(AutoRollback, ConfirmedMismatchRateTrips) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.comparisons += 5000;
  c.sample.mismatches += 2;   // 0.04 % < 0.1 %
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.comparisons += 500;
  c.sample.mismatches += 10;
  auto breach = ar.observe(c.tick());
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->figure, "confirmed mismatch rate");
  EXPECT_NEAR(breach->value, 12.0 / 5500, 1e-12);
}

TEST(AutoRollback, P99RatioTripsOnASlowNewStore) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  addLatency(c.sample.old_latency, 0.0008, 200);
  addLatency(c.sample.new_latency, 0.0008, 150);
  addLatency(c.sample.new_latency, 0.04, 50);   // a quarter of new's statements take 40 ms
  auto breach = ar.observe(c.tick());
  ASSERT_TRUE(breach);
  EXPECT_EQ(breach->figure, "p99 latency ratio new/old");
  EXPECT_GT(breach->value, 10);
}

TEST(AutoRollback, SameLatencyDoesNotTrip) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  addLatency(c.sample.old_latency, 0.002, 500);
  addLatency(c.sample.new_latency, 0.002, 500);
  EXPECT_FALSE(ar.observe(c.tick()));
}

TEST(AutoRollback, ResetForgetsTheWindow) {
  AutoRollback ar(thresholds());
  Clock c;
  EXPECT_FALSE(ar.observe(c.tick()));
  c.sample.new_statements += 100;
  c.sample.new_errors += 50;
  ar.reset();
  EXPECT_FALSE(ar.observe(c.tick()));   // the first sample after a reset is only a baseline
}

TEST(QuantileBetween, InterpolatesInsideTheBucket) {
  metrics::WorkerHistogram::Snapshot from, to;
  addLatency(to, 0.0007, 100);   // bucket (0.0005, 0.001]
  auto p50 = quantileBetween(from, to, 0.5);
  ASSERT_TRUE(p50);
  EXPECT_NEAR(*p50, 0.00075, 1e-9);
  EXPECT_FALSE(quantileBetween(to, to, 0.99));
}

}  // namespace
}  // namespace cutover::flags
