#include "router/read_hazards.h"

#include <fmt/format.h>

namespace cutover::router {

std::string readHazardsQuery() {
  // vol: the database's own volatile routines. views: relations whose rewrite rule (a view) or
  // row-level security policy depends on one, or on such a view, recursively.
  return fmt::format(R"(WITH RECURSIVE vol AS (
  SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.provolatile = 'v' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
), hazard(oid) AS (
  SELECT r.ev_class FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
  WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM vol)
  UNION
  SELECT r.ev_class FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
  JOIN hazard h ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = h.oid AND r.ev_class <> h.oid
)
SELECT kind, name FROM (
  SELECT 'function' AS kind, 'f:' || p.proname AS name FROM pg_catalog.pg_proc p WHERE p.oid IN (SELECT oid FROM vol)
  UNION SELECT 'function of a row', 'c:' || p.proname FROM pg_catalog.pg_proc p
    JOIN pg_catalog.pg_type t ON t.oid = p.proargtypes[0]
    WHERE p.oid IN (SELECT oid FROM vol) AND p.pronargs = 1 AND t.typtype = 'c'
  UNION SELECT 'view', 'r:' || c.relname FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM hazard)
  UNION SELECT 'table with a row-level security policy', 'r:' || c.relname
    FROM pg_catalog.pg_policy pol JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = pol.oid
    WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM vol)
  UNION SELECT 'operator', 'o:' || o.oprname FROM pg_catalog.pg_operator o WHERE o.oprcode::oid IN (SELECT oid FROM vol)
  UNION SELECT 'type', 't:' || t.typname FROM pg_catalog.pg_cast c JOIN pg_catalog.pg_type t ON t.oid = c.casttarget
    WHERE c.castfunc IN (SELECT oid FROM vol)
  UNION SELECT 'type', 't:' || t.typname FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_type t ON t.oid = k.contypid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::regclass AND d.objid = k.oid
    WHERE d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM vol)
) hazards LIMIT {})",
                     ReadHazards::kMaxReadHazards + 1);
}

ReadHazards readHazardsFrom(const std::vector<std::vector<std::optional<std::string>>>& rows) {
  ReadHazards hazards;
  if (rows.size() > ReadHazards::kMaxReadHazards) {
    hazards.overflow = true;
    return hazards;
  }
  for (const auto& row : rows) {
    if (row.size() < 2 || !row[0] || !row[1]) continue;
    hazards.names.emplace(*row[1], *row[0]);
  }
  return hazards;
}

namespace {

std::string_view lastName(std::string_view relation) {
  const size_t dot = relation.rfind('.');
  return dot == std::string_view::npos ? relation : relation.substr(dot + 1);
}

}  // namespace

std::string hazardOf(const StatementInfo& info, const ReadHazards& hazards) {
  if (hazards.overflow) {
    return fmt::format("the database defines more than {} volatile functions and objects calling them: every read "
                       "outside a transaction is taken for a write", ReadHazards::kMaxReadHazards);
  }
  if (!hazards.unreadable.empty()) return hazards.unreadable;
  if (hazards.names.empty()) return {};
  auto find = [&hazards](std::string_view name) -> const std::string* {
    auto it = hazards.names.find(std::string(name));
    return it == hazards.names.end() ? nullptr : &it->second;
  };
  for (const std::string& table : info.tables) {
    if (const std::string* kind = find("r:" + std::string(lastName(table)))) {
      return fmt::format("reads {} {}, which calls a volatile function of the database (it may write)", *kind, table);
    }
  }
  for (const std::string& name : info.routine_names) {
    if (const std::string* kind = find(name)) {
      const std::string_view bare = std::string_view(name).substr(2);
      if (name.starts_with("f:")) {
        return fmt::format("calls {}(), and the database has a volatile function of that name (it may write)", bare);
      }
      if (name.starts_with("c:")) {
        return fmt::format("names {}, which may be a call of the database's volatile function {}(row) (it may write)",
                           bare, bare);
      }
      return fmt::format("uses {} {}, whose function is volatile (it may write)", *kind, bare);
    }
  }
  return {};
}

}  // namespace cutover::router
