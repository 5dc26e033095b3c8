#pragma once

// What the router knows about one statement text: the Classifier fills it, decide() reads it.

#include <string>
#include <string_view>
#include <vector>

namespace cutover::router {

// Ordered from least to most write-like; a multi-statement string takes the highest of its parts.
enum class StatementKind { Read, Write, Ddl, Transaction, Session };

enum class TransactionCommand {
  None, Begin, Commit, Rollback, Savepoint, Release, RollbackToSavepoint,
  PrepareTransaction, CommitPrepared, RollbackPrepared
};

// Session commands run on every backend the session holds (Route::both).
// Other: LOAD, DECLARE (of a pure read), FETCH, MOVE, CLOSE.
enum class SessionCommand { None, Set, Reset, Discard, Prepare, Execute, Deallocate, Listen, Unlisten, Other };

struct StatementInfo {
  StatementKind kind = StatementKind::Write;  // the safe default
  // For Transaction (and for the first transaction command of a multi-statement string).
  TransactionCommand transaction = TransactionCommand::None;
  bool chain = false;   // COMMIT AND CHAIN / ROLLBACK AND CHAIN: a new transaction begins at once
  // The first session command (also for a multi-statement string).
  SessionCommand session = SessionCommand::None;
  // Unparsable: routed as a write to the authoritative store so PostgreSQL answers with its own
  // error (mirrored too when the mode mirrors: a failed statement must abort both transactions).
  bool parse_error = false;
  // Several statements in one simple Query; kind is the most write-like of them.
  bool multi_statement = false;
  // The text calls now(), random(), gen_random_uuid(), nextval/setval, clock_timestamp… or casts
  // 'now'/'today'. Defaults of an INSERT's target table are invisible here and are not flagged.
  bool nondeterministic = false;
  // DDL that fills a table from a query: CREATE TABLE … AS, SELECT INTO, CREATE MATERIALIZED VIEW.
  bool fills_from_query = false;
  // It reads store-local facts: the catalog (pg_catalog, information_schema), pg_* functions,
  // casts to oid/reg* types. Such a read answers differently on each store (OIDs, sizes,
  // statistics) and follows the catalog of the store it ran on, so it is served by the
  // authoritative store, never ramped to new nor shadow-compared. psql's \d, ORM introspection.
  bool catalog = false;
  // It creates a temporary table, view or sequence: session state that exists only on the
  // connections that ran it.
  bool creates_temporary = false;
  // The statement does exactly the same inside BEGIN … COMMIT as on its own, so the proxy may
  // wrap it to hold its row locks until the secondary applied it: INSERT, UPDATE, DELETE, MERGE,
  // TRUNCATE, COPY FROM, NOTIFY, a writing SELECT, EXPLAIN ANALYZE of one of those. Not LOCK or
  // DECLARE (outside a block PostgreSQL refuses them: 25P01), VACUUM and the other commands it
  // refuses inside one (25001), CALL/DO (a COMMIT inside them fails in a block), DDL, session
  // and transaction commands, anything unclassified. False for multi-statement strings.
  bool wrappable = false;
  // For shadow comparison: the outermost SELECT has ORDER BY / LIMIT, FETCH FIRST or OFFSET.
  // Both false for multi-statement strings.
  bool top_level_order_by = false;
  bool has_limit = false;
  // For shadow comparison: why this read may give other rows when run again on identical data
  // ("random() differs from run to run", "now() in the result reads the clock", "TABLESAMPLE…",
  // "EXPLAIN output…"), empty when nothing in the text says so. Narrower than nondeterministic:
  // a clock read in WHERE only moves a boundary. See router/repeatability.h.
  std::string unrepeatable;
  // SET LOCAL, SET TRANSACTION …, SET CONSTRAINTS: the setting ends with the current
  // transaction, so it is never replayed on another connection (a reconnection, a recheck).
  bool transaction_scoped = false;
  // DEALLOCATE ALL, DISCARD ALL, RESET ALL, UNLISTEN *.
  bool all = false;
  // PREPARE name / EXECUTE name / DEALLOCATE name (SQL level; empty for DEALLOCATE ALL).
  std::string prepared_name;
  // PREPARE: the kind of the prepared query (what its EXECUTE will be).
  // EXECUTE: the kind of the argument expressions (Read unless they call a function not known to
  // be read-only). The classifier cannot know what an EXECUTE runs, so an EXECUTE comes back as
  // kind Write; PreparedStatements::resolve() gives it the kind recorded at PREPARE.
  StatementKind prepared_kind = StatementKind::Write;
  // PREPARE: whether the prepared query is wrappable (what its EXECUTE will be).
  bool prepared_wrappable = false;
  // Relations touched: [catalog.][schema.]name as written (unquoted names lower-cased by the
  // parser, quoted ones kept), CTE names excluded, deduplicated, sorted.
  std::vector<std::string> tables;
  // What the database itself may define to run behind a read (router/read_hazards.h): the names
  // of the functions taken as read-only by their name, of the operators used, of the types cast
  // to (a domain's CHECK, a cast's function) and the last names of column references (t.f may
  // call f(t)), as "f:lower", "o:###", "t:wdom", "c:f". Sorted, unique.
  std::vector<std::string> routine_names;
  // Short why, e.g. "SELECT … FOR UPDATE locks rows".
  std::string reason;
};

// Lower-case label for logs and metrics ("read", "write", "ddl", "transaction", "session").
std::string_view toString(StatementKind kind);
std::string_view toString(TransactionCommand command);
std::string_view toString(SessionCommand command);

// Rank used to combine statements: Read < Transaction < Session < Write < Ddl.
int writeRank(StatementKind kind);

}  // namespace cutover::router
