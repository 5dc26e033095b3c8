#pragma once

#include "migrate/table_schema.h"

namespace cutover::migrate::testing {

inline ColumnSchema column(const char* name, const char* type, uint32_t oid, bool collatable = false) {
  return ColumnSchema{name, type, oid, collatable};
}

// public.orders (id int8 key, note text, amount numeric(12,2), score float8).
inline TableSchema orders() {
  return TableSchema{"public", "orders",
                     {column("id", "bigint", 20), column("note", "text", 25, true),
                      column("amount", "numeric(12,2)", 1700), column("score", "double precision", 701)},
                     {"id"}};
}

inline TablePlan planOf(const TableSchema& table, config::CompareConfig compare = {}) {
  return planTables({table}, {table}, {}, {}, compare, false).tables.at(0);
}

}  // namespace cutover::migrate::testing
