#include "router/tree_walk.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

#include "router/function_catalog.h"

namespace cutover::router {
namespace {

std::string_view stringValue(const Json& string_node) {
  // {"String": {"sval": "x"}}
  if (const Json* body = member(string_node, "String")) return stringMember(*body, "sval");
  return {};
}

void visitRangeVar(const Json& range_var, TreeFindings& findings) {
  std::string name;
  for (const char* part : {"catalogname", "schemaname"}) {
    std::string_view value = stringMember(range_var, part);
    if (!value.empty()) {
      name.append(value);
      name.push_back('.');
    }
  }
  // Only a relation being created carries "t" (CREATE TEMP TABLE/VIEW/SEQUENCE, SELECT INTO TEMP,
  // CREATE TEMP TABLE AS); references to existing temporary tables say "p".
  if (stringMember(range_var, "relpersistence") == "t") findings.temporary = true;
  std::string_view relname = stringMember(range_var, "relname");
  if (relname.empty()) return;
  std::string_view schema = stringMember(range_var, "schemaname");
  if (findings.catalog.empty() && (schema == "pg_catalog" || schema == "information_schema" ||
                                   (schema.empty() && relname.starts_with("pg_")))) {
    findings.catalog = "reads the catalog (" + name + std::string(relname) + ")";
  }
  name.append(relname);
  findings.relations.insert(std::move(name));
}

void visitFuncCall(const Json& call, TreeFindings& findings) {
  const Json* names = member(call, "funcname");
  if (names == nullptr || !names->is_array() || names->empty()) return;
  std::string_view name = stringValue(names->back());
  std::string qualified;
  std::string_view schema;
  for (size_t i = 0; i < names->size(); ++i) {
    std::string_view part = stringValue((*names)[i]);
    if (i > 0) qualified.push_back('.');
    qualified.append(part);
    if (names->size() >= 2 && i == names->size() - 2) schema = part;
  }
  // pg_sleep* only waits: a read calling it is as portable as any other. txid_* tell the store's
  // own transaction ids.
  if (findings.catalog.empty() && ((name.starts_with("pg_") && !name.starts_with("pg_sleep")) ||
                                   name.starts_with("txid_"))) {
    findings.catalog = "calls " + qualified + " (store-local facts)";
  }
  FunctionVerdict verdict = lookupFunction(schema, name);
  if (verdict.nondeterministic) findings.nondeterministic = true;
  if (verdict.read_only) findings.routine_names.insert("f:" + std::string(name));   // unless the database defines its own
  if (verdict.read_only || !findings.function_write.empty()) return;
  if (verdict.write_reason != nullptr) {
    findings.function_write = verdict.write_reason;
  } else {
    findings.function_write = "calls function " + qualified + " (not known to be read-only)";
  }
}

void visitSqlValueFunction(const Json& function, TreeFindings& findings) {
  // CURRENT_DATE, CURRENT_TIME[STAMP], LOCALTIME[STAMP]: the clock differs between stores.
  std::string_view op = stringMember(function, "op");
  if (op.starts_with("SVFOP_CURRENT_DATE") || op.starts_with("SVFOP_CURRENT_TIME") ||
      op.starts_with("SVFOP_LOCALTIME")) {
    findings.nondeterministic = true;
  }
}

// oid and the reg* types: object identifiers, assigned by each cluster on its own.
bool isOidType(std::string_view name) {
  static constexpr std::array<std::string_view, 13> kOidTypes = {
      "oid",        "regclass",    "regtype",      "regproc",      "regprocedure", "regoper",   "regoperator",
      "regnamespace", "regrole",   "regconfig",    "regdictionary", "regcollation", "xid8"};
  return std::find(kOidTypes.begin(), kOidTypes.end(), name) != kOidTypes.end();
}

void visitTypeCast(const Json& cast, TreeFindings& findings) {
  const Json* type_name = member(cast, "typeName");
  const Json* names = type_name != nullptr ? member(*type_name, "names") : nullptr;
  if (names != nullptr && names->is_array() && !names->empty()) {
    std::string_view type = stringValue(names->back());
    if (findings.catalog.empty() && isOidType(type)) {
      findings.catalog = "casts to " + std::string(type) + " (store-local object ids)";
    }
    if (!type.empty()) findings.routine_names.insert("t:" + std::string(type));   // a domain's CHECK, a cast function
  }
  // 'now'::timestamptz and friends are read from the clock at input time.
  const Json* arg = member(cast, "arg");
  const Json* constant = arg != nullptr ? member(*arg, "A_Const") : nullptr;
  const Json* sval = constant != nullptr ? member(*constant, "sval") : nullptr;
  if (sval == nullptr) return;
  std::string text(stringMember(*sval, "sval"));
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text == "now" || text == "today" || text == "tomorrow" || text == "yesterday") {
    findings.nondeterministic = true;
  }
}

const char* lockingText(std::string_view strength) {
  if (strength == "LCS_FORKEYSHARE") return "FOR KEY SHARE";
  if (strength == "LCS_FORSHARE") return "FOR SHARE";
  if (strength == "LCS_FORNOKEYUPDATE") return "FOR NO KEY UPDATE";
  return "FOR UPDATE";
}

void visitNode(std::string_view type, const Json& body, TreeFindings& findings) {
  if (type == "FuncCall") {
    visitFuncCall(body, findings);
  } else if (type == "SQLValueFunction") {
    visitSqlValueFunction(body, findings);
  } else if (type == "TypeCast") {
    visitTypeCast(body, findings);
  } else if (type == "A_Expr") {
    // An operator: the database's own may run a function ({"name": [{"String": {"sval": "###"}}]}).
    const Json* names = member(body, "name");
    if (names != nullptr && names->is_array() && !names->empty()) {
      std::string_view op = stringValue(names->back());
      if (!op.empty()) findings.routine_names.insert("o:" + std::string(op));
    }
  } else if (type == "ColumnRef") {
    // t.f is a column, or a call of f(t) (attribute notation): its last name is kept.
    const Json* fields = member(body, "fields");
    if (fields != nullptr && fields->is_array() && !fields->empty()) {
      std::string_view field = stringValue(fields->back());
      if (!field.empty()) findings.routine_names.insert("c:" + std::string(field));
    }
  } else if (type == "LockingClause") {
    if (findings.locking.empty()) findings.locking = lockingText(stringMember(body, "strength"));
  } else if (type == "CommonTableExpr") {
    std::string_view name = stringMember(body, "ctename");
    if (!name.empty()) findings.ctes.emplace(name);
  } else if (type == "InsertStmt" || type == "UpdateStmt" || type == "DeleteStmt" ||
             type == "MergeStmt") {
    if (findings.modifying.empty()) {
      findings.modifying = std::string(type.substr(0, type.size() - 4));
      for (char& c : findings.modifying) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
}

}  // namespace

const Json* member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string_view stringMember(const Json& object, const char* key) {
  const Json* value = member(object, key);
  if (value == nullptr || !value->is_string()) return {};
  return value->get_ref<const std::string&>();
}

bool hasNonEmptyArray(const Json& object, const char* key) {
  const Json* value = member(object, key);
  return value != nullptr && value->is_array() && !value->empty();
}

void walkTree(const Json& root, TreeFindings& findings) {
  // Iterative: expression trees nest as deep as the text (SELECT 1+1+…+1), deeper than a
  // worker's stack would allow recursion to go. Children are pushed in reverse so nodes are
  // visited in document order (within an object, in key order).
  std::vector<const Json*> pending{&root};
  while (!pending.empty()) {
    const Json& node = *pending.back();
    pending.pop_back();
    if (node.is_object()) {
      // RangeVar appears both as a node ({"RangeVar": {…}}) and, in fields typed RangeVar*
      // ("relation", "rel", "view", "sequence", "pktable"…), as a bare body: recognise the body.
      if (node.contains("relname") && node.contains("relpersistence")) visitRangeVar(node, findings);
      size_t first_child = pending.size();
      for (auto it = node.begin(); it != node.end(); ++it) {
        const Json& value = it.value();
        if (!value.is_structured()) continue;
        const std::string& key = it.key();
        // Node types are PascalCase keys ("SelectStmt", "A_Const"); fields are lower camelCase.
        if (value.is_object() && !key.empty() && std::isupper(static_cast<unsigned char>(key[0]))) {
          visitNode(key, value, findings);
        }
        pending.push_back(&value);
      }
      std::reverse(pending.begin() + static_cast<std::ptrdiff_t>(first_child), pending.end());
    } else if (node.is_array()) {
      for (auto it = node.rbegin(); it != node.rend(); ++it) {
        if (it->is_structured()) pending.push_back(&*it);
      }
    }
  }
}

std::vector<std::string> tablesOf(const TreeFindings& findings) {
  std::vector<std::string> tables;
  tables.reserve(findings.relations.size());
  for (const std::string& relation : findings.relations) {
    // A CTE shadows an unqualified relation of its name within the statement.
    if (relation.find('.') == std::string::npos && findings.ctes.contains(relation)) continue;
    tables.push_back(relation);
  }
  return tables;
}

}  // namespace cutover::router
