#pragma once

// One pass over a libpg_query JSON parse tree, collecting what decides a statement's kind:
// nested data-modifying statements, locking clauses, function calls, relations.

#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace cutover::router {

using Json = nlohmann::json;

struct TreeFindings {
  std::string modifying;        // first nested INSERT/UPDATE/DELETE/MERGE ("DELETE"), empty if none
  std::string locking;          // first locking clause ("FOR UPDATE"), empty if none
  std::string function_write;   // why the first function not known to be read-only may write
  // Why the statement reads store-local facts (the first reason): a relation of pg_catalog or
  // information_schema (an unqualified pg_* name resolves to pg_catalog first), a pg_* function
  // (sizes, OIDs, backend state), a cast to oid or a reg* type. Empty when none.
  std::string catalog;
  bool nondeterministic = false;
  bool temporary = false;           // a RangeVar marked TEMP: the statement creates a temporary object
  std::set<std::string> relations;  // every RangeVar, as written
  std::set<std::string> ctes;       // every CTE name: unqualified relations by these names are not tables
  // Names the database may define itself behind a read (StatementInfo::routine_names): functions
  // taken as read-only by name, operators, cast target types, column references' last fields
  // ("f:", "o:", "t:", "c:" before the name).
  std::set<std::string> routine_names;
};

// Walks `node` (any JSON value of the tree) and everything below it.
void walkTree(const Json& node, TreeFindings& findings);

// relations minus the CTE names, sorted and unique.
std::vector<std::string> tablesOf(const TreeFindings& findings);

// Small accessors that never throw: nullptr / "" when absent or of another type.
const Json* member(const Json& object, const char* key);
std::string_view stringMember(const Json& object, const char* key);
bool hasNonEmptyArray(const Json& object, const char* key);

}  // namespace cutover::router
