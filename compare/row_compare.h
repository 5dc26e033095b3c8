#pragma once

// Column-by-column comparison of one row read from each store as text, under the same rules as
// a shadowed read (ignore_columns are left out by the caller; float tolerance, numeric scale and
// timestamptz instants by ValueRules). Used by verify, which reads rows by key.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/normalise.h"
#include "compare/result_compare.h"

namespace cutover::compare {

struct RowColumn {
  std::string name;
  uint32_t type_oid = 0;  // the old store's type (pg_type.oid)
};

// One text-format value; nullopt = NULL.
using TextRow = std::vector<std::optional<std::string>>;

// The differing columns of two rows holding `columns` in order (empty = the rows are equal).
// Values are shown as shownValue() does.
std::vector<ValueDifference> compareRowValues(const std::vector<RowColumn>& columns,
                                              const TextRow& old_row, const TextRow& new_row,
                                              const CompareRules& rules);

// Every column of a row present on one side only, the other side nullopt.
std::vector<ValueDifference> oneSidedRow(const std::vector<RowColumn>& columns, const TextRow& row,
                                         bool on_old, const CompareRules& rules);

// A value as a mismatch record shows it: "<redacted N bytes>" unless log_values; long values cut.
std::optional<std::string> shownValue(const std::optional<std::string>& value, bool log_values);

// Whether two values (NULL = nullopt) of one column are equal under the rules.
bool sameColumnValue(uint32_t type_oid, const std::optional<std::string>& a,
                     const std::optional<std::string>& b, const ValueRules& rules);

}  // namespace cutover::compare
