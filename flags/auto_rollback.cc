#include "flags/auto_rollback.h"

#include <fmt/format.h>

namespace cutover::flags {

std::string Breach::describe() const {
  return fmt::format("{} {:.4g} > {:.4g} ({})", figure, value, threshold, detail);
}

std::optional<double> quantileBetween(const metrics::WorkerHistogram::Snapshot& from,
                                      const metrics::WorkerHistogram::Snapshot& to, double q) {
  constexpr size_t kBuckets = metrics::WorkerHistogram::kBuckets;
  std::array<uint64_t, kBuckets> delta{};
  uint64_t total = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    delta[i] = to.counts[i] >= from.counts[i] ? to.counts[i] - from.counts[i] : 0;
    total += delta[i];
  }
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  uint64_t below = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    if (delta[i] == 0 || static_cast<double>(below + delta[i]) < rank) {
      below += delta[i];
      continue;
    }
    if (i == kBuckets - 1) return metrics::kLatencyBuckets.back();   // +Inf: the largest finite bound
    const double lower = i == 0 ? 0.0 : metrics::kLatencyBuckets[i - 1];
    const double upper = metrics::kLatencyBuckets[i];
    return lower + (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(delta[i]);
  }
  return metrics::kLatencyBuckets.back();
}

std::optional<Breach> AutoRollback::observe(const HealthSample& sample) {
  samples_.push_back(sample);
  const auto window = std::chrono::seconds(config_.window_s);
  // Keep the newest sample at or before the window's start as the baseline.
  while (samples_.size() > 2 && sample.at - samples_[1].at >= window) samples_.pop_front();
  if (samples_.size() < 2) return std::nullopt;
  const HealthSample& base = samples_.front();
  const double seconds = std::chrono::duration<double>(sample.at - base.at).count();
  const auto diff = [](uint64_t now, uint64_t then) { return now >= then ? now - then : 0; };

  const uint64_t mismatches = diff(sample.mismatches, base.mismatches);
  const uint64_t comparisons = diff(sample.comparisons, base.comparisons);
  if (comparisons > 0 && mismatches > 0) {
    const double rate = static_cast<double>(mismatches) / static_cast<double>(comparisons);
    if (rate > config_.max_mismatch_rate) {
      return Breach{"confirmed mismatch rate", rate, config_.max_mismatch_rate,
                    fmt::format("{} confirmed mismatches in {} shadow comparisons over {:.0f} s", mismatches,
                                comparisons, seconds)};
    }
  }
  const uint64_t errors = diff(sample.new_errors, base.new_errors);
  const uint64_t statements = diff(sample.new_statements, base.new_statements);
  if (statements >= kMinStatementsForErrorRate && errors > 0) {
    const double rate = static_cast<double>(errors) / static_cast<double>(statements);
    if (rate > config_.max_new_error_rate) {
      return Breach{"new store error rate", rate, config_.max_new_error_rate,
                    fmt::format("{} errors in {} statements on the new store over {:.0f} s", errors, statements,
                                seconds)};
    }
  }
  const uint64_t old_count = diff(sample.old_latency.count, base.old_latency.count);
  const uint64_t new_count = diff(sample.new_latency.count, base.new_latency.count);
  if (old_count >= kMinSamplesForP99 && new_count >= kMinSamplesForP99) {
    auto old_p99 = quantileBetween(base.old_latency, sample.old_latency, 0.99);
    auto new_p99 = quantileBetween(base.new_latency, sample.new_latency, 0.99);
    if (old_p99 && new_p99 && *old_p99 > 0) {
      const double ratio = *new_p99 / *old_p99;
      if (ratio > config_.max_p99_ratio) {
        return Breach{"p99 latency ratio new/old", ratio, config_.max_p99_ratio,
                      fmt::format("p99 new {:.2f} ms over {} statements, old {:.2f} ms over {}, {:.0f} s",
                                  *new_p99 * 1000, new_count, *old_p99 * 1000, old_count, seconds)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace cutover::flags
