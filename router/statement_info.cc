#include "router/statement_info.h"

namespace cutover::router {

std::string_view toString(StatementKind kind) {
  switch (kind) {
    case StatementKind::Read: return "read";
    case StatementKind::Write: return "write";
    case StatementKind::Ddl: return "ddl";
    case StatementKind::Transaction: return "transaction";
    case StatementKind::Session: return "session";
  }
  return "write";
}

std::string_view toString(TransactionCommand command) {
  switch (command) {
    case TransactionCommand::None: return "none";
    case TransactionCommand::Begin: return "begin";
    case TransactionCommand::Commit: return "commit";
    case TransactionCommand::Rollback: return "rollback";
    case TransactionCommand::Savepoint: return "savepoint";
    case TransactionCommand::Release: return "release";
    case TransactionCommand::RollbackToSavepoint: return "rollback_to_savepoint";
    case TransactionCommand::PrepareTransaction: return "prepare_transaction";
    case TransactionCommand::CommitPrepared: return "commit_prepared";
    case TransactionCommand::RollbackPrepared: return "rollback_prepared";
  }
  return "none";
}

std::string_view toString(SessionCommand command) {
  switch (command) {
    case SessionCommand::None: return "none";
    case SessionCommand::Set: return "set";
    case SessionCommand::Reset: return "reset";
    case SessionCommand::Discard: return "discard";
    case SessionCommand::Prepare: return "prepare";
    case SessionCommand::Execute: return "execute";
    case SessionCommand::Deallocate: return "deallocate";
    case SessionCommand::Listen: return "listen";
    case SessionCommand::Unlisten: return "unlisten";
    case SessionCommand::Other: return "other";
  }
  return "none";
}

int writeRank(StatementKind kind) {
  switch (kind) {
    case StatementKind::Read: return 0;
    case StatementKind::Transaction: return 1;
    case StatementKind::Session: return 2;
    case StatementKind::Write: return 3;
    case StatementKind::Ddl: return 4;
  }
  return 3;
}

}  // namespace cutover::router
