#include "migrate/verify_chunk.h"

#include <fmt/format.h>

#include <thread>

#include "compare/compare_rules.h"

namespace cutover::migrate {
namespace {

// Differences kept per chunk in the job table (all are counted).
constexpr size_t kKeptDifferences = 100;

nlohmann::json differencesJson(const std::vector<RowDiff>& diffs) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < diffs.size() && i < kKeptDifferences; ++i) out.push_back(toJson(diffs[i]));
  return out;
}

nlohmann::json outcomeJson(const ChunkOutcome& outcome) {
  return {{"differences", differencesJson(outcome.differences)},
          {"difference_count", outcome.differences.size()},
          {"transient", outcome.transient},
          {"ranges", outcome.ranges_checked}};
}

const TablePlan* findTable(const std::vector<TablePlan>& tables, const std::string& name) {
  for (const TablePlan& t : tables) {
    if (t.table.qualified() == name) return &t;
  }
  return nullptr;
}

Result<ChunkResult> sample(const TablePlan& plan, const ChunkContext& context, StorePair& stores) {
  ChunkChecker checker(stores, context.config.compare.recheck);
  auto keys_reply = stores.one(true, sampleKeysSql(plan, static_cast<long>(context.sample)));
  if (!keys_reply) return keys_reply.status();
  std::vector<KeyValues> keys;
  for (int r = 0; r < keys_reply->rows(); ++r) {
    KeyValues key;
    for (int c = 0; c < keys_reply->columns(); ++c) key.emplace_back(keys_reply->value(r, c));
    keys.push_back(std::move(key));
  }
  ChunkOutcome outcome;
  for (size_t first = 0; first < keys.size(); first += 1000) {
    std::vector<KeyValues> part(keys.begin() + static_cast<long>(first),
                                keys.begin() + static_cast<long>(std::min(keys.size(), first + 1000)));
    auto diffs = checker.compareKeys(plan, part);
    if (!diffs) return diffs.status();
    for (RowDiff& d : *diffs) outcome.differences.push_back(std::move(d));
  }
  if (Status s = checker.confirm(plan, outcome); !s) return s;
  nlohmann::json result = outcomeJson(outcome);
  result["sampled"] = keys.size();
  return ChunkResult{0, 0, std::move(result)};
}

// Beside live writes two stores' aggregates of one moment never quite agree: a differing
// aggregate is confirmed only if re-reading it after the recheck delay gave the same values on
// both stores (the table did not move meanwhile); one whose values moved is "unsettled".
Result<ChunkResult> aggregates(const TablePlan& plan, const ChunkContext& context, StorePair& stores) {
  using Values = std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>>;
  const std::vector<std::string> names = aggregateNames(plan);
  nlohmann::json list = nlohmann::json::array();
  int64_t differing = 0, unsettled = 0;
  Values previous;
  for (int attempt = 0;; ++attempt) {
    auto reply = stores.both(aggregatesSql(plan));
    if (!reply) return reply.status();
    list = nlohmann::json::array();
    differing = 0;
    Values values;
    for (int c = 0; c < reply->old_reply.columns() && c < static_cast<int>(names.size()); ++c) {
      auto o = reply->old_reply.optional(0, c), n = reply->new_reply.optional(0, c);
      values.emplace_back(o, n);
      const uint32_t type = PQftype(reply->old_reply.result.get(), c);
      const bool equal = compare::sameColumnValue(type, o, n, plan.rules.values);
      if (!equal) ++differing;
      nlohmann::json entry = {{"name", names[static_cast<size_t>(c)]}, {"equal", equal}};
      const bool shown = context.show_values || c == 0;  // the row count is never a secret
      entry["old"] = o ? nlohmann::json(shown ? *o : *compare::shownValue(o, false)) : nlohmann::json();
      entry["new"] = n ? nlohmann::json(shown ? *n : *compare::shownValue(n, false)) : nlohmann::json();
      list.push_back(std::move(entry));
    }
    if (differing == 0) break;
    if (attempt >= context.config.compare.recheck.attempts) {
      for (size_t c = 0; attempt > 0 && c < list.size() && c < previous.size(); ++c) {
        if (list[c]["equal"].get<bool>() || values[c] == previous[c]) continue;
        list[c]["unsettled"] = true;
        --differing;
        ++unsettled;
      }
      break;
    }
    previous = std::move(values);
    std::this_thread::sleep_for(std::chrono::milliseconds(context.config.compare.recheck.delay_ms));
  }
  return ChunkResult{0, 0, {{"aggregates", list}, {"differing", differing}, {"transient", unsettled}}};
}

}  // namespace

nlohmann::json toJson(const RowDiff& diff) {
  nlohmann::json columns = nlohmann::json::array();
  for (const compare::ValueDifference& v : diff.values) {
    columns.push_back({{"column", v.column},
                       {"old", v.old_value ? nlohmann::json(*v.old_value) : nlohmann::json()},
                       {"new", v.new_value ? nlohmann::json(*v.new_value) : nlohmann::json()}});
  }
  nlohmann::json out = {{"key", diff.key}, {"kind", toString(diff.kind)}, {"columns", columns}};
  if (!diff.detail.empty()) out["detail"] = diff.detail;
  return out;
}

Result<nlohmann::json> runCheck(const config::VerifyCheck& check, const config::Config& config,
                                bool show_values, StorePair& stores) {
  const compare::ValueRules rules = compare::valueRulesFrom(config.compare);
  nlohmann::json result, previous;
  for (int attempt = 0;; ++attempt) {
    auto reply = stores.both(Sql{check.sql, {}});
    if (!reply) return Status::error(fmt::format("check '{}': {}", check.name, reply.status().message()));
    const pgclient::Reply& o = reply->old_reply;
    const pgclient::Reply& n = reply->new_reply;
    bool equal = o.rows() == n.rows() && o.columns() == n.columns();
    auto rowsOf = [&](const pgclient::Reply& side) {
      nlohmann::json rows = nlohmann::json::array();
      for (int r = 0; r < side.rows(); ++r) {
        nlohmann::json row = nlohmann::json::array();
        for (int c = 0; c < side.columns(); ++c) {
          auto v = side.optional(r, c);
          row.push_back(v ? nlohmann::json(show_values ? *v : *compare::shownValue(v, false))
                          : nlohmann::json());
        }
        rows.push_back(std::move(row));
      }
      return rows;
    };
    for (int r = 0; equal && r < o.rows(); ++r) {
      for (int c = 0; equal && c < o.columns(); ++c) {
        equal = compare::sameColumnValue(PQftype(o.result.get(), c), o.optional(r, c),
                                         n.optional(r, c), rules);
      }
    }
    result = {{"equal", equal}, {"old", rowsOf(o)}, {"new", rowsOf(n)}};
    if (equal) break;
    if (attempt >= config.compare.recheck.attempts) {
      // As for aggregates: confirmed only if the re-read gave the same results on both stores.
      if (attempt > 0 && (result["old"] != previous["old"] || result["new"] != previous["new"])) {
        result["unsettled"] = true;
      }
      break;
    }
    previous = result;
    std::this_thread::sleep_for(std::chrono::milliseconds(config.compare.recheck.delay_ms));
  }
  return result;
}

Result<ChunkResult> runChunk(const ChunkTask& task, const ChunkContext& context, StorePair& stores) {
  if (task.kind == ChunkKind::Check) {
    const std::string name = task.table.substr(std::string_view(kCheckPrefix).size());
    for (const config::VerifyCheck& check : context.config.verify.checks) {
      if (check.name != name) continue;
      auto result = runCheck(check, context.config, context.show_values, stores);
      if (!result) return result.status();
      return ChunkResult{0, 0, std::move(*result)};
    }
    return Status::error(fmt::format("check '{}' of this job is not in verify.checks", name));
  }
  const TablePlan* plan = findTable(context.tables, task.table);
  if (plan == nullptr) {
    return Status::error(fmt::format("table {} of this job is no longer on both stores", task.table));
  }
  ChunkChecker checker(stores, context.config.compare.recheck);
  switch (task.kind) {
    case ChunkKind::Range: {
      auto outcome = checker.checkRange(*plan, task.range);
      if (!outcome) return outcome.status();
      return ChunkResult{outcome->rows_old, outcome->rows_new, outcomeJson(*outcome)};
    }
    case ChunkKind::Multiset: {
      auto outcome = checker.checkMultiset(*plan);
      if (!outcome) return outcome.status();
      return ChunkResult{outcome->rows_old, outcome->rows_new, outcomeJson(*outcome)};
    }
    case ChunkKind::Sample:
      return sample(*plan, context, stores);
    case ChunkKind::Aggregates:
      return aggregates(*plan, context, stores);
    case ChunkKind::Check:
      break;
  }
  return Status::error("unknown chunk kind");
}

}  // namespace cutover::migrate
