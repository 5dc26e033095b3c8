#pragma once

// One libpq connection used without ever blocking past a deadline: connect and every statement
// run non-blocking (PQsocket + poll), so a dead or silent server costs at most the deadline, and
// a readable `interrupt_fd` (a stop request) ends any wait at once.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pgclient/conninfo.h"
#include "pgclient/handles.h"

namespace cutover::pgclient {

using Deadline = std::chrono::steady_clock::time_point;

// A deadline `ms` milliseconds from now.
Deadline deadlineIn(int64_t ms);

// The outcome of one statement.
struct Reply {
  PgResultPtr result;    // PGRES_TUPLES_OK / PGRES_COMMAND_OK; null on failure
  std::string error;     // empty on success; otherwise what failed, one line
  std::string sqlstate;  // of a server error ("42P01"); empty for connection failures

  bool ok() const { return error.empty(); }
  int rows() const { return result ? PQntuples(result.get()) : 0; }
  int columns() const { return result ? PQnfields(result.get()) : 0; }
  bool isNull(int row, int column) const { return PQgetisnull(result.get(), row, column) != 0; }
  // The text value (empty for NULL); valid while `result` lives.
  std::string_view value(int row, int column) const {
    return {PQgetvalue(result.get(), row, column),
            static_cast<size_t>(PQgetlength(result.get(), row, column))};
  }
  std::optional<std::string> optional(int row, int column) const {
    if (isNull(row, column)) return std::nullopt;
    return std::string(value(row, column));
  }
};

class Connection {
 public:
  Connection() = default;

  // Connects within `deadline`. Errors read "cannot connect to host:port/db: <libpq's reason>".
  static Result<Connection> connect(const ConnectParams& params, Deadline deadline,
                                    int interrupt_fd = -1);

  bool isOpen() const { return conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK; }
  void close() { conn_.reset(); }
  int socket() const { return conn_ ? PQsocket(conn_.get()) : -1; }
  // "host:port/db" of the server, for messages.
  const std::string& where() const { return where_; }

  // Runs one statement (or, without parameters, several separated by ';') with text parameters
  // and waits for its result until `deadline`. A connection failure or a missed deadline closes
  // the connection (isOpen() turns false); a server error keeps it.
  Reply exec(const std::string& sql, const std::vector<std::string>& params, Deadline deadline,
             int interrupt_fd = -1);

  // The two halves of exec(), to have statements run on several servers at once: send() on each,
  // then finish() on each. Parameters may be NULL (nullopt).
  Status send(const std::string& sql, const std::vector<std::optional<std::string>>& params);
  Reply finish(Deadline deadline, int interrupt_fd = -1);

  // After poll() found socket() readable: reads what arrived and returns the number of
  // NOTIFY messages received. An error means the connection is lost (and closed).
  Result<int> consumeNotifications();
  // NOTIFY messages libpq already read (e.g. while exec() waited), without reading the socket.
  int takeNotifications();

  // `name` as a quoted SQL identifier, escaped by libpq for this connection's encoding.
  std::string quoteIdentifier(const std::string& name) const;

  // The handle, for libpq calls this class does not wrap. Owned by this object.
  PGconn* raw() const { return conn_.get(); }

 private:
  Connection(PgConnPtr conn, std::string where) : conn_(std::move(conn)), where_(std::move(where)) {}
  std::string lastError() const;

  PgConnPtr conn_;
  std::string where_;
};

// The first line of a libpq message, trailing spaces dropped.
std::string firstLine(const char* text);

}  // namespace cutover::pgclient
