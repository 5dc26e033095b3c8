#include "common/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace cutover::metrics {
namespace {

// The value of the sample line `series` (name plus label block, exactly as exposed), or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

bool hasLine(const std::string& text, const std::string& wanted) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line == wanted) return true;
  }
  return false;
}

TEST(MetricsTest, EveryDesignMetricHasItsTypeLine) {
  Registry registry;
  const std::string text = registry.serialize();
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"cutover_client_connections", "gauge"},
      {"cutover_backend_connections", "gauge"},
      {"cutover_statements_total", "counter"},
      {"cutover_statement_duration_seconds", "histogram"},
      {"cutover_mirror_writes_total", "counter"},
      {"cutover_divergences_total", "counter"},
      {"cutover_shadow_comparisons_total", "counter"},
      {"cutover_flag_changes_total", "counter"},
      {"cutover_rollbacks_total", "counter"},
      {"cutover_flags_version", "gauge"},
      {"cutover_reads_new_percent", "gauge"},
      {"cutover_store_up", "gauge"},
      {"cutover_read_fallbacks_total", "counter"},
  };
  for (const auto& [name, type] : expected) {
    EXPECT_TRUE(hasLine(text, "# TYPE " + name + " " + type)) << name << "\n" << text;
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
  }
}

TEST(MetricsTest, EveryLabelCombinationIsPreCreatedAtZero) {
  Registry registry;
  const std::string text = registry.serialize();
  for (auto kind : {"read", "write", "ddl", "transaction", "session"}) {
    for (auto store : {"old", "new"}) {
      EXPECT_EQ(sample(text, std::string("cutover_statements_total{kind=\"") + kind +
                                 "\",served_by=\"" + store + "\"}"),
                0)
          << kind << " " << store;
    }
  }
  for (auto result : {"ok", "error", "diverged", "dropped", "nondeterministic"}) {
    EXPECT_EQ(sample(text, std::string("cutover_mirror_writes_total{result=\"") + result + "\"}"), 0)
        << result;
  }
  for (auto result : {"match", "mismatch", "transient", "error", "dropped"}) {
    EXPECT_EQ(
        sample(text, std::string("cutover_shadow_comparisons_total{result=\"") + result + "\"}"), 0)
        << result;
  }
  for (auto trigger : {"manual", "auto"}) {
    EXPECT_EQ(sample(text, std::string("cutover_rollbacks_total{trigger=\"") + trigger + "\"}"), 0);
  }
  for (auto store : {"old", "new"}) {
    const std::string s = std::string("{store=\"") + store + "\"}";
    EXPECT_EQ(sample(text, "cutover_backend_connections" + s), 0);
    EXPECT_EQ(sample(text, "cutover_store_up" + s), 0);
    EXPECT_EQ(sample(text, "cutover_statement_duration_seconds_count" + s), 0);
    EXPECT_EQ(sample(text, "cutover_statement_duration_seconds_bucket{store=\"" +
                               std::string(store) + "\",le=\"+Inf\"}"),
              0);
  }
  EXPECT_EQ(sample(text, R"(cutover_divergences_total{kind="nondeterministic"})"), 0);
  for (auto name : {"cutover_flag_changes_total",
                    "cutover_read_fallbacks_total", "cutover_client_connections",
                    "cutover_flags_version", "cutover_reads_new_percent"}) {
    EXPECT_EQ(sample(text, name), 0) << name;
  }
}

TEST(MetricsTest, CountersAndGaugesMove) {
  Registry registry;
  registry.statements(StatementKindLabel::Write, StoreLabel::New).Increment();
  registry.statements(StatementKindLabel::Write, StoreLabel::New).Increment();
  registry.statements(StatementKindLabel::Read, StoreLabel::Old).Increment();
  registry.mirrorWrites(MirrorResult::Nondeterministic).Increment();
  registry.shadowComparisons(ShadowResult::Mismatch).Increment(3);
  registry.rollbacks(RollbackTrigger::Auto).Increment();
  registry.divergences(DivergenceKindLabel::TagMismatch).Increment();
  registry.readFallbacks().Increment();
  registry.flagChanges().Increment();
  registry.clientConnections().Increment();
  registry.backendConnections(StoreLabel::Old).Set(4);
  registry.storeUp(StoreLabel::New).Set(1);
  registry.flagsVersion().Set(7);
  registry.readsNewPercent().Set(50);

  const std::string text = registry.serialize();
  EXPECT_EQ(sample(text, R"(cutover_statements_total{kind="write",served_by="new"})"), 2);
  EXPECT_EQ(sample(text, R"(cutover_statements_total{kind="read",served_by="old"})"), 1);
  EXPECT_EQ(sample(text, R"(cutover_statements_total{kind="read",served_by="new"})"), 0);
  EXPECT_EQ(sample(text, R"(cutover_mirror_writes_total{result="nondeterministic"})"), 1);
  EXPECT_EQ(sample(text, R"(cutover_shadow_comparisons_total{result="mismatch"})"), 3);
  EXPECT_EQ(sample(text, R"(cutover_rollbacks_total{trigger="auto"})"), 1);
  EXPECT_EQ(sample(text, R"(cutover_rollbacks_total{trigger="manual"})"), 0);
  EXPECT_EQ(sample(text, R"(cutover_divergences_total{kind="tag_mismatch"})"), 1);
  EXPECT_EQ(sample(text, R"(cutover_divergences_total{kind="queue_full"})"), 0);
  EXPECT_EQ(registry.divergencesTotal(), 1);
  EXPECT_EQ(sample(text, "cutover_read_fallbacks_total"), 1);
  EXPECT_EQ(sample(text, "cutover_flag_changes_total"), 1);
  EXPECT_EQ(sample(text, "cutover_client_connections"), 1);
  EXPECT_EQ(sample(text, R"(cutover_backend_connections{store="old"})"), 4);
  EXPECT_EQ(sample(text, R"(cutover_store_up{store="new"})"), 1);
  EXPECT_EQ(sample(text, "cutover_flags_version"), 7);
  EXPECT_EQ(sample(text, "cutover_reads_new_percent"), 50);
}

TEST(MetricsTest, HistogramSumsEveryWorkerThread) {
  Registry registry;
  auto worker = [&registry](double seconds, int n) {
    WorkerHistogram& h = registry.statementDuration(StoreLabel::New);
    for (int i = 0; i < n; ++i) h.observe(seconds);
  };
  std::thread a(worker, 0.0003, 10);   // le 0.0005
  std::thread b(worker, 0.002, 5);     // le 0.0025
  a.join();
  b.join();
  worker(20.0, 1);  // this thread: above the last bound, +Inf only
  registry.statementDuration(StoreLabel::Old).observe(0.00005);  // on the bound: le 5e-05

  const std::string text = registry.serialize();
  auto bucket = [&](const std::string& store, const std::string& le) {
    return sample(text, "cutover_statement_duration_seconds_bucket{store=\"" + store +
                            "\",le=\"" + le + "\"}");
  };
  EXPECT_EQ(bucket("new", "0.00025"), 0) << text;
  EXPECT_EQ(bucket("new", "0.0005"), 10);
  EXPECT_EQ(bucket("new", "0.0025"), 15);
  EXPECT_EQ(bucket("new", "10"), 15);
  EXPECT_EQ(bucket("new", "+Inf"), 16);
  EXPECT_EQ(sample(text, R"(cutover_statement_duration_seconds_count{store="new"})"), 16);
  EXPECT_NEAR(sample(text, R"(cutover_statement_duration_seconds_sum{store="new"})"),
              10 * 0.0003 + 5 * 0.002 + 20.0, 1e-9);
  EXPECT_EQ(bucket("old", "5e-05"), 1);
  EXPECT_EQ(sample(text, R"(cutover_statement_duration_seconds_count{store="old"})"), 1);
}

TEST(MetricsTest, TwoRegistriesDoNotShareWorkerHistograms) {
  Registry first;
  first.statementDuration(StoreLabel::Old).observe(0.001);
  Registry second;
  second.statementDuration(StoreLabel::Old).observe(0.001);
  second.statementDuration(StoreLabel::Old).observe(0.001);
  EXPECT_EQ(sample(first.serialize(), R"(cutover_statement_duration_seconds_count{store="old"})"), 1);
  EXPECT_EQ(sample(second.serialize(), R"(cutover_statement_duration_seconds_count{store="old"})"),
            2);
}

TEST(MetricsTest, GlobalIsOneInstance) { EXPECT_EQ(&global(), &global()); }

}  // namespace
}  // namespace cutover::metrics
