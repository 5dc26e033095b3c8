#pragma once

// Rows read by key from both stores, matched by key and compared column by column with the
// shadow compare's rules (compare/row_compare.h).

#include <string>
#include <vector>

#include "compare/row_compare.h"
#include "migrate/chunk_sql.h"
#include "pgclient/connection.h"

namespace cutover::migrate {

enum class RowDiffKind { MissingOnNew, ExtraOnNew, Values };
// "missing_on_new", "extra_on_new", "values" (the report's and --json's spelling).
const char* toString(RowDiffKind kind);

struct RowDiff {
  KeyValues key;  // the primary key's values as text; for a table without key, empty
  RowDiffKind kind = RowDiffKind::Values;
  std::vector<compare::ValueDifference> values;  // the differing columns (all for a one-sided row)
  std::string detail;  // tables without key: "2 copies on old, 1 on new" and the row (or redacted)
};

// A row read with TablePlan::compared's columns: key first.
struct KeyedRow {
  KeyValues key;
  compare::TextRow values;
};

// The rows of a reply, in order (columns as rowsSql / rowsByKeySql select them).
std::vector<KeyedRow> keyedRows(const TablePlan& plan, const pgclient::Reply& reply);

// Rows present on one side only, and rows whose compared columns differ under the rules, in key
// order of first appearance (old's rows first, then new's extra ones).
std::vector<RowDiff> diffRows(const TablePlan& plan, const std::vector<KeyedRow>& old_rows,
                              const std::vector<KeyedRow>& new_rows);

}  // namespace cutover::migrate
