// Cost of router/ on the data path: a cache hit (repeated text), a miss (libpg_query parse +
// tree walk), and decide(). Run by hand: build-*/bench/classifier_bench.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "router/classifier.h"
#include "router/decide.h"
#include "router/read_hazards.h"
#include "router/statement_rules.h"

namespace {

using namespace cutover::router;

const char* const kStatements[] = {
    // short: pgbench -S
    "SELECT abalance FROM pgbench_accounts WHERE aid = 4711;",
    // pgbench tpcb-like write
    "UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 4711;",
    // an ORM-shaped read: joins, CTE, functions, ORDER BY / LIMIT
    "WITH recent AS (SELECT o.id, o.user_id, o.total FROM public.orders o WHERE o.created_at > "
    "now() - interval '7 days') SELECT u.id, lower(u.email), coalesce(sum(r.total), 0) AS total, "
    "count(*) FROM users u LEFT JOIN recent r ON r.user_id = u.id WHERE u.active AND u.id = ANY($1) "
    "GROUP BY u.id, u.email ORDER BY total DESC LIMIT 50",
};

void BM_ClassifyHit(benchmark::State& state) {
  Classifier classifier;
  std::string text = kStatements[state.range(0)];
  classifier.classify(text);
  for (auto _ : state) benchmark::DoNotOptimize(&classifier.classify(text));
  state.counters["text_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_ClassifyHit)->DenseRange(0, 2);

void BM_ClassifyHitAmong4096(benchmark::State& state) {
  // A full cache: lookups spread over many entries (cache-unfriendly hash buckets).
  Classifier classifier(4096);
  std::vector<std::string> texts;
  for (int i = 0; i < 4096; ++i) texts.push_back("SELECT * FROM t WHERE id = " + std::to_string(i));
  for (const std::string& text : texts) classifier.classify(text);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(&classifier.classify(texts[i]));
    i = (i + 613) % texts.size();
  }
}
BENCHMARK(BM_ClassifyHitAmong4096);

// Apps that inline their literals (ORMs building SQL text, psycopg2's client-side parameters):
// every run has other strings and numbers. The shape key (router/cache_key.h) makes these hits.
void BM_ClassifyInlinedLiterals(benchmark::State& state) {
  Classifier classifier;
  std::vector<std::string> texts;
  // More texts than the cache holds (4096): without the shape key every run would be a miss.
  for (int i = 0; i < 50000; ++i) {
    if (state.range(0) == 0) {
      texts.push_back("SELECT id, name FROM users WHERE email = 'user" + std::to_string(i) +
                      "@example.com' AND status = 'active' AND age > " + std::to_string(i % 90));
    } else {
      texts.push_back("INSERT INTO events (kind, payload, amount) VALUES ('kind" + std::to_string(i) + "', E'{\\\"n\\\": " +
                      std::to_string(i) + "}', " + std::to_string(i) + ".25) RETURNING id");
    }
  }
  classifier.classify(texts[0]);
  size_t i = 1;
  for (auto _ : state) {
    benchmark::DoNotOptimize(&classifier.classify(texts[i]));
    i = (i + 1) % texts.size();
  }
  state.counters["hit_ratio"] = static_cast<double>(classifier.hits()) /
                                static_cast<double>(classifier.hits() + classifier.misses());
  state.counters["text_bytes"] = static_cast<double>(texts[1].size());
}
BENCHMARK(BM_ClassifyInlinedLiterals)->DenseRange(0, 1);

void BM_ClassifyMiss(benchmark::State& state) {
  std::string text = kStatements[state.range(0)];
  for (auto _ : state) benchmark::DoNotOptimize(classifySql(text));
  state.counters["text_bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_ClassifyMiss)->DenseRange(0, 2);

// The read-hazard check of an autocommit read (router/read_hazards.h) against a database that
// defines 1,000 volatile functions and 100 views calling them: what every such read pays.
void BM_ReadHazards(benchmark::State& state) {
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int i = 0; i < 1000; ++i) rows.push_back({"function", "f:app_fn_" + std::to_string(i)});
  for (int i = 0; i < 100; ++i) rows.push_back({"view", "r:app_view_" + std::to_string(i)});
  const ReadHazards hazards = readHazardsFrom(rows);
  const StatementInfo info = classifySql(kStatements[state.range(0)]);
  for (auto _ : state) benchmark::DoNotOptimize(hazardOf(info, hazards));
  state.counters["names"] = static_cast<double>(info.tables.size() + info.routine_names.size());
}
BENCHMARK(BM_ReadHazards)->Arg(0)->Arg(2);

void BM_Decide(benchmark::State& state) {
  StatementInfo info = classifySql(kStatements[0]);
  FlagView flags{.writes = cutover::config::WritesMode::Dual, .reads_new_percent = 30};
  SessionView session{.session_hash = stableHash("session-42")};
  for (auto _ : state) benchmark::DoNotOptimize(decide(info, kStatements[0], flags, session));
}
BENCHMARK(BM_Decide);

}  // namespace

BENCHMARK_MAIN();
