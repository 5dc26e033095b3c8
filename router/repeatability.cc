#include "router/repeatability.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <vector>

#include "router/function_catalog.h"

namespace cutover::router {
namespace {

struct Pending {
  const Json* node;
  std::string_view key;  // the key `node` was found under ("" for array items)
  bool in_qualification = false;  // below WHERE / HAVING / JOIN … ON
  bool select_body = false;       // node is a SelectStmt body
  bool limit_harmless = false;    // node is (or wraps) the subselect of an EXISTS
};

bool isQualificationKey(std::string_view key) {
  return key == "whereClause" || key == "havingClause" || key == "quals";
}

std::string_view lastName(const Json& names) {
  if (!names.is_array() || names.empty()) return {};
  const Json* string = member(names.back(), "String");
  return string != nullptr ? stringMember(*string, "sval") : std::string_view{};
}

std::string_view schemaName(const Json& names) {
  if (!names.is_array() || names.size() < 2) return {};
  const Json* string = member(names[names.size() - 2], "String");
  return string != nullptr ? stringMember(*string, "sval") : std::string_view{};
}

std::string checkFuncCall(const Json& call, bool in_qualification) {
  const Json* names = member(call, "funcname");
  if (names == nullptr) return {};
  std::string_view name = lastName(*names);
  std::string_view schema = schemaName(*names);
  // Only the built-ins are known; a function elsewhere could be anything (and is a write).
  if (!(schema.empty() || schema == "pg_catalog") || !lookupFunction(schema, name).nondeterministic) return {};
  if (isClockFunction(name)) {
    if (in_qualification) return {};
    return std::string(name) + "() in the result reads the clock";
  }
  return std::string(name) + "() differs from run to run";
}

std::string checkSqlValueFunction(const Json& function, bool in_qualification) {
  std::string_view op = stringMember(function, "op");
  if (in_qualification || !(op.starts_with("SVFOP_CURRENT_DATE") || op.starts_with("SVFOP_CURRENT_TIME") ||
                            op.starts_with("SVFOP_LOCALTIME"))) {
    return {};
  }
  std::string name(op.substr(6));  // after "SVFOP_"
  if (size_t n = name.find("_N"); n != std::string::npos && n + 2 == name.size()) name.resize(n);
  return name + " in the result reads the clock";
}

std::string checkTypeCast(const Json& cast, bool in_qualification) {
  if (in_qualification) return {};
  const Json* arg = member(cast, "arg");
  const Json* constant = arg != nullptr ? member(*arg, "A_Const") : nullptr;
  const Json* sval = constant != nullptr ? member(*constant, "sval") : nullptr;
  if (sval == nullptr) return {};
  std::string text(stringMember(*sval, "sval"));
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (text == "now" || text == "today" || text == "tomorrow" || text == "yesterday") {
    return "'" + text + "' in the result reads the clock";
  }
  return {};
}

// DISTINCT is [{}]; DISTINCT ON (…) lists its expressions.
bool distinctOn(const Json& select) {
  const Json* distinct = member(select, "distinctClause");
  return distinct != nullptr && distinct->is_array() && !distinct->empty() &&
         !(distinct->front().is_object() && distinct->front().empty());
}

std::string checkSelect(const Json& select, bool top_level, bool limit_harmless) {
  const bool ordered = hasNonEmptyArray(select, "sortClause");
  if (ordered) return {};
  if (!top_level && !limit_harmless &&
      (member(select, "limitCount") != nullptr || member(select, "limitOffset") != nullptr)) {
    return "LIMIT/OFFSET without ORDER BY in a subquery picks arbitrary rows";
  }
  if (distinctOn(select)) return "DISTINCT ON without ORDER BY keeps an arbitrary row per group";
  return {};
}

}  // namespace

std::string unrepeatableReason(const Json& select) {
  // Iterative, like walkTree: expression trees nest as deep as the text.
  std::vector<Pending> pending{{&select, "", false, true, false}};
  bool top_level = true;
  while (!pending.empty()) {
    const Pending item = pending.back();
    pending.pop_back();
    const Json& node = *item.node;
    if (node.is_array()) {
      for (auto it = node.rbegin(); it != node.rend(); ++it) {
        if (it->is_structured()) pending.push_back({&*it, "", item.in_qualification, false, false});
      }
      continue;
    }
    if (!node.is_object()) continue;
    std::string reason;
    if (item.select_body) {
      reason = checkSelect(node, top_level, item.limit_harmless);
      top_level = false;
    } else if (item.key == "FuncCall") {
      reason = checkFuncCall(node, item.in_qualification);
    } else if (item.key == "SQLValueFunction") {
      reason = checkSqlValueFunction(node, item.in_qualification);
    } else if (item.key == "TypeCast") {
      reason = checkTypeCast(node, item.in_qualification);
    } else if (item.key == "RangeTableSample") {
      reason = "TABLESAMPLE picks rows by chance";
    }
    if (!reason.empty()) return reason;

    const bool exists = item.key == "SubLink" && stringMember(node, "subLinkType") == "EXISTS_SUBLINK";
    const bool set_operation = item.select_body && stringMember(node, "op") != "SETOP_NONE" &&
                               !stringMember(node, "op").empty();
    const size_t first_child = pending.size();
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it.value().is_structured()) continue;
      const std::string& key = it.key();
      Pending child{&it.value(), key, item.in_qualification || isQualificationKey(key), false, false};
      if (key == "SelectStmt") {
        child.select_body = true;
        child.limit_harmless = item.limit_harmless;  // {"SelectStmt": …} wrapping an EXISTS subselect
      } else if (set_operation && (key == "larg" || key == "rarg")) {
        child.select_body = true;  // the branches of UNION / INTERSECT / EXCEPT are bare bodies
      } else if (exists && key == "subselect") {
        child.limit_harmless = true;
      }
      pending.push_back(child);
    }
    std::reverse(pending.begin() + static_cast<std::ptrdiff_t>(first_child), pending.end());
  }
  return {};
}

}  // namespace cutover::router
