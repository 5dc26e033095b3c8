#include "router/statement_rules.h"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "router/repeatability.h"
#include "router/tree_walk.h"

namespace cutover::router {
namespace {

// Owns a pg_query parse result from the moment it is returned; frees everything at once.
class ParseResult {
 public:
  explicit ParseResult(const std::string& sql) : result_(pg_query_parse(sql.c_str())) {}
  ~ParseResult() { pg_query_free_parse_result(result_); }
  ParseResult(const ParseResult&) = delete;
  ParseResult& operator=(const ParseResult&) = delete;

  const PgQueryError* error() const { return result_.error; }
  const char* tree() const { return result_.parse_tree; }

 private:
  PgQueryParseResult result_;
};

StatementInfo classifyStatement(const Json& statement);

StatementInfo make(StatementKind kind, std::string reason, const TreeFindings& findings) {
  StatementInfo info;
  info.kind = kind;
  info.reason = std::move(reason);
  info.tables = tablesOf(findings);
  info.nondeterministic = findings.nondeterministic;
  info.creates_temporary = findings.temporary;
  info.catalog = !findings.catalog.empty();
  info.routine_names.assign(findings.routine_names.begin(), findings.routine_names.end());
  return info;
}

// A row-level write that behaves alike inside BEGIN … COMMIT (StatementInfo::wrappable).
StatementInfo wrappableWrite(std::string reason, const TreeFindings& findings) {
  StatementInfo info = make(StatementKind::Write, std::move(reason), findings);
  info.wrappable = true;
  return info;
}

// A SELECT / VALUES is a pure read unless something in its tree can write or lock.
StatementInfo classifySelect(const Json& body, const TreeFindings& findings) {
  StatementInfo info;
  if (member(body, "intoClause") != nullptr) {
    info = make(StatementKind::Ddl, "SELECT INTO creates a table", findings);
    info.fills_from_query = true;
  } else if (!findings.modifying.empty()) {
    info = wrappableWrite("data-modifying CTE (" + findings.modifying + ")", findings);
  } else if (!findings.locking.empty()) {
    info = wrappableWrite("SELECT … " + findings.locking + " locks rows", findings);
  } else if (!findings.function_write.empty()) {
    info = wrappableWrite(findings.function_write, findings);
  } else {
    info = make(StatementKind::Read, findings.catalog.empty() ? "pure read" : "catalog read: " + findings.catalog,
                findings);
  }
  info.top_level_order_by = hasNonEmptyArray(body, "sortClause");
  info.has_limit = member(body, "limitCount") != nullptr || member(body, "limitOffset") != nullptr;
  info.unrepeatable = unrepeatableReason(body);
  return info;
}

// defGetBoolean's spellings: no argument means true.
bool optionIsTrue(const Json& def_elem) {
  const Json* arg = member(def_elem, "arg");
  if (arg == nullptr) return true;
  if (const Json* string = member(*arg, "String")) {
    std::string value(stringMember(*string, "sval"));
    for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return !(value == "false" || value == "off" || value == "no" || value == "0" || value == "f" ||
             value == "n");
  }
  // libpg_query's JSON leaves out zero and false values: {"Integer": {}} is 0.
  if (const Json* integer = member(*arg, "Integer")) {
    const Json* value = member(*integer, "ival");
    return value != nullptr && value->is_number() && value->get<long long>() != 0;
  }
  if (const Json* boolean = member(*arg, "Boolean")) {
    const Json* value = member(*boolean, "boolval");
    return value != nullptr && value->is_boolean() && value->get<bool>();
  }
  return true;  // unknown spelling: assume the statement runs (safe)
}

bool explainAnalyzes(const Json& body) {
  const Json* options = member(body, "options");
  if (options == nullptr || !options->is_array()) return false;
  // As PostgreSQL's ExplainQuery: each ANALYZE option overwrites the last, so the last one counts.
  bool analyze = false;
  for (const Json& option : *options) {
    const Json* def_elem = member(option, "DefElem");
    if (def_elem != nullptr && stringMember(*def_elem, "defname") == "analyze") analyze = optionIsTrue(*def_elem);
  }
  return analyze;
}

StatementInfo classifyExplain(const Json& body, const TreeFindings& findings) {
  const Json* query = member(body, "query");
  if (query != nullptr && explainAnalyzes(body)) {
    StatementInfo inner = classifyStatement(*query);
    inner.reason = "EXPLAIN ANALYZE runs it: " + inner.reason;
    inner.top_level_order_by = inner.has_limit = false;
    inner.unrepeatable = "EXPLAIN ANALYZE output holds timings and the store's own plan";
    return inner;
  }
  // Not executed; but the planner may call (immutable) functions while folding constants.
  if (!findings.function_write.empty()) {
    return make(StatementKind::Write, "EXPLAIN plans a call that may write: " + findings.function_write,
                findings);
  }
  StatementInfo info = make(StatementKind::Read, "EXPLAIN without ANALYZE does not run the statement", findings);
  info.unrepeatable = "EXPLAIN output is the store's own plan";
  return info;
}

StatementInfo classifyCopy(const Json& body, const TreeFindings& findings) {
  if (member(body, "is_from") != nullptr) return wrappableWrite("COPY FROM loads rows", findings);
  if (member(body, "is_program") != nullptr || !stringMember(body, "filename").empty()) {
    return make(StatementKind::Write, "COPY TO a server file or program acts outside the database",
                findings);
  }
  if (const Json* query = member(body, "query")) {
    StatementInfo inner = classifyStatement(*query);
    inner.reason = "COPY (query) TO: " + inner.reason;
    inner.tables = tablesOf(findings);
    return inner;
  }
  return make(StatementKind::Read, "COPY TO STDOUT reads a table", findings);
}

TransactionCommand transactionCommand(std::string_view kind) {
  if (kind == "TRANS_STMT_BEGIN" || kind == "TRANS_STMT_START") return TransactionCommand::Begin;
  if (kind == "TRANS_STMT_COMMIT") return TransactionCommand::Commit;
  if (kind == "TRANS_STMT_ROLLBACK") return TransactionCommand::Rollback;
  if (kind == "TRANS_STMT_SAVEPOINT") return TransactionCommand::Savepoint;
  if (kind == "TRANS_STMT_RELEASE") return TransactionCommand::Release;
  if (kind == "TRANS_STMT_ROLLBACK_TO") return TransactionCommand::RollbackToSavepoint;
  if (kind == "TRANS_STMT_PREPARE") return TransactionCommand::PrepareTransaction;
  if (kind == "TRANS_STMT_COMMIT_PREPARED") return TransactionCommand::CommitPrepared;
  if (kind == "TRANS_STMT_ROLLBACK_PREPARED") return TransactionCommand::RollbackPrepared;
  return TransactionCommand::None;
}

StatementInfo sessionStatement(SessionCommand command, std::string reason, const TreeFindings& findings) {
  StatementInfo info = make(StatementKind::Session, std::move(reason), findings);
  info.session = command;
  return info;
}

StatementInfo classifyVariableSet(const Json& body, const TreeFindings& findings) {
  std::string_view kind = stringMember(body, "kind");
  std::string_view name = stringMember(body, "name");
  if (kind == "VAR_RESET_ALL") {
    StatementInfo info = sessionStatement(SessionCommand::Reset, "RESET ALL applies to every backend", findings);
    info.all = true;
    return info;
  }
  if (kind == "VAR_RESET") return sessionStatement(SessionCommand::Reset, "RESET applies to every backend", findings);
  // SET TRANSACTION … changes the current transaction, which the secondary mirrors: it is
  // session state like SET LOCAL, run on every backend the session holds.
  if (name == "SESSION CHARACTERISTICS") {
    return sessionStatement(SessionCommand::Set, "SET SESSION CHARACTERISTICS applies to every backend", findings);
  }
  if (name.starts_with("TRANSACTION")) {   // SET TRANSACTION …, SET TRANSACTION SNAPSHOT
    StatementInfo info = sessionStatement(SessionCommand::Set, "SET TRANSACTION applies to every backend", findings);
    info.transaction_scoped = true;
    return info;
  }
  if (member(body, "is_local") != nullptr) {
    StatementInfo info = sessionStatement(SessionCommand::Set, "SET LOCAL applies to every backend", findings);
    info.transaction_scoped = true;
    return info;
  }
  return sessionStatement(SessionCommand::Set, "SET applies to every backend", findings);
}

StatementInfo classifyPrepare(const Json& body, const TreeFindings& findings) {
  StatementInfo info = make(StatementKind::Session, "PREPARE defines a statement on every backend", findings);
  info.session = SessionCommand::Prepare;
  info.prepared_name = stringMember(body, "name");
  if (const Json* query = member(body, "query")) {
    StatementInfo inner = classifyStatement(*query);
    info.prepared_kind = inner.kind;
    info.prepared_wrappable = inner.wrappable;
    info.top_level_order_by = inner.top_level_order_by;
    info.has_limit = inner.has_limit;
    info.unrepeatable = inner.unrepeatable;
    info.reason += " (" + inner.reason + ")";
  }
  return info;
}

StatementInfo classifyExecute(const Json& body, const TreeFindings& findings) {
  // What runs was fixed at PREPARE; only PreparedStatements knows it (see statement_info.h).
  StatementInfo info = make(StatementKind::Write, "EXECUTE of a statement prepared elsewhere (unknown here)",
                            findings);
  info.session = SessionCommand::Execute;
  info.prepared_name = stringMember(body, "name");
  info.prepared_kind = findings.function_write.empty() ? StatementKind::Read : StatementKind::Write;
  if (!findings.function_write.empty()) info.reason = "EXECUTE argument " + findings.function_write;
  return info;
}

StatementInfo classifyDeclareCursor(const Json& body, const TreeFindings& findings) {
  const Json* query = member(body, "query");
  if (query == nullptr) return make(StatementKind::Write, "DECLARE without a query", findings);
  StatementInfo inner = classifyStatement(*query);
  if (inner.kind != StatementKind::Read) {
    inner.reason = "DECLARE of a cursor that " + inner.reason;
    inner.wrappable = false;   // outside a transaction block PostgreSQL refuses it (25P01)
    return inner;
  }
  StatementInfo info = sessionStatement(SessionCommand::Other, "DECLARE opens a cursor on every backend", findings);
  info.top_level_order_by = inner.top_level_order_by;
  info.has_limit = inner.has_limit;
  info.unrepeatable = inner.unrepeatable;
  return info;
}

bool isDdl(std::string_view type) {
  static constexpr std::string_view kOthers[] = {
      "RenameStmt", "CommentStmt", "GrantStmt", "GrantRoleStmt", "IndexStmt", "ViewStmt",
      "DefineStmt", "CompositeTypeStmt", "RuleStmt", "SecLabelStmt", "ReassignOwnedStmt",
      "ImportForeignSchemaStmt"};
  if (type.starts_with("Create") || type.starts_with("Alter") || type.starts_with("Drop")) return true;
  return std::find(std::begin(kOthers), std::end(kOthers), type) != std::end(kOthers);
}

StatementInfo classifyDdl(std::string_view type, const Json& body, const TreeFindings& findings) {
  StatementInfo info = make(StatementKind::Ddl, "DDL changes the schema", findings);
  // CREATE TABLE … AS and CREATE MATERIALIZED VIEW (WITH NO DATA fills nothing).
  if (type == "CreateTableAsStmt") {
    const Json* into = member(body, "into");
    const Json* skip = into != nullptr ? member(*into, "skipData") : nullptr;
    info.fills_from_query = !(skip != nullptr && skip->is_boolean() && skip->get<bool>());
  }
  if (type == "DropStmt") {
    // DROP TABLE names its relations as lists of strings, not RangeVars.
    std::string_view remove = stringMember(body, "removeType");
    const Json* objects = member(body, "objects");
    if ((remove == "OBJECT_TABLE" || remove == "OBJECT_VIEW" || remove == "OBJECT_MATVIEW" ||
         remove == "OBJECT_FOREIGN_TABLE") && objects != nullptr && objects->is_array()) {
      for (const Json& object : *objects) {
        const Json* list = member(object, "List");
        const Json* items = list != nullptr ? member(*list, "items") : nullptr;
        if (items == nullptr || !items->is_array()) continue;
        std::string name;
        for (const Json& item : *items) {
          if (!name.empty()) name.push_back('.');
          if (const Json* string = member(item, "String")) name.append(stringMember(*string, "sval"));
        }
        info.tables.push_back(std::move(name));
      }
      std::sort(info.tables.begin(), info.tables.end());
      info.tables.erase(std::unique(info.tables.begin(), info.tables.end()), info.tables.end());
    }
  }
  return info;
}

StatementInfo classifyStatement(const Json& statement) {
  if (!statement.is_object() || statement.empty()) return StatementInfo{.reason = "empty statement node"};
  const std::string& type = statement.begin().key();
  const Json& body = statement.begin().value();
  TreeFindings findings;
  walkTree(statement, findings);

  if (type == "SelectStmt") return classifySelect(body, findings);
  if (type == "VariableShowStmt") {
    StatementInfo info = make(StatementKind::Read, "SHOW reads a setting", findings);
    info.unrepeatable = "SHOW answers with the server's own setting";
    return info;
  }
  if (type == "ExplainStmt") return classifyExplain(body, findings);
  if (type == "CopyStmt") return classifyCopy(body, findings);
  if (type == "InsertStmt") return wrappableWrite("INSERT writes rows", findings);
  if (type == "UpdateStmt") return wrappableWrite("UPDATE writes rows", findings);
  if (type == "DeleteStmt") return wrappableWrite("DELETE removes rows", findings);
  if (type == "MergeStmt") return wrappableWrite("MERGE writes rows", findings);
  if (type == "TruncateStmt") return wrappableWrite("TRUNCATE removes rows", findings);
  if (type == "CallStmt") return make(StatementKind::Write, "CALL runs a procedure", findings);
  if (type == "DoStmt") return make(StatementKind::Write, "DO block runs arbitrary code", findings);
  if (type == "LockStmt") return make(StatementKind::Write, "LOCK TABLE takes table locks", findings);
  if (type == "NotifyStmt") return wrappableWrite("NOTIFY sends a notification", findings);
  // Maintenance is routed like a write: authoritative store, mirrored when the mode mirrors.
  if (type == "VacuumStmt") return make(StatementKind::Write, "VACUUM/ANALYZE maintains a table", findings);
  if (type == "ClusterStmt") return make(StatementKind::Write, "CLUSTER rewrites a table", findings);
  if (type == "ReindexStmt") return make(StatementKind::Write, "REINDEX rebuilds indexes", findings);
  if (type == "RefreshMatViewStmt") return make(StatementKind::Write, "REFRESH MATERIALIZED VIEW rewrites it", findings);
  if (type == "CheckPointStmt") return make(StatementKind::Write, "CHECKPOINT acts on the server", findings);
  if (type == "TransactionStmt") {
    StatementInfo info = make(StatementKind::Transaction, "transaction control", findings);
    info.transaction = transactionCommand(stringMember(body, "kind"));
    const Json* chain = member(body, "chain");   // COMMIT / ROLLBACK AND CHAIN
    info.chain = chain != nullptr && chain->is_boolean() && chain->get<bool>();
    return info;
  }
  if (type == "VariableSetStmt") return classifyVariableSet(body, findings);
  if (type == "ConstraintsSetStmt") {
    StatementInfo info = sessionStatement(SessionCommand::Set, "SET CONSTRAINTS applies to every backend", findings);
    info.transaction_scoped = true;
    return info;
  }
  if (type == "DiscardStmt") {
    StatementInfo info = sessionStatement(SessionCommand::Discard, "DISCARD applies to every backend", findings);
    info.all = stringMember(body, "target") == "DISCARD_ALL";
    return info;
  }
  if (type == "PrepareStmt") return classifyPrepare(body, findings);
  if (type == "ExecuteStmt") return classifyExecute(body, findings);
  if (type == "DeallocateStmt") {
    StatementInfo info = sessionStatement(SessionCommand::Deallocate, "DEALLOCATE applies to every backend", findings);
    info.prepared_name = stringMember(body, "name");
    info.all = info.prepared_name.empty();
    return info;
  }
  if (type == "ListenStmt") return sessionStatement(SessionCommand::Listen, "LISTEN applies to every backend", findings);
  if (type == "UnlistenStmt") {
    StatementInfo info = sessionStatement(SessionCommand::Unlisten, "UNLISTEN applies to every backend", findings);
    info.all = stringMember(body, "conditionname").empty();
    return info;
  }
  if (type == "LoadStmt") return sessionStatement(SessionCommand::Other, "LOAD loads a library into every backend", findings);
  if (type == "FetchStmt") return sessionStatement(SessionCommand::Other, "FETCH/MOVE reads a cursor held by every backend", findings);
  if (type == "ClosePortalStmt") return sessionStatement(SessionCommand::Other, "CLOSE closes a cursor on every backend", findings);
  if (type == "DeclareCursorStmt") return classifyDeclareCursor(body, findings);
  if (isDdl(type)) return classifyDdl(type, body, findings);
  return make(StatementKind::Write, "statement type " + type + " is not classified (safe default)", findings);
}

// Several statements in one Query: the most write-like kind wins; the first transaction and
// session commands are recorded.
StatementInfo combine(std::vector<StatementInfo>&& parts) {
  StatementInfo combined = parts.front();
  combined.multi_statement = true;
  combined.top_level_order_by = combined.has_limit = false;
  combined.wrappable = false;
  size_t deciding = 0;
  for (size_t i = 1; i < parts.size(); ++i) {
    StatementInfo& part = parts[i];
    if (writeRank(part.kind) > writeRank(combined.kind)) {
      combined.kind = part.kind;
      deciding = i;
    }
    if (combined.transaction == TransactionCommand::None) combined.transaction = part.transaction;
    if (combined.session == SessionCommand::None && part.session != SessionCommand::None) {
      combined.session = part.session;
      combined.prepared_name = part.prepared_name;
      combined.prepared_kind = part.prepared_kind;
      combined.all = part.all;
    }
    combined.nondeterministic = combined.nondeterministic || part.nondeterministic;
    combined.creates_temporary = combined.creates_temporary || part.creates_temporary;
    combined.catalog = combined.catalog || part.catalog;
    if (combined.unrepeatable.empty()) combined.unrepeatable = part.unrepeatable;
    combined.tables.insert(combined.tables.end(), part.tables.begin(), part.tables.end());
    combined.routine_names.insert(combined.routine_names.end(), part.routine_names.begin(), part.routine_names.end());
  }
  std::sort(combined.routine_names.begin(), combined.routine_names.end());
  combined.routine_names.erase(std::unique(combined.routine_names.begin(), combined.routine_names.end()),
                               combined.routine_names.end());
  std::sort(combined.tables.begin(), combined.tables.end());
  combined.tables.erase(std::unique(combined.tables.begin(), combined.tables.end()), combined.tables.end());
  combined.reason = "statement " + std::to_string(deciding + 1) + " of " + std::to_string(parts.size()) +
                    ": " + parts[deciding].reason;
  return combined;
}

}  // namespace

// libpg_query builds and prints its tree recursively: a left-associative chain such as
// SELECT 1+1+…+1 nests one level per operator and ~70,000 levels overflow an 8 MiB stack.
// Bound the nesting before parsing by counting what can open a level: operator characters
// (comments included) and words after whitespace (IS, COLLATE, AT TIME ZONE…). Over-counting
// only costs a parse: such a text is routed as a write.
constexpr size_t kMaxNestingEstimate = 10000;

bool mayNestTooDeep(std::string_view sql) {
  if (sql.size() <= kMaxNestingEstimate) return false;
  static constexpr std::string_view kOperatorChars = "+-*/<>=~!@#%^&|`?:(";
  size_t estimate = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(sql[i]);
    if (kOperatorChars.find(static_cast<char>(c)) != std::string_view::npos) {
      ++estimate;
    } else if (std::isspace(c) && i + 1 < sql.size() && std::isalpha(static_cast<unsigned char>(sql[i + 1]))) {
      ++estimate;
    }
  }
  return estimate > kMaxNestingEstimate;
}

StatementInfo classifySql(std::string_view sql) {
  StatementInfo info;  // Write: the safe default for anything that goes wrong below
  if (sql.find('\0') != std::string_view::npos) {
    info.parse_error = true;
    info.reason = "text contains a NUL byte";
    return info;
  }
  if (mayNestTooDeep(sql)) {
    info.reason = "too many operators to parse safely (routed as a write)";
    return info;
  }
  ParseResult parsed{std::string(sql)};
  if (parsed.error() != nullptr) {
    info.parse_error = true;
    info.reason = std::string("does not parse: ") + (parsed.error()->message ? parsed.error()->message : "");
    return info;
  }
  Json tree = Json::parse(parsed.tree(), nullptr, /*allow_exceptions=*/false);
  const Json* statements = member(tree, "stmts");
  if (statements == nullptr || !statements->is_array()) {
    info.reason = "parse tree not understood";
    return info;
  }
  std::vector<StatementInfo> parts;
  for (const Json& raw : *statements) {
    const Json* statement = member(raw, "stmt");
    parts.push_back(statement != nullptr ? classifyStatement(*statement)
                                         : StatementInfo{.reason = "statement without a node"});
  }
  if (parts.empty()) {
    info.kind = StatementKind::Read;
    info.reason = "empty query";
    return info;
  }
  if (parts.size() == 1) return std::move(parts.front());
  return combine(std::move(parts));
}

}  // namespace cutover::router
