#pragma once

// Automatic rollback (DESIGN.md "Flags"): over a sliding window of auto_rollback.window_s, the
// confirmed-mismatch rate of shadow reads, the new store's error rate and the new/old p99
// latency ratio are checked against their thresholds; the first breached figure is returned so
// the caller performs the same rollback an operator would (trigger "auto"). A pure evaluator:
// the proxy feeds it cumulative figures once a second; it keeps only the samples of one window.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "common/metrics.h"
#include "config/config.h"

namespace cutover::flags {

// Cumulative figures since the process started (counters only grow).
struct HealthSample {
  std::chrono::steady_clock::time_point at;
  uint64_t new_errors = 0;        // errors of the new store the old one did not have (or on reads it served alone)
  uint64_t new_statements = 0;    // statements the new store ran (served or mirrored)
  uint64_t mismatches = 0;        // confirmed shadow-read mismatches
  uint64_t comparisons = 0;       // shadow reads compared (any result but dropped)
  metrics::WorkerHistogram::Snapshot old_latency, new_latency;
};

struct Breach {
  std::string figure;      // "new store error rate", "confirmed mismatch rate", "p99 latency ratio new/old"
  double value = 0;
  double threshold = 0;
  std::string detail;      // the counts behind the value, for the log line
  std::string describe() const;   // "new store error rate 0.0412 > 0.001 (17 errors in 412 statements over 30 s)"
};

// Below these volumes in a window a rate or a p99 says too little to act on.
inline constexpr uint64_t kMinStatementsForErrorRate = 20;
inline constexpr uint64_t kMinSamplesForP99 = 20;

class AutoRollback {
 public:
  explicit AutoRollback(const config::AutoRollbackConfig& config) : config_(config) {}

  // Adds a sample and checks the window ending at it against the thresholds.
  std::optional<Breach> observe(const HealthSample& sample);
  // Forgets every sample (after a rollback, or while nothing routes to the new store).
  void reset() { samples_.clear(); }

 private:
  config::AutoRollbackConfig config_;
  std::deque<HealthSample> samples_;
};

// The q-quantile (0 < q < 1) of the observations between two cumulative snapshots, by linear
// interpolation inside the bucket (as Prometheus' histogram_quantile); nullopt without samples.
std::optional<double> quantileBetween(const metrics::WorkerHistogram::Snapshot& from,
                                      const metrics::WorkerHistogram::Snapshot& to, double q);

}  // namespace cutover::flags
