#include "compare/compare_rules.h"

#include <algorithm>

namespace cutover::compare {
namespace {

const config::CompareTableConfig* tableConfig(const config::CompareConfig& config, const std::string& table) {
  if (config.tables.empty()) return nullptr;
  if (auto found = config.tables.find(table); found != config.tables.end()) return &found->second;
  const size_t dot = table.rfind('.');
  const std::string fallback = dot == std::string::npos ? "public." + table : table.substr(dot + 1);
  if (auto found = config.tables.find(fallback); found != config.tables.end()) return &found->second;
  return nullptr;
}

}  // namespace

bool CompareRules::ignores(std::string_view column) const {
  return std::find(ignore_columns.begin(), ignore_columns.end(), column) != ignore_columns.end();
}

ValueRules valueRulesFrom(const config::CompareConfig& config) {
  ValueRules values;
  values.float_tolerance = config.float_tolerance;
  values.numeric_trailing_zeros = config.numeric_trailing_zeros;
  values.timestamps_utc = config.timestamps_utc;
  values.timestamp_precision_us = config.timestamp_precision_us;
  return values;
}

CompareRules compareRulesForTable(const config::CompareConfig& config, const std::string& table) {
  router::StatementInfo statement;
  statement.tables.push_back(table);
  statement.top_level_order_by = true;
  return compareRulesFor(config, statement);
}

CompareRules compareRulesFor(const config::CompareConfig& config, const router::StatementInfo& statement) {
  CompareRules rules;
  rules.ignore_columns = config.ignore_columns;
  for (const std::string& table : statement.tables) {
    if (const config::CompareTableConfig* overrides = tableConfig(config, table)) {
      rules.ignore_columns.insert(rules.ignore_columns.end(), overrides->ignore_columns.begin(),
                                  overrides->ignore_columns.end());
    }
  }
  rules.values = valueRulesFrom(config);
  rules.ordered = statement.top_level_order_by;   // without ORDER BY, SQL promises no order
  rules.log_values = config.log_values;
  rules.sample_bytes = config.sample_bytes;
  return rules;
}

}  // namespace cutover::compare
