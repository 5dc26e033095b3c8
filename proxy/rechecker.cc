#include "proxy/rechecker.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <span>
#include <string_view>
#include <thread>
#include <utility>

#include "common/log.h"
#include "common/status.h"
#include "common/unique_handle.h"
#include "protocol/backend_messages.h"
#include "protocol/messages.h"
#include "protocol/writer.h"
#include "pgclient/connection.h"

namespace cutover::proxy {
namespace {

using Clock = std::chrono::steady_clock;
using pgclient::firstLine;
using pgclient::PgConnPtr;
using pgclient::PgResultPtr;

constexpr auto kConnectTimeout = std::chrono::seconds(5);
// statement_timeout on the server, plus room for the network before the client side gives up.
constexpr auto kCommandTimeout = std::chrono::seconds(35);
constexpr auto kPollSlice = std::chrono::milliseconds(500);
constexpr auto kLogEvery = std::chrono::seconds(60);

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

void ignoreNotice(void*, const char*) {}  // notices may quote values; nobody reads them here

// An error result that ends the session rather than the statement: libpq's own (no SQLSTATE:
// the socket failed), or the server's FATAL/PANIC (pg_terminate_backend, idle_session_timeout,
// shutdown), which libpq may hand over before it has seen the socket close.
bool sessionEnded(PGconn* conn, const PGresult* result) {
  if (PQstatus(conn) == CONNECTION_BAD || PQresultErrorField(result, PG_DIAG_SQLSTATE) == nullptr) return true;
  const char* severity = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string_view level = severity != nullptr ? severity : "";
  return level == "FATAL" || level == "PANIC";
}

// What PQexecParams takes, pointing into a RecheckRequest (which must outlive it).
struct BoundParams {
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
};

Result<BoundParams> bindParams(const RecheckRequest& request) {
  const size_t n = request.params.size();
  const size_t codes = request.param_formats.size();
  if (codes > 1 && codes != n) {
    return Status::error(fmt::format("Bind has {} parameter format codes for {} parameters", codes, n));
  }
  if (request.sql.find('\0') != std::string::npos) return Status::error("the statement text contains a NUL byte");
  BoundParams bound;
  bound.types.assign(n, 0);
  std::copy_n(request.param_types.begin(), std::min(n, request.param_types.size()), bound.types.begin());
  for (size_t i = 0; i < n; ++i) {
    const int16_t format = codes == 0 ? 0 : request.param_formats[codes == 1 ? 0 : i];
    const auto& value = request.params[i];
    if (format != 0 && format != 1)
      return Status::error(fmt::format("parameter ${} has format code {}", i + 1, format));
    if (format == 1 && bound.types[i] == 0 && value) {
      return Status::error(
          fmt::format("parameter ${} is binary and its type unspecified: libpq cannot send it", i + 1));
    }
    if (format == 0 && value && value->find('\0') != std::string::npos) {
      return Status::error(fmt::format("text parameter ${} contains a NUL byte", i + 1));
    }
    bound.values.push_back(value ? value->c_str() : nullptr);
    bound.lengths.push_back(value ? static_cast<int>(value->size()) : 0);
    bound.formats.push_back(format);
  }
  return bound;
}

// One store's side of one attempt: its connection (borrowed from the pool) and the command in
// flight on it.
struct Lane {
  Lane(const config::StoreConfig& store_config, const compare::CompareRules& rules)
      : store(&store_config), digest(rules) {}

  const config::StoreConfig* store;
  std::string user, database;
  PgConnPtr conn;
  bool reused = false;  // came from the pool

  bool busy = false;      // results still to come
  bool flushing = false;  // PQflush has more to send
  PostgresPollingStatusType connecting = PGRES_POLLING_OK;
  // Set: this lane is out of the attempt. `lost`: the connection broke (worth one reconnect);
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

using ResultSink = void (*)(Lane&, PGresult*);

void describe(Lane& lane, const PGresult* result) {
  protocol::RowDescription description;
  const int fields = PQnfields(result);
  for (int i = 0; i < fields; ++i) {
    protocol::RowDescription::Field field;
    field.name = PQfname(result, i);
    field.table_oid = PQftable(result, i);
    field.column_attr = static_cast<int16_t>(PQftablecol(result, i));
    field.type_oid = PQftype(result, i);
    field.type_size = static_cast<int16_t>(PQfsize(result, i));
    field.type_modifier = PQfmod(result, i);
    field.format = 0;  // results are asked for as text
    description.fields.push_back(std::move(field));
  }
  lane.buffer.clear();
  protocol::Writer writer(lane.buffer);
  description.encodeBody(writer);
  lane.digest.onRowDescription(protocol::asBytes(lane.buffer));
  lane.described = true;
}

void dataRow(Lane& lane, const PGresult* result, int row) {
  const int fields = PQnfields(result);
  lane.buffer.clear();
  protocol::Writer writer(lane.buffer);
  writer.putCount16(static_cast<size_t>(fields));
  for (int i = 0; i < fields; ++i) {
    if (PQgetisnull(result, row, i)) {
      writer.putInt32(-1);
      continue;
    }
    const int length = PQgetlength(result, row, i);
    writer.putInt32(length);
    writer.putBytes(std::string_view(PQgetvalue(result, row, i), static_cast<size_t>(length)));
  }
  lane.digest.onDataRow(protocol::asBytes(lane.buffer));
}

void commandComplete(Lane& lane, PGresult* result) {
  lane.buffer.assign(PQcmdStatus(result));
  lane.buffer.push_back('\0');
  lane.digest.onCommandComplete(protocol::asBytes(lane.buffer));
}

// The statement's results, as the messages a backend would have sent for them.
void digestResult(Lane& lane, PGresult* result) {
  switch (PQresultStatus(result)) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
      if (!lane.described) describe(lane, result);
      for (int row = 0; row < PQntuples(result); ++row) dataRow(lane, result, row);
      if (PQresultStatus(result) == PGRES_TUPLES_OK) commandComplete(lane, result);
      return;
    case PGRES_COMMAND_OK:
      commandComplete(lane, result);
      return;
    case PGRES_EMPTY_QUERY:
      lane.digest.onEmptyQueryResponse();
      return;
    case PGRES_FATAL_ERROR: {
      if (sessionEnded(lane.conn.get(), result)) {
        lane.fail(firstLine(PQresultErrorMessage(result)), Lane::Connection::Lost);
        return;
      }
      const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      const char* message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
      lane.buffer.clear();
      protocol::Writer writer(lane.buffer);
      protocol::ErrorResponse::make("ERROR", sqlstate, message != nullptr ? message : "").encodeBody(writer);
      lane.digest.onError(protocol::asBytes(lane.buffer));
      return;
    }
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_COPY_BOTH:
      // libpq hands the COPY state back on every PQgetResult; the connection is dropped instead.
      lane.fail("a COPY cannot be rechecked", Lane::Connection::Unclean);
      return;
    default:
      lane.fail(fmt::format("unexpected result {}", PQresStatus(PQresultStatus(result))), Lane::Connection::Unclean);
      return;
  }
}

// BEGIN, the setup, SET TRANSACTION: only a failure matters.
void noteSetupResult(Lane& lane, PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
    lane.fail("a COPY in the session setup cannot be rechecked", Lane::Connection::Unclean);
    return;
  }
  if (status != PGRES_FATAL_ERROR || !lane.setup_sqlstate.empty()) return;
  if (sessionEnded(lane.conn.get(), result)) {
    lane.fail(firstLine(PQresultErrorMessage(result)), Lane::Connection::Lost);
    return;
  }
  lane.setup_sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
}

// ROLLBACK, DISCARD ALL: a failure keeps the connection out of the pool.
void noteCleanupResult(Lane& lane, PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK) lane.drop = true;
}

struct Attempt {
  bool stopped = false;
  bool retry = false;  // a pooled connection turned out dead: worth one more run on fresh ones
  std::string failure;
  compare::ResultComparison comparison;
  double old_ms = 0, new_ms = 0;
  compare::MultisetHash old_rows, new_rows;   // each side's rows, to see whether they moved
};

}  // namespace

class Rechecker::Impl {
 public:
  Impl(const config::StoreConfig& old_store, const config::StoreConfig& new_store, size_t max_queued)
      : stores_{old_store, new_store}, max_queued_(max_queued), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    thread_ = std::thread([this] { run(); });
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (wake_fd_ >= 0) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
    }
    thread_.join();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  bool submit(RecheckRequest request, Callback done) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(Queued{std::move(request), std::move(done)});
    }
    wake_.notify_one();
    return true;
  }

 private:
  struct Queued {
    RecheckRequest request;
    Callback done;
  };
  // An idle connection in a store's pool.
  struct Pooled {
    std::string user, database;
    PgConnPtr conn;
  };
  struct StoreState {
    std::list<Pooled> idle;  // most recently used first
    Clock::time_point last_logged{};
    uint64_t unlogged = 0;
  };

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void run() {
    for (;;) {
      Queued next;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;  // queued requests are dropped with their callbacks
        next = std::move(queue_.front());
        queue_.pop_front();
      }
      std::optional<RecheckOutcome> outcome = recheck(next.request);
      if (!outcome) return;  // stopping
      if (!outcome->rechecked) log::debug("recheck: could not recheck: {}", outcome->error);
      next.done(std::move(*outcome));
    }
  }

  // Sleeps `delay` unless the rechecker stops first (false).
  bool pause(std::chrono::milliseconds delay) {
    std::unique_lock lock(mutex_);
    return !wake_.wait_for(lock, delay, [this] { return stopping_; });
  }

  std::optional<RecheckOutcome> recheck(const RecheckRequest& request) {
    RecheckOutcome outcome;
    Result<BoundParams> params = bindParams(request);
    if (!params) {
      outcome.error = params.status().message();
      return outcome;
    }
    if (request.attempts <= 0) {
      outcome.error = "compare.recheck.attempts is 0";
      return outcome;
    }
    std::optional<std::pair<compare::MultisetHash, compare::MultisetHash>> previous;
    for (int attempt = 1; attempt <= request.attempts; ++attempt) {
      if (!pause(std::chrono::milliseconds(std::max(0, request.delay_ms)))) return std::nullopt;
      Attempt run = runAttempt(request, *params);
      if (run.retry && !run.stopped) run = runAttempt(request, *params);
      if (run.stopped) return std::nullopt;
      outcome.attempts_run = attempt;
      outcome.old_ms = run.old_ms;
      outcome.new_ms = run.new_ms;
      if (!run.failure.empty()) {
        outcome.rechecked = false;
        outcome.error = std::move(run.failure);
        return outcome;
      }
      outcome.rechecked = true;
      if (run.comparison.match()) {
        outcome.matched = true;
        outcome.last = {};
        return outcome;
      }
      // A store whose answer changed between attempts is being written to: the difference
      // cannot be confirmed while it moves.
      if (previous && (previous->first != run.old_rows || previous->second != run.new_rows)) outcome.moving = true;
      previous.emplace(run.old_rows, run.new_rows);
      outcome.last = std::move(run.comparison);
    }
    return outcome;
  }

  Attempt runAttempt(const RecheckRequest& request, const BoundParams& params) {
    Attempt attempt;
    Lane old_lane(stores_[0], request.rules), new_lane(stores_[1], request.rules);
    std::array<Lane*, 2> lanes{&old_lane, &new_lane};
    for (size_t i = 0; i < lanes.size(); ++i) {
      Lane& lane = *lanes[i];
      lane.user = lane.store->user.value_or(request.user);
      lane.database = lane.store->database.value_or(request.database);
      takeIdle(i, lane);
    }
    if (!connect(lanes)) return stopped(attempt);

    // The session's state inside the read-only transaction, then the statement on both at once.
    static const std::string kBegin = "BEGIN READ ONLY",
                             kBounds = "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = 30000",
                             kRollback = "ROLLBACK", kDiscard = "DISCARD ALL";
    auto inTransaction = [](const Lane& lane) { return lane.setup_sqlstate.empty(); };
    auto any = [](const Lane&) { return true; };
    if (!step(lanes, kBegin, noteSetupResult, inTransaction)) return stopped(attempt);
    for (const std::string& setup : request.session_setup) {
      if (!step(lanes, setup, noteSetupResult, inTransaction)) return stopped(attempt);
    }
    // A setup may have lifted read-only (SET transaction_read_only = off; going back is always
    // allowed) or the time limit (SET statement_timeout = 0).
    if (!step(lanes, kBounds, noteSetupResult, inTransaction)) return stopped(attempt);
    for (Lane* lane : lanes) {
      // Nor may it have ended the transaction (a COMMIT, say).
      if (lane->usable() && inTransaction(*lane) && PQtransactionStatus(lane->conn.get()) != PQTRANS_INTRANS) {
        lane->fail("the session setup ended the transaction", Lane::Connection::Unclean);
      }
    }
    if (old_lane.usable() && new_lane.usable() && inTransaction(old_lane) && inTransaction(new_lane)) {
      for (Lane* lane : lanes) sendStatement(*lane, request, params);
      if (!await(lanes, digestResult)) return stopped(attempt);
      attempt.old_ms = old_lane.ms;
      attempt.new_ms = new_lane.ms;
    }
    // DISCARD ALL now rather than before the next use: what the statement took beyond its
    // transaction (a session advisory lock, say) is not kept while the connection sits idle.
    if (!step(lanes, kRollback, noteCleanupResult, any)) return stopped(attempt);
    if (!step(lanes, kDiscard, noteCleanupResult, any)) return stopped(attempt);

    for (size_t i = 0; i < lanes.size(); ++i) {
      Lane& lane = *lanes[i];
      if (!lane.failure.empty()) {
        if (lane.lost && lane.reused) attempt.retry = true;
        if (attempt.failure.empty()) {
          attempt.failure = fmt::format("{} store: {}", lane.store->name, lane.failure);
        }
        if (lane.lost && !lane.reused) logStoreFailure(i, lane.failure);
      } else if (!lane.setup_sqlstate.empty() && attempt.failure.empty()) {
        attempt.failure = fmt::format("the session setup failed on the {} store with SQLSTATE {}", lane.store->name,
                                      lane.setup_sqlstate);
      }
      giveBack(i, lane);
    }
    if (!attempt.failure.empty()) return attempt;
    attempt.retry = false;

    attempt.comparison = compare::compareResults(old_lane.digest, new_lane.digest, request.rules);
    attempt.old_rows = old_lane.digest.multisetHash();
    attempt.new_rows = new_lane.digest.multisetHash();
    if (attempt.comparison.match() && old_lane.digest.error() && new_lane.digest.error()) {
      attempt.failure = fmt::format(
          "the statement failed on both stores with SQLSTATE {}: a recheck cannot tell whether the client's did",
          old_lane.digest.error()->sqlstate);
    }
    return attempt;
  }

  static Attempt stopped(Attempt& attempt) {
    attempt.stopped = true;
    return std::move(attempt);
  }

  // --- connections -------------------------------------------------------------------------

  void takeIdle(size_t store, Lane& lane) {
    auto& idle = state_[store].idle;
    auto it = std::find_if(idle.begin(), idle.end(),
                           [&](const Pooled& p) { return p.user == lane.user && p.database == lane.database; });
    if (it == idle.end()) return;
    PgConnPtr conn = std::move(it->conn);
    idle.erase(it);
    // Reads what the server said while the connection sat idle: a FATAL and the close of a
    // terminated session show up here, and the lane connects afresh instead.
    if (PQconsumeInput(conn.get()) == 0 || PQstatus(conn.get()) != CONNECTION_OK) return;
    lane.conn = std::move(conn);
    lane.reused = true;
  }

  void giveBack(size_t store, Lane& lane) {
    if (!lane.conn || lane.drop || PQstatus(lane.conn.get()) != CONNECTION_OK ||
        PQtransactionStatus(lane.conn.get()) != PQTRANS_IDLE) {
      return;  // lane.conn closes
    }
    auto& idle = state_[store].idle;
    idle.push_front(Pooled{lane.user, lane.database, std::move(lane.conn)});
    while (idle.size() > kConnectionsPerStore) idle.pop_back();
  }

  void startConnect(Lane& lane) {
    const config::StoreConfig& store = *lane.store;
    pgclient::ConnectParams params = pgclient::paramsFor(store, "cutover-recheck", lane.database);
    params.set("user", lane.user);
    params.set("connect_timeout", "5");  // PQconnectPoll ignores it: connect() keeps its own deadline
    params.setting("statement_timeout", "30000").setting("default_transaction_read_only", "on");
    const std::vector<const char*> keys = params.keywords();
    const std::vector<const char*> values = params.values();
    lane.conn.reset(PQconnectStartParams(keys.data(), values.data(), 0));
    if (!lane.conn) {
      lane.fail("cannot connect: out of memory", Lane::Connection::Lost);
      return;
    }
    PQsetNoticeProcessor(lane.conn.get(), ignoreNotice, nullptr);
    if (PQstatus(lane.conn.get()) == CONNECTION_BAD) {
      lane.fail(fmt::format("cannot connect to {}:{}: {}", store.host, store.port,
                            firstLine(PQerrorMessage(lane.conn.get()))),
                Lane::Connection::Lost);
      lane.conn.reset();
      return;
    }
    lane.connecting = PGRES_POLLING_WRITING;  // libpq: wait for write-ready before the first poll
  }

  // Opens the lanes that got no idle connection, both at once. False when stopping.
  bool connect(std::span<Lane* const> lanes) {
    for (Lane* lane : lanes) {
      if (!lane->conn) startConnect(*lane);
    }
    const auto deadline = Clock::now() + kConnectTimeout;
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<Lane*> waiting;
      for (Lane* lane : lanes) {
        if (!lane->usable() || lane->connecting == PGRES_POLLING_OK) continue;
        const short events = lane->connecting == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        fds.push_back(pollfd{PQsocket(lane->conn.get()), events, 0});
        waiting.push_back(lane);
      }
      if (waiting.empty()) return true;
      if (Clock::now() >= deadline) {
        for (Lane* lane : waiting) {
          lane->fail(fmt::format("cannot connect to {}:{}: no answer within 5 s", lane->store->host, lane->store->port),
                     Lane::Connection::Lost);
          lane->conn.reset();
        }
        return true;
      }
      if (!waitFor(fds, deadline)) return false;
      for (size_t i = 0; i < waiting.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Lane& lane = *waiting[i];
        lane.connecting = PQconnectPoll(lane.conn.get());
        if (lane.connecting == PGRES_POLLING_FAILED) {
          lane.fail(fmt::format("cannot connect to {}:{}: {}", lane.store->host, lane.store->port,
                                firstLine(PQerrorMessage(lane.conn.get()))),
                    Lane::Connection::Lost);
          lane.conn.reset();
        } else if (lane.connecting == PGRES_POLLING_OK && PQsetnonblocking(lane.conn.get(), 1) != 0) {
          lane.fail("cannot make the connection non-blocking", Lane::Connection::Lost);
        }
      }
    }
  }

  // Polls `fds` plus the wake-up eventfd until one is ready or `deadline`. False when stopping.
  bool waitFor(std::vector<pollfd>& fds, Clock::time_point deadline) {
    if (stopping()) return false;
    fds.push_back(pollfd{wake_fd_, POLLIN, 0});
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const int timeout = static_cast<int>(std::clamp<int64_t>(left.count(), 0, kPollSlice.count()));
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // not expected; do not spin
    }
    fds.pop_back();
    return !stopping();
  }

  // --- commands ----------------------------------------------------------------------------

  void afterSend(Lane& lane, int sent) {
    if (sent == 0) {
      lane.fail(fmt::format("cannot send: {}", firstLine(PQerrorMessage(lane.conn.get()))), Lane::Connection::Lost);
      return;
    }
    lane.busy = true;
    lane.described = false;
    lane.sent = Clock::now();
    const int flushed = PQflush(lane.conn.get());
    if (flushed < 0)
      lane.fail(fmt::format("cannot send: {}", firstLine(PQerrorMessage(lane.conn.get()))), Lane::Connection::Lost);
    lane.flushing = flushed == 1;
  }

  void send(Lane& lane, const std::string& sql) { afterSend(lane, PQsendQuery(lane.conn.get(), sql.c_str())); }

  // Sends `sql` to every usable lane that `wanted` and waits for all of them. False when stopping.
  template <typename Wanted>
  bool step(std::span<Lane* const> lanes, const std::string& sql, ResultSink sink, Wanted wanted) {
    for (Lane* lane : lanes) {
      if (lane->usable() && wanted(*lane)) send(*lane, sql);
    }
    return await(lanes, sink);
  }

  void sendStatement(Lane& lane, const RecheckRequest& request, const BoundParams& params) {
    const int n = static_cast<int>(params.values.size());
    const int sent = PQsendQueryParams(lane.conn.get(), request.sql.c_str(), n, params.types.data(),
                                       params.values.data(), params.lengths.data(), params.formats.data(), 0);
    // One PGresult per row: memory stays one row whatever the result's size.
    if (sent == 1) PQsetSingleRowMode(lane.conn.get());
    afterSend(lane, sent);
  }

  // Reads what has arrived on a busy lane and hands each complete result to `sink`.
  static void advance(Lane& lane, ResultSink sink) {
    PGconn* conn = lane.conn.get();
    if (lane.flushing) {
      const int flushed = PQflush(conn);
      if (flushed < 0) {
        lane.fail(fmt::format("connection lost: {}", firstLine(PQerrorMessage(conn))), Lane::Connection::Lost);
        return;
      }
      lane.flushing = flushed == 1;
    }
    if (PQconsumeInput(conn) == 0) {
      lane.fail(fmt::format("connection lost: {}", firstLine(PQerrorMessage(conn))), Lane::Connection::Lost);
      return;
    }
    while (lane.busy && PQisBusy(conn) == 0) {
      PgResultPtr result(PQgetResult(conn));
      if (!result) {
        lane.busy = false;
        lane.ms = msSince(lane.sent);
        return;
      }
      sink(lane, result.get());
    }
  }

  // Until every busy lane delivered all its results or failed (kCommandTimeout each). False
  // when stopping.
  bool await(std::span<Lane* const> lanes, ResultSink sink) {
    const auto deadline = Clock::now() + kCommandTimeout;
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<Lane*> waiting;
      for (Lane* lane : lanes) {
        if (!lane->busy) continue;
        advance(*lane, sink);
        if (!lane->busy) continue;
        fds.push_back(
            pollfd{PQsocket(lane->conn.get()), static_cast<short>(lane->flushing ? POLLIN | POLLOUT : POLLIN), 0});
        waiting.push_back(lane);
      }
      if (waiting.empty()) return !stopping();
      if (Clock::now() >= deadline) {
        for (Lane* lane : waiting) lane->fail("no answer within 35 s", Lane::Connection::Lost);
        return !stopping();
      }
      if (!waitFor(fds, deadline)) return false;
    }
  }

  // A store's connection trouble, at most once a minute per store (a down store fails every
  // request). The reason comes from libpq or the rechecker, never from a value.
  void logStoreFailure(size_t store, const std::string& why) {
    StoreState& state = state_[store];
    const auto now = Clock::now();
    if (state.last_logged != Clock::time_point{} && now - state.last_logged < kLogEvery) {
      ++state.unlogged;
      return;
    }
    if (state.unlogged > 0) {
      log::warn("recheck: {} store {}:{}: {} ({} more since the last report)", stores_[store].name, stores_[store].host,
                stores_[store].port, why, state.unlogged);
    } else {
      log::warn("recheck: {} store {}:{}: {}", stores_[store].name, stores_[store].host, stores_[store].port, why);
    }
    state.last_logged = now;
    state.unlogged = 0;
  }

  const std::array<config::StoreConfig, 2> stores_;  // old, new
  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;
  bool stopping_ = false;
  const int wake_fd_;                // written once by the destructor: breaks a poll at once
  std::array<StoreState, 2> state_;  // rechecker thread only
  std::thread thread_;
};

Rechecker::Rechecker(const config::StoreConfig& old_store, const config::StoreConfig& new_store, size_t max_queued)
    : impl_(std::make_unique<Impl>(old_store, new_store, max_queued)) {}

Rechecker::~Rechecker() = default;

bool Rechecker::submit(RecheckRequest request, Callback done) {
  return impl_->submit(std::move(request), std::move(done));
}

}  // namespace cutover::proxy
