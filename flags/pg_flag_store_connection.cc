#include "flags/pg_flag_store_connection.h"

#include <poll.h>

#include <cerrno>
#include <climits>

#include <fmt/format.h>

namespace cutover::flags {

namespace {

using std::chrono::steady_clock;

// Server-side bounds for every session of the flag store: a statement or a row lock that takes
// longer fails on the server too (the client's deadline alone would leave a lock waiter behind),
// and a transaction left open by a vanished client is ended.
constexpr const char* kSessionOptions =
    "-c statement_timeout=5000 -c lock_timeout=5000 -c idle_in_transaction_session_timeout=10000";

std::string firstLine(const char* text) {
  std::string s = text != nullptr ? text : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

enum class Wait { Ready, Timeout, Interrupted };

// Waits until `fd` has one of `events`, the deadline passes, or `interrupt_fd` is readable.
Wait waitFor(int fd, short events, Deadline deadline, int interrupt_fd) {
  for (;;) {
    const auto now = steady_clock::now();
    if (now >= deadline) return Wait::Timeout;
    const auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[2] = {{fd, events, 0}, {interrupt_fd, POLLIN, 0}};
    const int n = ::poll(fds, interrupt_fd >= 0 ? 2 : 1,
                         static_cast<int>(std::min<long long>(left, INT_MAX)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Wait::Ready;  // let libpq run into the error and report it
    }
    if (interrupt_fd >= 0 && fds[1].revents != 0) return Wait::Interrupted;
    if (n > 0 && fds[0].revents != 0) return Wait::Ready;
  }
}

PgReply failure(std::string error) { return PgReply{nullptr, std::move(error), {}}; }

}  // namespace

std::string describe(const config::ControlConfig& control) {
  return fmt::format("{}:{}/{}", control.host, control.port, control.database);
}

Result<ControlConnection> ControlConnection::connect(const config::ControlConfig& control,
                                                     const char* application_name,
                                                     Deadline deadline, int interrupt_fd) {
  const std::string port = std::to_string(control.port);
  const std::string sslmode(config::toString(control.sslmode));
  std::vector<const char*> keys = {"host",        "port",           "dbname",
                                   "sslmode",     "application_name", "options",
                                   "keepalives",  "keepalives_idle", "keepalives_interval",
                                   "keepalives_count", "tcp_user_timeout"};
  std::vector<const char*> values = {control.host.c_str(), port.c_str(), control.database.c_str(),
                                     sslmode.c_str(),      application_name, kSessionOptions,
                                     "1",                  "5",             "2",
                                     "3",                  "10000"};
  if (control.user) {
    keys.push_back("user");
    values.push_back(control.user->c_str());
  }
  if (control.password) {
    keys.push_back("password");
    values.push_back(control.password->c_str());
  }
  if (!control.sslrootcert.empty()) {
    keys.push_back("sslrootcert");
    values.push_back(control.sslrootcert.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  // Host names are resolved inside PQconnectStartParams (blocking); addresses are not.
  PgConnPtr conn(PQconnectStartParams(keys.data(), values.data(), 0));
  const std::string where = describe(control);
  if (!conn) return Status::error(fmt::format("cannot connect to {}: out of memory", where));
  for (PostgresPollingStatusType state = PGRES_POLLING_WRITING;;) {
    if (PQstatus(conn.get()) == CONNECTION_BAD) break;
    short events = 0;
    if (state == PGRES_POLLING_READING) events = POLLIN;
    if (state == PGRES_POLLING_WRITING) events = POLLOUT;
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) break;
    switch (waitFor(PQsocket(conn.get()), events, deadline, interrupt_fd)) {
      case Wait::Timeout:
        return Status::error(fmt::format("cannot connect to {}: no answer in time", where));
      case Wait::Interrupted:
        return Status::error(fmt::format("connecting to {} interrupted (stopping)", where));
      case Wait::Ready:
        break;
    }
    state = PQconnectPoll(conn.get());
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status::error(
        fmt::format("cannot connect to {}: {}", where, firstLine(PQerrorMessage(conn.get()))));
  }
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    return Status::error(fmt::format("cannot use the connection to {}: {}", where,
                                     firstLine(PQerrorMessage(conn.get()))));
  }
  return ControlConnection(std::move(conn));
}

std::string ControlConnection::lastError() const {
  std::string error = conn_ ? firstLine(PQerrorMessage(conn_.get())) : "";
  return error.empty() ? "connection lost" : error;
}

PgReply ControlConnection::exec(const std::string& sql, const std::vector<std::string>& params,
                                Deadline deadline, int interrupt_fd) {
  if (!isOpen()) return failure("not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  if (PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) == 0) {
    PgReply reply = failure(lastError());
    close();
    return reply;
  }
  // Waits for the socket; false (connection closed, reply.error set) on deadline, stop, loss.
  PgReply reply;
  auto await = [&](short events) {
    switch (waitFor(PQsocket(conn_.get()), events, deadline, interrupt_fd)) {
      case Wait::Timeout:
        reply = failure("the control database did not answer in time");
        close();
        return false;
      case Wait::Interrupted:
        reply = failure("interrupted (stopping)");
        close();
        return false;
      case Wait::Ready:
        if (PQconsumeInput(conn_.get()) == 0) {
          reply = failure(lastError());
          close();
          return false;
        }
        return true;
    }
    return false;
  };
  for (;;) {
    const int flushed = PQflush(conn_.get());
    if (flushed == 0) break;
    if (flushed < 0) {
      reply = failure(lastError());
      close();
      return reply;
    }
    if (!await(POLLIN | POLLOUT)) return reply;
  }
  for (;;) {
    while (PQisBusy(conn_.get()) != 0) {
      if (!await(POLLIN)) return reply;
    }
    PgResultPtr result(PQgetResult(conn_.get()));
    if (!result) break;
    const ExecStatusType status = PQresultStatus(result.get());
    if (!reply.ok()) continue;  // keep the first error, drain the rest
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
      if (!reply.result) reply.result = std::move(result);
      continue;
    }
    reply.result.reset();
    reply.error = firstLine(PQresultErrorMessage(result.get()));
    if (reply.error.empty()) reply.error = lastError();
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    reply.sqlstate = state != nullptr ? state : "";
  }
  if (reply.ok() && !reply.result) reply = failure(lastError());
  if (PQstatus(conn_.get()) != CONNECTION_OK) close();
  return reply;
}

Result<int> ControlConnection::consumeNotifications() {
  if (!isOpen()) return Status::error("not connected");
  if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
    Status lost = Status::error(lastError());
    close();
    return lost;
  }
  return takeNotifications();
}

int ControlConnection::takeNotifications() {
  int count = 0;
  if (!conn_) return count;
  while (PGnotify* notify = PQnotifies(conn_.get())) {
    PQfreemem(notify);
    ++count;
  }
  return count;
}

std::string ControlConnection::quoteIdentifier(const std::string& name) const {
  char* quoted = PQescapeIdentifier(conn_.get(), name.data(), name.size());
  if (quoted == nullptr) return {};
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace cutover::flags
