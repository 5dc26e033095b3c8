#include "common/metrics.h"

#include <prometheus/family.h>
#include <prometheus/text_serializer.h>

#include <limits>

namespace cutover::metrics {

void WorkerHistogram::addTo(Snapshot& into) const {
  for (size_t i = 0; i < kBuckets; ++i) into.counts[i] += counts_[i].load(std::memory_order_relaxed);
  into.count += count_.load(std::memory_order_relaxed);
  into.sum += sum_.load(std::memory_order_relaxed);
}

namespace {

constexpr std::string_view kPrefix = "cutover_";

// Builds the family and pre-creates every label combination of `series`.
template <typename Metric, typename Builder, typename... Dims>
void build(prometheus::Registry& registry, Builder builder, std::string_view name,
           std::string_view help, Series<Metric, Dims...>& series) {
  auto& family =
      builder.Name(std::string(kPrefix) + std::string(name)).Help(std::string(help)).Register(registry);
  Series<Metric, Dims...>::forEachCombination(
      [&](size_t flat, const std::map<std::string, std::string>& labels) {
        series.set(flat, &family.Add(labels));
      });
}

template <typename... Dims>
prometheus::MetricFamily collect(std::string_view name, std::string_view help,
                                 const WorkerHistogramSeries<Dims...>& series) {
  prometheus::MetricFamily family;
  family.name = std::string(kPrefix) + std::string(name);
  family.help = std::string(help);
  family.type = prometheus::MetricType::Histogram;
  Series<WorkerHistogram, Dims...>::forEachCombination(
      [&](size_t flat, const std::map<std::string, std::string>& labels) {
        WorkerHistogram::Snapshot sum = series.sum(flat);
        prometheus::ClientMetric metric;
        for (const auto& [label, value] : labels) metric.label.push_back({label, value});
        metric.histogram.sample_count = sum.count;
        metric.histogram.sample_sum = sum.sum;
        uint64_t cumulative = 0;
        for (size_t i = 0; i < WorkerHistogram::kBuckets; ++i) {
          cumulative += sum.counts[i];
          double bound = i < kLatencyBuckets.size() ? kLatencyBuckets[i]
                                                    : std::numeric_limits<double>::infinity();
          metric.histogram.bucket.push_back({cumulative, bound});
        }
        // The buckets and the count are read at slightly different moments; keep the exposition
        // self-consistent (the +Inf bucket equals the count).
        metric.histogram.sample_count = cumulative;
        family.metric.push_back(std::move(metric));
      });
  return family;
}

}  // namespace

Registry::Registry() : registry_(std::make_shared<prometheus::Registry>()) {
#define CUTOVER_BUILD_COUNTER(name, accessor, help, ...) \
  build(*registry_, prometheus::BuildCounter(), #name, help, name##_);
#define CUTOVER_BUILD_GAUGE(name, accessor, help, ...) \
  build(*registry_, prometheus::BuildGauge(), #name, help, name##_);
  CUTOVER_COUNTERS(CUTOVER_BUILD_COUNTER)
  CUTOVER_GAUGES(CUTOVER_BUILD_GAUGE)
#undef CUTOVER_BUILD_COUNTER
#undef CUTOVER_BUILD_GAUGE
}

std::vector<prometheus::MetricFamily> Registry::collectHistograms() const {
  std::vector<prometheus::MetricFamily> families;
#define CUTOVER_COLLECT_HISTOGRAM(name, accessor, help, ...) \
  families.push_back(collect(#name, help, name##_));
  CUTOVER_HISTOGRAMS(CUTOVER_COLLECT_HISTOGRAM)
#undef CUTOVER_COLLECT_HISTOGRAM
  return families;
}

std::string Registry::serialize() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (auto& family : collectHistograms()) families.push_back(std::move(family));
  return prometheus::TextSerializer().Serialize(families);
}

Registry& global() {
  static Registry registry;
  return registry;
}

}  // namespace cutover::metrics
