#pragma once

// One store's side of one recheck attempt (proxy/rechecker.cc): its libpq connection, the
// command in flight on it, and what its results were digested into; the result sinks that feed
// the digester from libpq's results, one row in memory at a time.

#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "compare/compare_rules.h"
#include "compare/result_compare.h"
#include "compare/result_digest.h"
#include "compare/row_hash.h"
#include "config/config.h"
#include "pgclient/connection.h"
#include "proxy/rechecker.h"

namespace cutover::proxy::recheck {

using Clock = std::chrono::steady_clock;
using pgclient::PgConnPtr;

// An error result that ends the session rather than the statement: libpq's own (no SQLSTATE:
// the socket failed), or the server's FATAL/PANIC (pg_terminate_backend, idle_session_timeout,
// shutdown), which libpq may hand over before it has seen the socket close.
bool sessionEnded(PGconn* conn, const PGresult* result);

// What PQexecParams takes, pointing into a RecheckRequest (which must outlive it).
struct BoundParams {
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

Result<BoundParams> bindParams(const RecheckRequest& request);

// One store's side of one attempt: its connection (borrowed from the pool) and the command in
// flight on it.
struct AttemptSide {
  AttemptSide(const config::StoreConfig& store_config, const compare::CompareRules& rules)
      : store(&store_config), digest(rules) {}

  const config::StoreConfig* store;
  std::string user, database;
  PgConnPtr conn;
  bool reused = false;  // came from the pool

  bool busy = false;      // results still to come
  bool flushing = false;  // PQflush has more to send
  PostgresPollingStatusType connecting = PGRES_POLLING_OK;
  // Set: this side is out of the attempt. `lost`: the connection broke (worth one reconnect);
  // `drop`: its state is unknown, it must not go back to the pool.
  std::string failure;
  bool lost = false;
  bool drop = false;
  std::string setup_sqlstate;  // the session setup (or BEGIN) failed with this SQLSTATE

  compare::ResultDigester digest;
  bool described = false;
  Clock::time_point sent;
  double ms = 0;       // the last command's, from send to its last result
  std::string buffer;  // the message body being built, reused row after row

  bool usable() const { return failure.empty() && conn != nullptr; }
  enum class Connection { Lost, Unclean };
  void fail(std::string why, Connection connection) {
    if (failure.empty()) failure = std::move(why);
    lost = lost || connection == Connection::Lost;
    drop = true;
    busy = false;
  }
};

using ResultSink = void (*)(AttemptSide&, PGresult*);

void describe(AttemptSide& side, const PGresult* result);

void dataRow(AttemptSide& side, const PGresult* result, int row);

void commandComplete(AttemptSide& side, PGresult* result);

// The statement's results, as the messages a backend would have sent for them.
void digestResult(AttemptSide& side, PGresult* result);

// BEGIN, the setup, SET TRANSACTION: only a failure matters.
void noteSetupResult(AttemptSide& side, PGresult* result);

// ROLLBACK, DISCARD ALL: a failure keeps the connection out of the pool.
void noteCleanupResult(AttemptSide& side, PGresult* result);

struct Attempt {
  bool stopped = false;
  bool retry = false;  // a pooled connection turned out dead: worth one more run on fresh ones
  std::string failure;
  compare::ResultComparison comparison;
  double old_ms = 0, new_ms = 0;
  compare::MultisetHash old_rows, new_rows;   // each side's rows, to see whether they moved
};

}  // namespace cutover::proxy::recheck
