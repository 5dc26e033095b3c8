#include "compare/row_compare.h"

#include <fmt/format.h>

namespace cutover::compare {
namespace {

constexpr size_t kMaxShownBytes = 256;

}  // namespace

std::optional<std::string> shownValue(const std::optional<std::string>& value, bool log_values) {
  if (!value) return std::nullopt;
  if (!log_values) return fmt::format("<redacted {} bytes>", value->size());
  if (value->size() <= kMaxShownBytes) return *value;
  return fmt::format("{}… ({} bytes)", value->substr(0, kMaxShownBytes), value->size());
}

bool sameColumnValue(uint32_t type_oid, const std::optional<std::string>& a,
                     const std::optional<std::string>& b, const ValueRules& rules) {
  if (!a || !b) return !a && !b;
  const ValueKind kind = valueKindOf(type_oid, 0, rules);
  return sameValue(kind, *a, *b, rules);
}

std::vector<ValueDifference> compareRowValues(const std::vector<RowColumn>& columns,
                                              const TextRow& old_row, const TextRow& new_row,
                                              const CompareRules& rules) {
  std::vector<ValueDifference> out;
  for (size_t i = 0; i < columns.size() && i < old_row.size() && i < new_row.size(); ++i) {
    if (sameColumnValue(columns[i].type_oid, old_row[i], new_row[i], rules.values)) continue;
    out.push_back(ValueDifference{columns[i].name, shownValue(old_row[i], rules.log_values),
                                  shownValue(new_row[i], rules.log_values)});
  }
  return out;
}

std::vector<ValueDifference> oneSidedRow(const std::vector<RowColumn>& columns, const TextRow& row,
                                         bool on_old, const CompareRules& rules) {
  std::vector<ValueDifference> out;
  for (size_t i = 0; i < columns.size() && i < row.size(); ++i) {
    std::optional<std::string> shown = shownValue(row[i], rules.log_values);
    out.push_back(on_old ? ValueDifference{columns[i].name, std::move(shown), std::nullopt}
                         : ValueDifference{columns[i].name, std::nullopt, std::move(shown)});
  }
  return out;
}

}  // namespace cutover::compare
