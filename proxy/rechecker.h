#pragma once

// compare.recheck: a shadowed read whose two results differed is run again on both stores,
// compare.recheck.attempts times, compare.recheck.delay_ms apart. A re-run that matches makes
// the difference `transient` (writes in flight); none matching confirms the mismatch. The
// re-runs happen on a thread of their own with connections of their own, never on a session's
// (the client may be inside a transaction by then), so a worker never waits on them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/result_compare.h"
#include "config/config.h"

namespace cutover::proxy {

struct RecheckRequest {
  // The client's user and database; the store config's user/database win when set.
  std::string user;
  std::string database;
  // Run first, in order, inside the read-only transaction (so a SET lasts for this statement
  // only): SET search_path …, SELECT set_config(…). The client's startup parameters that shape
  // text output (DateStyle, TimeZone, extra_float_digits, …) belong here too, as SETs.
  std::vector<std::string> session_setup;
  // One statement: the simple Query's text or the Parse's text with $n.
  std::string sql;
  std::vector<std::optional<std::string>> params;  // as the client bound them; nullopt = NULL
  std::vector<int16_t> param_formats;              // Bind's codes: empty = all text, one = for all
  std::vector<uint32_t> param_types;               // Parse's OIDs (0 = unspecified); may be shorter
  compare::CompareRules rules;
  int attempts = 2;
  int delay_ms = 200;
};

struct RecheckOutcome {
  // False: the recheck could not tell (why in `error`): a store unreachable, a binary parameter
  // of unspecified type, the session setup failing, the statement failing on both stores alike.
  bool rechecked = false;
  bool matched = false;  // an attempt matched: the difference was transient
  // No attempt matched, but a store's rows changed between attempts: writes in flight, so the
  // difference is not confirmed (treated as transient).
  bool moving = false;
  int attempts_run = 0;
  compare::ResultComparison last;  // the last attempt's comparison when rechecked and not matched
  double old_ms = 0, new_ms = 0;   // the last attempt's statement time per store
  // Names the store and the reason; never a parameter or result value (an error of the
  // statement itself is given by SQLSTATE only, its message may quote values).
  std::string error;
};

// One thread and a bounded queue. Each attempt waits delay_ms, then runs the statement on both
// stores at once (libpq async on two connections: both reads see about the same moment), as
//   BEGIN READ ONLY; <session_setup>; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout
//   = 30 s; <sql>; ROLLBACK; DISCARD ALL
// on connections opened with default_transaction_read_only on: a statement misclassified as a
// read cannot write, and a setup can lift neither bound. Rows come one PGresult at a time
// (single-row mode: memory stays one row whatever the result's size), fed to
// compare::ResultDigester as the text-format backend messages they stand for, then judged by
// compare::compareResults; the first match ends the request.
//
// A statement failing on both stores with the same SQLSTATE is not a match here
// (rechecked = false): the recheck's session lacks what the client's had (temporary tables,
// prepared names), so the failure may be the recheck's own.
//
// Connections: at most kConnectionsPerStore idle per store, keyed by user and database, least
// recently used closed first; DISCARD ALL after every use, so nothing a statement took (a
// session advisory lock, say) is held while idle. A reused connection found dead is replaced
// and the attempt run again, once.
class Rechecker {
 public:
  using Callback = std::function<void(RecheckOutcome)>;
  static constexpr size_t kConnectionsPerStore = 4;

  Rechecker(const config::StoreConfig& old_store, const config::StoreConfig& new_store, size_t max_queued = 1000);
  // Returns within half a second, even mid-delay or mid-statement: the request under way and
  // the queued ones are dropped, their callbacks not called. (A statement cut off keeps its
  // server backend busy until it finishes or hits statement_timeout.)
  ~Rechecker();
  Rechecker(const Rechecker&) = delete;
  Rechecker& operator=(const Rechecker&) = delete;

  // Any thread; never blocks. False when max_queued requests are already waiting (the caller
  // counts it as dropped). `done` runs on the rechecker's thread: post it onward.
  bool submit(RecheckRequest request, Callback done);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cutover::proxy
