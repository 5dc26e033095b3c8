#include "router/prepared_statements.h"

namespace cutover::router {

void PreparedStatements::apply(const StatementInfo& statement) {
  switch (statement.session) {
    case SessionCommand::Prepare: {
      StatementInfo executed = statement;
      executed.kind = statement.prepared_kind;
      executed.session = SessionCommand::Execute;
      executed.transaction = TransactionCommand::None;
      executed.multi_statement = false;
      executed.wrappable = statement.prepared_wrappable;
      executed.reason = "EXECUTE " + statement.prepared_name + ": " + statement.reason;
      statements_[statement.prepared_name] = std::move(executed);
      break;
    }
    case SessionCommand::Deallocate:
      if (statement.all) {
        statements_.clear();
      } else {
        statements_.erase(statement.prepared_name);
      }
      break;
    case SessionCommand::Discard:
      if (statement.all) statements_.clear();
      break;
    default:
      break;
  }
}

StatementInfo PreparedStatements::resolve(const StatementInfo& statement) const {
  if (statement.session != SessionCommand::Execute || statement.multi_statement) return statement;
  auto found = statements_.find(statement.prepared_name);
  if (found == statements_.end()) return statement;
  StatementInfo resolved = found->second;
  if (writeRank(statement.prepared_kind) > writeRank(resolved.kind)) {
    resolved.kind = statement.prepared_kind;
    resolved.reason = statement.reason;
  }
  resolved.nondeterministic = resolved.nondeterministic || statement.nondeterministic;
  // What its arguments name counts too (EXECUTE p(lower(5))).
  resolved.routine_names.insert(resolved.routine_names.end(), statement.routine_names.begin(),
                                statement.routine_names.end());
  return resolved;
}

}  // namespace cutover::router
