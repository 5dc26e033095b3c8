#include "migrate/row_diff.h"

#include <map>

namespace cutover::migrate {

const char* toString(RowDiffKind kind) {
  switch (kind) {
    case RowDiffKind::MissingOnNew: return "missing_on_new";
    case RowDiffKind::ExtraOnNew: return "extra_on_new";
    case RowDiffKind::Values: return "values";
  }
  return "values";
}

std::vector<KeyedRow> keyedRows(const TablePlan& plan, const pgclient::Reply& reply) {
  std::vector<KeyedRow> rows;
  rows.reserve(static_cast<size_t>(reply.rows()));
  const int columns = std::min<int>(reply.columns(), static_cast<int>(plan.compared.size()));
  for (int r = 0; r < reply.rows(); ++r) {
    KeyedRow row;
    for (int c = 0; c < columns; ++c) {
      row.values.push_back(reply.optional(r, c));
      if (static_cast<size_t>(c) < plan.key_columns) row.key.emplace_back(reply.value(r, c));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<RowDiff> diffRows(const TablePlan& plan, const std::vector<KeyedRow>& old_rows,
                              const std::vector<KeyedRow>& new_rows) {
  std::vector<compare::RowColumn> columns;
  for (const ColumnSchema& c : plan.compared) columns.push_back({c.name, c.type_oid});
  std::map<KeyValues, const KeyedRow*> on_new;
  for (const KeyedRow& row : new_rows) on_new.emplace(row.key, &row);
  std::vector<RowDiff> out;
  for (const KeyedRow& row : old_rows) {
    auto found = on_new.find(row.key);
    if (found == on_new.end()) {
      out.push_back({row.key, RowDiffKind::MissingOnNew,
                     compare::oneSidedRow(columns, row.values, true, plan.rules), {}});
      continue;
    }
    auto values = compare::compareRowValues(columns, row.values, found->second->values, plan.rules);
    on_new.erase(found);
    if (!values.empty()) out.push_back({row.key, RowDiffKind::Values, std::move(values), {}});
  }
  for (const KeyedRow& row : new_rows) {
    if (!on_new.count(row.key)) continue;  // matched above
    out.push_back({row.key, RowDiffKind::ExtraOnNew,
                   compare::oneSidedRow(columns, row.values, false, plan.rules), {}});
  }
  return out;
}

}  // namespace cutover::migrate
