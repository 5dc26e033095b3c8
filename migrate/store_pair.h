#pragma once

// One verify session on each store, with the settings that make both stores print values alike
// (chunk_sql.h sessionSettings), and a statement run on both at once.

#include <string>

#include "common/status.h"
#include "config/config.h"
#include "migrate/chunk_sql.h"
#include "pgclient/connection.h"

namespace cutover::migrate {

// How long one statement of verify may take on a store before it is given up (could not run).
inline constexpr int64_t kStatementDeadlineMs = 30 * 60 * 1000;

struct PairReply {
  pgclient::Reply old_reply, new_reply;
};

class StorePair {
 public:
  // Connects to both stores' databases (stores.*.database, else verify.database).
  static Result<StorePair> connect(const config::Config& config, const std::string& application_name);

  // Runs `old_sql` on old and `new_sql` on new concurrently; an error names the store.
  Result<PairReply> both(const Sql& old_sql, const Sql& new_sql);
  Result<PairReply> both(const Sql& sql) { return both(sql, sql); }
  // Runs `sql` on one store.
  Result<pgclient::Reply> one(bool on_old, const Sql& sql);

  pgclient::Connection& oldStore() { return old_; }
  pgclient::Connection& newStore() { return new_; }

 private:
  StorePair(pgclient::Connection o, pgclient::Connection n) : old_(std::move(o)), new_(std::move(n)) {}
  pgclient::Connection old_, new_;
};

}  // namespace cutover::migrate
