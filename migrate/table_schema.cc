#include "migrate/table_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace cutover::migrate {
namespace {

constexpr const char* kTablesSql = R"(
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid,
       t.typcollation <> 0,
       -- int2vector subscripts start at 0: the 1-based position in the key, 0 = not in it
       coalesce(array_position(i.indkey::int2[], a.attnum) - array_lower(i.indkey::int2[], 1) + 1, 0)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
 WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'cutover')
   AND n.nspname !~ '^pg_(toast|temp_)'
   AND (cardinality($1::text[]) = 0 OR n.nspname = ANY ($1::text[]))
 ORDER BY n.nspname, c.relname, a.attnum)";

std::string textArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string keyText(const std::vector<std::string>& key) {
  return "(" + fmt::format("{}", fmt::join(key, ", ")) + ")";
}

bool matches(const TableSchema& table, const std::string& pattern) {
  if (pattern.find('.') != std::string::npos) return pattern == table.qualified();
  return pattern == table.name;
}

}  // namespace

const ColumnSchema* TableSchema::column(const std::string& wanted) const {
  for (const ColumnSchema& c : columns) {
    if (c.name == wanted) return &c;
  }
  return nullptr;
}

Result<std::vector<TableSchema>> loadTables(pgclient::Connection& conn,
                                            const std::vector<std::string>& schemas) {
  pgclient::Reply reply = conn.exec(kTablesSql, {textArray(schemas)}, pgclient::deadlineIn(60000));
  if (!reply.ok()) {
    return Status::error(fmt::format("cannot read the catalog of {}: {}", conn.where(), reply.error));
  }
  std::vector<TableSchema> tables;
  std::vector<std::pair<int, std::string>> key;
  auto finishTable = [&] {
    if (tables.empty()) return;
    std::sort(key.begin(), key.end());
    for (auto& [position, name] : key) tables.back().key.push_back(std::move(name));
    key.clear();
  };
  for (int r = 0; r < reply.rows(); ++r) {
    const std::string schema(reply.value(r, 0)), name(reply.value(r, 1));
    if (tables.empty() || tables.back().schema != schema || tables.back().name != name) {
      finishTable();
      tables.push_back(TableSchema{schema, name, {}, {}});
    }
    ColumnSchema column{std::string(reply.value(r, 2)), std::string(reply.value(r, 3)),
                        static_cast<uint32_t>(std::stoul(std::string(reply.value(r, 4)))),
                        reply.value(r, 5) == "t"};
    if (const int position = std::stoi(std::string(reply.value(r, 6))); position > 0) {
      key.emplace_back(position, column.name);
    }
    tables.back().columns.push_back(std::move(column));
  }
  finishTable();
  return tables;
}

bool tableSelected(const TableSchema& table, const std::vector<std::string>& include,
                   const std::vector<std::string>& exclude) {
  for (const std::string& pattern : exclude) {
    if (matches(table, pattern)) return false;
  }
  if (include.empty()) return true;
  return std::any_of(include.begin(), include.end(),
                     [&](const std::string& pattern) { return matches(table, pattern); });
}

VerifyPlan planTables(const std::vector<TableSchema>& old_tables,
                      const std::vector<TableSchema>& new_tables,
                      const std::vector<std::string>& include,
                      const std::vector<std::string>& exclude,
                      const config::CompareConfig& compare, bool show_values) {
  VerifyPlan plan;
  std::map<std::string, const TableSchema*> on_new;
  for (const TableSchema& t : new_tables) on_new[t.qualified()] = &t;
  for (const TableSchema& old_table : old_tables) {
    if (!tableSelected(old_table, include, exclude)) continue;
    const std::string name = old_table.qualified();
    auto found = on_new.find(name);
    if (found == on_new.end()) {
      plan.schema.push_back({name, "", "table missing on new"});
      continue;
    }
    const TableSchema& new_table = *found->second;
    on_new.erase(found);
    for (const ColumnSchema& column : old_table.columns) {
      const ColumnSchema* other = new_table.column(column.name);
      if (other == nullptr) {
        plan.schema.push_back({name, column.name, "column missing on new"});
      } else if (other->type != column.type) {
        plan.schema.push_back(
            {name, column.name, fmt::format("type: old {}, new {}", column.type, other->type)});
      }
    }
    for (const ColumnSchema& column : new_table.columns) {
      if (old_table.column(column.name) == nullptr) {
        plan.schema.push_back({name, column.name, "column missing on old"});
      }
    }
    if (old_table.key != new_table.key) {
      plan.schema.push_back({name, "",
                             fmt::format("primary key: old {}, new {}",
                                         old_table.key.empty() ? "none" : keyText(old_table.key),
                                         new_table.key.empty() ? "none" : keyText(new_table.key))});
    }
    TablePlan table{old_table, {}, 0, compare::compareRulesForTable(compare, name)};
    table.rules.log_values = show_values;
    const bool key_on_new = !old_table.key.empty() &&
                            std::all_of(old_table.key.begin(), old_table.key.end(),
                                        [&](const std::string& k) { return new_table.column(k); });
    if (key_on_new) {
      for (const std::string& k : old_table.key) table.compared.push_back(*old_table.column(k));
      table.key_columns = table.compared.size();
    }
    for (const ColumnSchema& column : old_table.columns) {
      if (new_table.column(column.name) == nullptr || table.rules.ignores(column.name)) continue;
      if (key_on_new && std::find(old_table.key.begin(), old_table.key.end(), column.name) !=
                            old_table.key.end()) {
        continue;
      }
      table.compared.push_back(column);
    }
    plan.tables.push_back(std::move(table));
  }
  for (const auto& [name, table] : on_new) {
    if (tableSelected(*table, include, exclude)) {
      plan.schema.push_back({name, "", "table missing on old"});
    }
  }
  std::sort(plan.schema.begin(), plan.schema.end(),
            [](const SchemaDifference& a, const SchemaDifference& b) {
              return std::tie(a.table, a.column) < std::tie(b.table, b.column);
            });
  return plan;
}

}  // namespace cutover::migrate
