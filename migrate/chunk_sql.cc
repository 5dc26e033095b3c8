#include "migrate/chunk_sql.h"

#include <fmt/format.h>

#include "compare/normalise.h"
#include "pgclient/quote.h"

namespace cutover::migrate {
namespace {

using pgclient::quoteIdentifier;

bool isAggregated(uint32_t oid) {
  switch (oid) {
    case 20:    // int8
    case 21:    // int2
    case 23:    // int4
    case 700:   // float4
    case 701:   // float8
    case 1700:  // numeric
      return true;
    default:
      return false;
  }
}

std::string table(const TablePlan& plan) {
  return pgclient::quoteQualified(plan.table.schema, plan.table.name);
}

// Key column i as it is ordered and compared: COLLATE "C" for collatable types.
std::string keyTerm(const TablePlan& plan, size_t i) {
  std::string term = quoteIdentifier(plan.compared[i].name);
  if (plan.compared[i].collatable) term += " COLLATE \"C\"";
  return term;
}

std::string keyTerms(const TablePlan& plan) {
  std::string out;
  for (size_t i = 0; i < plan.key_columns; ++i) {
    if (i > 0) out += ", ";
    out += keyTerm(plan, i);
  }
  return out;
}

std::string keyColumns(const TablePlan& plan) {
  std::string out;
  for (size_t i = 0; i < plan.key_columns; ++i) {
    if (i > 0) out += ", ";
    out += quoteIdentifier(plan.compared[i].name);
  }
  return out;
}

std::string comparedColumns(const TablePlan& plan) {
  std::string out;
  for (size_t i = 0; i < plan.compared.size(); ++i) {
    if (i > 0) out += ", ";
    out += quoteIdentifier(plan.compared[i].name);
  }
  return out;
}

// "($1::int8, $2::text)" with the parameters appended to `sql`.
std::string keyTuple(const TablePlan& plan, const KeyValues& key, Sql& sql) {
  std::string out = "(";
  for (size_t i = 0; i < plan.key_columns; ++i) {
    if (i > 0) out += ", ";
    sql.params.emplace_back(i < key.size() ? key[i] : std::string());
    out += fmt::format("${}::{}", sql.params.size(), plan.compared[i].type);
  }
  return out + ")";
}

// " WHERE (k) > (lo) AND (k) <= (hi)", or "" for the whole table.
std::string rangeWhere(const TablePlan& plan, const KeyRange& range, Sql& sql) {
  std::string out;
  const std::string keys = "(" + keyTerms(plan) + ")";
  if (range.lo) out += fmt::format(" WHERE {} > {}", keys, keyTuple(plan, *range.lo, sql));
  if (range.hi) {
    out += fmt::format(" {} {} <= {}", out.empty() ? "WHERE" : "AND", keys,
                       keyTuple(plan, *range.hi, sql));
  }
  return out;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& sessionSettings() {
  static const std::vector<std::pair<std::string, std::string>> kSettings = {
      {"TimeZone", "UTC"},           {"DateStyle", "ISO, YMD"},
      {"IntervalStyle", "postgres"}, {"extra_float_digits", "3"},
      {"bytea_output", "hex"},       {"lc_monetary", "C"},
      {"default_transaction_read_only", "on"}, {"statement_timeout", "0"},
  };
  return kSettings;
}

std::string rowEncoding(const TablePlan& plan) {
  std::string out = "ROW(";
  for (size_t i = 0; i < plan.compared.size(); ++i) {
    if (i > 0) out += ", ";
    const std::string column = quoteIdentifier(plan.compared[i].name);
    if (plan.compared[i].type_oid == compare::type_oid::kNumeric &&
        plan.rules.values.numeric_trailing_zeros) {
      out += fmt::format("trim_scale({})", column);
    } else {
      out += column;
    }
  }
  return out + ")::text";
}

Sql checksumSql(const TablePlan& plan, const KeyRange& range) {
  Sql sql;
  const std::string where = rangeWhere(plan, range, sql);
  sql.text = fmt::format("SELECT count(*), coalesce(sum(hashtextextended({}, 0)), 0) FROM {}{}",
                         rowEncoding(plan), table(plan), where);
  return sql;
}

Sql multisetSql(const TablePlan& plan) {
  return Sql{fmt::format("SELECT count(*), coalesce(sum(hashtextextended({}, 0)), 0) FROM {}",
                         rowEncoding(plan), table(plan)),
             {}};
}

Sql multisetRowsSql(const TablePlan& plan) {
  return Sql{fmt::format("SELECT {}, count(*) FROM {} GROUP BY 1",
                         rowEncoding(plan), table(plan)),
             {}};
}

Sql boundariesSql(const TablePlan& plan, const KeyRange& range, long step) {
  Sql sql;
  const std::string where = rangeWhere(plan, range, sql);
  sql.text = fmt::format(
      "SELECT {0} FROM (SELECT {0}, row_number() OVER (ORDER BY {1}) AS cutover_n FROM {2}{3}) s "
      "WHERE cutover_n % {4} = 0 ORDER BY cutover_n",
      keyColumns(plan), keyTerms(plan), table(plan), where, step);
  return sql;
}

Sql rowsSql(const TablePlan& plan, const KeyRange& range) {
  Sql sql;
  const std::string where = rangeWhere(plan, range, sql);
  sql.text = fmt::format("SELECT {} FROM {}{} ORDER BY {}", comparedColumns(plan), table(plan),
                         where, keyTerms(plan));
  return sql;
}

Sql rowsByKeySql(const TablePlan& plan, const std::vector<KeyValues>& keys) {
  Sql sql;
  std::string list;
  for (const KeyValues& key : keys) {
    if (!list.empty()) list += ", ";
    list += keyTuple(plan, key, sql);
  }
  if (list.empty()) list = "(NULL)";  // no keys: no rows
  sql.text = fmt::format("SELECT {} FROM {} WHERE ({}) IN ({}) ORDER BY {}", comparedColumns(plan),
                         table(plan), keyColumns(plan), list, keyTerms(plan));
  return sql;
}

Sql sampleKeysSql(const TablePlan& plan, long n) {
  return Sql{fmt::format("SELECT {} FROM {} ORDER BY random() LIMIT {}", keyColumns(plan),
                         table(plan), n),
             {}};
}

// The aggregates of a column: integer and numeric sums are exact (sum(int8) is numeric: no
// overflow); a float sum depends on the order rows are added in, so floats get min and max only.
std::vector<const char*> aggregatesOf(const ColumnSchema& c) {
  if (!isAggregated(c.type_oid)) return {};
  if (c.type_oid == compare::type_oid::kFloat4 || c.type_oid == compare::type_oid::kFloat8) {
    return {"min", "max"};
  }
  return {"sum", "min", "max"};
}

std::vector<std::string> aggregateNames(const TablePlan& plan) {
  std::vector<std::string> names = {"count"};
  for (const ColumnSchema& c : plan.compared) {
    for (const char* f : aggregatesOf(c)) names.push_back(fmt::format("{}({})", f, c.name));
  }
  return names;
}

Sql aggregatesSql(const TablePlan& plan) {
  std::string list = "count(*)";
  for (const ColumnSchema& c : plan.compared) {
    std::string column = quoteIdentifier(c.name);
    if (c.type_oid == compare::type_oid::kNumeric && plan.rules.values.numeric_trailing_zeros) {
      column = fmt::format("trim_scale({})", column);
    }
    for (const char* f : aggregatesOf(c)) list += fmt::format(", {}({})", f, column);
  }
  return Sql{fmt::format("SELECT {} FROM {}", list, table(plan)), {}};
}

}  // namespace cutover::migrate
