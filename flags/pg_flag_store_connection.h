#pragma once

// One libpq connection to the fleet flag store's control database, used without ever blocking
// past a deadline: connect and every statement run non-blocking (PQsocket + poll), so a dead or
// silent control database costs at most the deadline, and a stop request (a readable
// `interrupt_fd`) ends any wait at once. Internal to flags/ (pg_flag_store.cc).

#include <libpq-fe.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_handle.h"
#include "config/config.h"

namespace cutover::flags {

using PgConnPtr = UniqueHandle<PGconn, PQfinish>;
using PgResultPtr = UniqueHandle<PGresult, PQclear>;
using Deadline = std::chrono::steady_clock::time_point;

// The outcome of one statement.
struct PgReply {
  PgResultPtr result;    // PGRES_TUPLES_OK / PGRES_COMMAND_OK; null on failure
  std::string error;     // empty on success; otherwise what failed, one line
  std::string sqlstate;  // of a server error ("42P01"); empty for connection failures
  bool ok() const { return error.empty(); }
};

class ControlConnection {
 public:
  ControlConnection() = default;

  // Connects within `deadline`. `application_name` shows in pg_stat_activity. A readable
  // `interrupt_fd` (-1: none) abandons the attempt ("interrupted"). Errors name host:port.
  static Result<ControlConnection> connect(const config::ControlConfig& control,
                                           const char* application_name, Deadline deadline,
                                           int interrupt_fd = -1);

  bool isOpen() const { return conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK; }
  void close() { conn_.reset(); }
  int socket() const { return conn_ ? PQsocket(conn_.get()) : -1; }

  // Runs one statement with text parameters and waits for its result until `deadline`.
  // A connection failure or a missed deadline closes the connection (isOpen() turns false).
  PgReply exec(const std::string& sql, const std::vector<std::string>& params, Deadline deadline,
               int interrupt_fd = -1);

  // After poll() found socket() readable: reads what arrived and returns the number of
  // NOTIFY messages received (on any channel this connection listens to). An error means the
  // connection is lost (and closed).
  Result<int> consumeNotifications();
  // NOTIFY messages libpq already read (e.g. while exec() waited for a result), without reading
  // the socket: poll() will not report them.
  int takeNotifications();

  // `name` as a quoted SQL identifier ("Flags" → "\"Flags\""); requires an open connection.
  std::string quoteIdentifier(const std::string& name) const;

 private:
  explicit ControlConnection(PgConnPtr conn) : conn_(std::move(conn)) {}
  std::string lastError() const;

  PgConnPtr conn_;
};

// "host:port/database" for messages.
std::string describe(const config::ControlConfig& control);

}  // namespace cutover::flags
