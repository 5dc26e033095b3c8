#pragma once

// The tables verify looks at, as each store's catalog describes them, and the differences of
// schema between the stores (missing tables or columns, other types, other primary keys).

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "compare/compare_rules.h"
#include "pgclient/connection.h"

namespace cutover::migrate {

struct ColumnSchema {
  std::string name;
  std::string type;       // format_type(): "numeric(12,2)", "character varying(20)"
  uint32_t type_oid = 0;  // pg_type.oid
  bool collatable = false;
  bool operator==(const ColumnSchema&) const = default;
};

struct TableSchema {
  std::string schema, name;
  std::vector<ColumnSchema> columns;  // in attnum order
  std::vector<std::string> key;       // primary key columns in key order; empty = none
  // "schema.name", unquoted: how reports and the job tables name the table.
  std::string qualified() const { return schema + "." + name; }
  const ColumnSchema* column(const std::string& name) const;
};

// Every ordinary or partitioned table of the connected database in `schemas` (empty: every
// schema but pg_catalog, information_schema, pg_toast, temporary ones and `cutover`), sorted by
// schema and name. Partitions are left out: their parent covers them.
Result<std::vector<TableSchema>> loadTables(pgclient::Connection& conn,
                                            const std::vector<std::string>& schemas);

struct SchemaDifference {
  std::string table;   // "schema.name"
  std::string column;  // empty for the table as a whole
  std::string what;    // "missing on new", "type: old integer, new bigint", ...
  bool operator==(const SchemaDifference&) const = default;
};

// One table as verify reads it on both stores.
struct TablePlan {
  TableSchema table;                // the old store's description
  std::vector<ColumnSchema> compared;  // on both stores, ignore_columns left out; keys first
  size_t key_columns = 0;           // compared[0 .. key_columns) is the primary key
  compare::CompareRules rules;
  bool hasKey() const { return key_columns > 0; }
};

struct VerifyPlan {
  std::vector<SchemaDifference> schema;
  std::vector<TablePlan> tables;  // on both stores and selected
};

// Table selection: a name matches "schema.name" exactly or, unqualified, the table's own name.
bool tableSelected(const TableSchema& table, const std::vector<std::string>& include,
                   const std::vector<std::string>& exclude);

// Compares the catalogs, picks the selected tables and their compared columns. A primary key
// that differs between the stores is a schema difference; the old one is used if new has its
// columns, else the table is verified as a multiset.
VerifyPlan planTables(const std::vector<TableSchema>& old_tables,
                      const std::vector<TableSchema>& new_tables,
                      const std::vector<std::string>& include,
                      const std::vector<std::string>& exclude,
                      const config::CompareConfig& compare, bool show_values);

}  // namespace cutover::migrate
