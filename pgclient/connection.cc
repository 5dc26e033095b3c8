#include "pgclient/connection.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include <fmt/format.h>

namespace cutover::pgclient {

namespace {

using std::chrono::steady_clock;

enum class Wait { Ready, Timeout, Interrupted };

// Waits until `fd` has one of `events`, the deadline passes, or `interrupt_fd` is readable.
Wait waitFor(int fd, short events, Deadline deadline, int interrupt_fd) {
  for (;;) {
    const auto now = steady_clock::now();
    if (now >= deadline) return Wait::Timeout;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
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

Reply failure(std::string error) { return Reply{nullptr, std::move(error), {}}; }

}  // namespace

std::string firstLine(const char* text) {
  std::string s = text != nullptr ? text : "";
  if (auto nl = s.find('\n'); nl != std::string::npos) s.resize(nl);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

Deadline deadlineIn(int64_t ms) { return steady_clock::now() + std::chrono::milliseconds(ms); }

Result<Connection> Connection::connect(const ConnectParams& params, Deadline deadline,
                                       int interrupt_fd) {
  const std::vector<const char*> keys = params.keywords();
  const std::vector<const char*> values = params.values();
  const std::string where = params.describe();
  // Host names are resolved inside PQconnectStartParams (blocking); addresses are not.
  PgConnPtr conn(PQconnectStartParams(keys.data(), values.data(), 0));
  if (!conn) return Status::error(fmt::format("cannot connect to {}: out of memory", where));
  for (PostgresPollingStatusType state = PGRES_POLLING_WRITING;;) {
    if (PQstatus(conn.get()) == CONNECTION_BAD) break;
    if (state == PGRES_POLLING_OK || state == PGRES_POLLING_FAILED) break;
    const short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
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
  return Connection(std::move(conn), where);
}

std::string Connection::lastError() const {
  std::string error = conn_ ? firstLine(PQerrorMessage(conn_.get())) : "";
  return error.empty() ? "connection lost" : error;
}

Reply Connection::exec(const std::string& sql, const std::vector<std::string>& params,
                       Deadline deadline, int interrupt_fd) {
  if (!isOpen()) return failure("not connected");
  int sent = 0;
  if (params.empty()) {
    sent = PQsendQuery(conn_.get(), sql.c_str());
  } else {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p.c_str());
    sent = PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0);
  }
  if (sent == 0) {
    Reply reply = failure(lastError());
    close();
    return reply;
  }
  return finish(deadline, interrupt_fd);
}

Status Connection::send(const std::string& sql,
                        const std::vector<std::optional<std::string>>& params) {
  if (!isOpen()) return Status::error("not connected");
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                        values.data(), nullptr, nullptr, 0) == 0) {
    Status lost = Status::error(lastError());
    close();
    return lost;
  }
  return Status::ok();
}

Reply Connection::finish(Deadline deadline, int interrupt_fd) {
  if (!conn_) return failure("not connected");
  Reply reply;
  // Waits for the socket; false (connection closed, reply.error set) on deadline, stop, loss.
  auto await = [&](short events) {
    switch (waitFor(PQsocket(conn_.get()), events, deadline, interrupt_fd)) {
      case Wait::Timeout:
        reply = failure(fmt::format("{} did not answer in time", where_));
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
      reply.result = std::move(result);  // several statements: the last result
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

Result<int> Connection::consumeNotifications() {
  if (!isOpen()) return Status::error("not connected");
  if (PQconsumeInput(conn_.get()) == 0 || PQstatus(conn_.get()) != CONNECTION_OK) {
    Status lost = Status::error(lastError());
    close();
    return lost;
  }
  return takeNotifications();
}

int Connection::takeNotifications() {
  int count = 0;
  if (!conn_) return count;
  while (PGnotify* notify = PQnotifies(conn_.get())) {
    PQfreemem(notify);
    ++count;
  }
  return count;
}

std::string Connection::quoteIdentifier(const std::string& name) const {
  if (!conn_) return {};
  char* quoted = PQescapeIdentifier(conn_.get(), name.data(), name.size());
  if (quoted == nullptr) return {};
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace cutover::pgclient
