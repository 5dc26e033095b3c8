// Cost of a metric update on the data path (common/metrics.h). Not a test: run by hand,
//   build/bench/metrics_bench --benchmark_min_time=0.5
// "/threads:2" rows update the same series from two threads at once (shared cache line).

#include <benchmark/benchmark.h>
#include <prometheus/histogram.h>

#include <vector>

#include "common/metrics.h"

namespace cutover::metrics {
namespace {

Registry& registry() {
  static Registry r;
  return r;
}

void BM_CounterIncrement(benchmark::State& state) {
  prometheus::Counter& counter = registry().statements(StatementKindLabel::Read, StoreLabel::New);
  for (auto _ : state) counter.Increment();
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

void BM_GaugeIncrement(benchmark::State& state) {
  prometheus::Gauge& gauge = registry().clientConnections();
  for (auto _ : state) gauge.Increment();
}
BENCHMARK(BM_GaugeIncrement)->Threads(1)->Threads(2);

// What a prometheus-cpp 1.0 histogram would cost: Observe locks a std::mutex per series.
void BM_PrometheusHistogramObserve(benchmark::State& state) {
  static prometheus::Histogram histogram{std::vector<double>(kLatencyBuckets.begin(), kLatencyBuckets.end())};
  double v = 0.0004;
  for (auto _ : state) {
    histogram.Observe(v);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_PrometheusHistogramObserve)->Threads(1)->Threads(2);

// A worker holding its own WorkerHistogram reference (the intended use).
void BM_WorkerHistogramObserve(benchmark::State& state) {
  WorkerHistogram& histogram = registry().statementDuration(StoreLabel::New);
  double v = 0.0004;
  for (auto _ : state) {
    histogram.observe(v);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_WorkerHistogramObserve)->Threads(1)->Threads(2);

// Looking the calling thread's histogram up on every observation (thread_local cache hit).
void BM_RegistryStatementDurationObserve(benchmark::State& state) {
  double v = 0.0004;
  for (auto _ : state) {
    registry().statementDuration(StoreLabel::Old).observe(v);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_RegistryStatementDurationObserve)->Threads(1)->Threads(2);

// A scrape with every series pre-created and two workers' histograms.
void BM_Serialize(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(registry().serialize());
}
BENCHMARK(BM_Serialize);

}  // namespace
}  // namespace cutover::metrics

BENCHMARK_MAIN();
