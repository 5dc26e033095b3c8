#pragma once

// The comparison settings for one shadowed statement: config compare: resolved against the
// tables the statement reads and whether its top level orders its rows.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "compare/normalise.h"
#include "config/config.h"
#include "router/statement_info.h"

namespace cutover::compare {

struct CompareRules {
  // compare.ignore_columns plus compare.tables.<t>.ignore_columns of every table read.
  std::vector<std::string> ignore_columns;
  ValueRules values;
  // Row order counts: the statement's top level has ORDER BY (compare.strict_order decides whether
  // a difference of order alone is a mismatch or noise; see ClientSession::finishShadow).
  bool ordered = false;
  bool log_values = false;          // differing values shown as they are, not redacted
  size_t sample_bytes = 64 * 1024;  // per side
  size_t max_row_differences = 10;  // differing rows kept in a comparison

  bool ignores(std::string_view column) const;
};

// compare:'s value settings (float tolerance, numeric scale, timestamps).
ValueRules valueRulesFrom(const config::CompareConfig& config);

// Tables match compare.tables keys as in flags.tables: exactly, else "public." + an unqualified
// name, else the unqualified part of a qualified one.
CompareRules compareRulesFor(const config::CompareConfig& config, const router::StatementInfo& statement);

// The rules for reading one table by key (verify): its ignore_columns, the value rules, ordered.
CompareRules compareRulesForTable(const config::CompareConfig& config, const std::string& table);

}  // namespace cutover::compare
