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
#include "proxy/recheck_side.h"

namespace cutover::proxy {
namespace {

using namespace recheck;   // NOLINT: the attempt's sides and result sinks

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
    AttemptSide old_side(stores_[0], request.rules), new_side(stores_[1], request.rules);
    std::array<AttemptSide*, 2> sides{&old_side, &new_side};
    for (size_t i = 0; i < sides.size(); ++i) {
      AttemptSide& side = *sides[i];
      side.user = side.store->user.value_or(request.user);
      side.database = side.store->database.value_or(request.database);
      takeIdle(i, side);
    }
    if (!connect(sides)) return stopped(attempt);

    // The session's state inside the read-only transaction, then the statement on both at once.
    static const std::string kBegin = "BEGIN READ ONLY",
                             kBounds = "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = 30000",
                             kRollback = "ROLLBACK", kDiscard = "DISCARD ALL";
    auto inTransaction = [](const AttemptSide& side) { return side.setup_sqlstate.empty(); };
    auto any = [](const AttemptSide&) { return true; };
    if (!step(sides, kBegin, noteSetupResult, inTransaction)) return stopped(attempt);
    for (const std::string& setup : request.session_setup) {
      if (!step(sides, setup, noteSetupResult, inTransaction)) return stopped(attempt);
    }
    // A setup may have lifted read-only (SET transaction_read_only = off; going back is always
    // allowed) or the time limit (SET statement_timeout = 0).
    if (!step(sides, kBounds, noteSetupResult, inTransaction)) return stopped(attempt);
    for (AttemptSide* side : sides) {
      // Nor may it have ended the transaction (a COMMIT, say).
      if (side->usable() && inTransaction(*side) && PQtransactionStatus(side->conn.get()) != PQTRANS_INTRANS) {
        side->fail("the session setup ended the transaction", AttemptSide::Connection::Unclean);
      }
    }
    if (old_side.usable() && new_side.usable() && inTransaction(old_side) && inTransaction(new_side)) {
      for (AttemptSide* side : sides) sendStatement(*side, request, params);
      if (!await(sides, digestResult)) return stopped(attempt);
      attempt.old_ms = old_side.ms;
      attempt.new_ms = new_side.ms;
    }
    // DISCARD ALL now rather than before the next use: what the statement took beyond its
    // transaction (a session advisory lock, say) is not kept while the connection sits idle.
    if (!step(sides, kRollback, noteCleanupResult, any)) return stopped(attempt);
    if (!step(sides, kDiscard, noteCleanupResult, any)) return stopped(attempt);

    for (size_t i = 0; i < sides.size(); ++i) {
      AttemptSide& side = *sides[i];
      if (!side.failure.empty()) {
        if (side.lost && side.reused) attempt.retry = true;
        if (attempt.failure.empty()) {
          attempt.failure = fmt::format("{} store: {}", side.store->name, side.failure);
        }
        if (side.lost && !side.reused) logStoreFailure(i, side.failure);
      } else if (!side.setup_sqlstate.empty() && attempt.failure.empty()) {
        attempt.failure = fmt::format("the session setup failed on the {} store with SQLSTATE {}", side.store->name,
                                      side.setup_sqlstate);
      }
      giveBack(i, side);
    }
    if (!attempt.failure.empty()) return attempt;
    attempt.retry = false;

    attempt.comparison = compare::compareResults(old_side.digest, new_side.digest, request.rules);
    attempt.old_rows = old_side.digest.multisetHash();
    attempt.new_rows = new_side.digest.multisetHash();
    if (attempt.comparison.match() && old_side.digest.error() && new_side.digest.error()) {
      attempt.failure = fmt::format(
          "the statement failed on both stores with SQLSTATE {}: a recheck cannot tell whether the client's did",
          old_side.digest.error()->sqlstate);
    }
    return attempt;
  }

  static Attempt stopped(Attempt& attempt) {
    attempt.stopped = true;
    return std::move(attempt);
  }

  // --- connections -------------------------------------------------------------------------

  void takeIdle(size_t store, AttemptSide& side) {
    auto& idle = state_[store].idle;
    auto it = std::find_if(idle.begin(), idle.end(),
                           [&](const Pooled& p) { return p.user == side.user && p.database == side.database; });
    if (it == idle.end()) return;
    PgConnPtr conn = std::move(it->conn);
    idle.erase(it);
    // Reads what the server said while the connection sat idle: a FATAL and the close of a
    // terminated session show up here, and the side connects afresh instead.
    if (PQconsumeInput(conn.get()) == 0 || PQstatus(conn.get()) != CONNECTION_OK) return;
    side.conn = std::move(conn);
    side.reused = true;
  }

  void giveBack(size_t store, AttemptSide& side) {
    if (!side.conn || side.drop || PQstatus(side.conn.get()) != CONNECTION_OK ||
        PQtransactionStatus(side.conn.get()) != PQTRANS_IDLE) {
      return;  // side.conn closes
    }
    auto& idle = state_[store].idle;
    idle.push_front(Pooled{side.user, side.database, std::move(side.conn)});
    while (idle.size() > kConnectionsPerStore) idle.pop_back();
  }

  void startConnect(AttemptSide& side) {
    const config::StoreConfig& store = *side.store;
    pgclient::ConnectParams params = pgclient::paramsFor(store, "cutover-recheck", side.database);
    params.set("user", side.user);
    params.set("connect_timeout", "5");  // PQconnectPoll ignores it: connect() keeps its own deadline
    params.setting("statement_timeout", "30000").setting("default_transaction_read_only", "on");
    const std::vector<const char*> keys = params.keywords();
    const std::vector<const char*> values = params.values();
    side.conn.reset(PQconnectStartParams(keys.data(), values.data(), 0));
    if (!side.conn) {
      side.fail("cannot connect: out of memory", AttemptSide::Connection::Lost);
      return;
    }
    PQsetNoticeProcessor(side.conn.get(), ignoreNotice, nullptr);
    if (PQstatus(side.conn.get()) == CONNECTION_BAD) {
      side.fail(fmt::format("cannot connect to {}:{}: {}", store.host, store.port,
                            firstLine(PQerrorMessage(side.conn.get()))),
                AttemptSide::Connection::Lost);
      side.conn.reset();
      return;
    }
    side.connecting = PGRES_POLLING_WRITING;  // libpq: wait for write-ready before the first poll
  }

  // Opens the sides that got no idle connection, both at once. False when stopping.
  bool connect(std::span<AttemptSide* const> sides) {
    for (AttemptSide* side : sides) {
      if (!side->conn) startConnect(*side);
    }
    const auto deadline = Clock::now() + kConnectTimeout;
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<AttemptSide*> waiting;
      for (AttemptSide* side : sides) {
        if (!side->usable() || side->connecting == PGRES_POLLING_OK) continue;
        const short events = side->connecting == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        fds.push_back(pollfd{PQsocket(side->conn.get()), events, 0});
        waiting.push_back(side);
      }
      if (waiting.empty()) return true;
      if (Clock::now() >= deadline) {
        for (AttemptSide* side : waiting) {
          side->fail(fmt::format("cannot connect to {}:{}: no answer within 5 s", side->store->host, side->store->port),
                     AttemptSide::Connection::Lost);
          side->conn.reset();
        }
        return true;
      }
      if (!waitFor(fds, deadline)) return false;
      for (size_t i = 0; i < waiting.size(); ++i) {
        if (fds[i].revents == 0) continue;
        AttemptSide& side = *waiting[i];
        side.connecting = PQconnectPoll(side.conn.get());
        if (side.connecting == PGRES_POLLING_FAILED) {
          side.fail(fmt::format("cannot connect to {}:{}: {}", side.store->host, side.store->port,
                                firstLine(PQerrorMessage(side.conn.get()))),
                    AttemptSide::Connection::Lost);
          side.conn.reset();
        } else if (side.connecting == PGRES_POLLING_OK && PQsetnonblocking(side.conn.get(), 1) != 0) {
          side.fail("cannot make the connection non-blocking", AttemptSide::Connection::Lost);
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

  void afterSend(AttemptSide& side, int sent) {
    if (sent == 0) {
      side.fail(fmt::format("cannot send: {}", firstLine(PQerrorMessage(side.conn.get()))), AttemptSide::Connection::Lost);
      return;
    }
    side.busy = true;
    side.described = false;
    side.sent = Clock::now();
    const int flushed = PQflush(side.conn.get());
    if (flushed < 0)
      side.fail(fmt::format("cannot send: {}", firstLine(PQerrorMessage(side.conn.get()))), AttemptSide::Connection::Lost);
    side.flushing = flushed == 1;
  }

  void send(AttemptSide& side, const std::string& sql) { afterSend(side, PQsendQuery(side.conn.get(), sql.c_str())); }

  // Sends `sql` to every usable side that `wanted` and waits for all of them. False when stopping.
  template <typename Wanted>
  bool step(std::span<AttemptSide* const> sides, const std::string& sql, ResultSink sink, Wanted wanted) {
    for (AttemptSide* side : sides) {
      if (side->usable() && wanted(*side)) send(*side, sql);
    }
    return await(sides, sink);
  }

  void sendStatement(AttemptSide& side, const RecheckRequest& request, const BoundParams& params) {
    const int n = static_cast<int>(params.values.size());
    const int sent = PQsendQueryParams(side.conn.get(), request.sql.c_str(), n, params.types.data(),
                                       params.values.data(), params.lengths.data(), params.formats.data(), 0);
    // One PGresult per row: memory stays one row whatever the result's size.
    if (sent == 1) PQsetSingleRowMode(side.conn.get());
    afterSend(side, sent);
  }

  // Reads what has arrived on a busy side and hands each complete result to `sink`.
  static void advance(AttemptSide& side, ResultSink sink) {
    PGconn* conn = side.conn.get();
    if (side.flushing) {
      const int flushed = PQflush(conn);
      if (flushed < 0) {
        side.fail(fmt::format("connection lost: {}", firstLine(PQerrorMessage(conn))), AttemptSide::Connection::Lost);
        return;
      }
      side.flushing = flushed == 1;
    }
    if (PQconsumeInput(conn) == 0) {
      side.fail(fmt::format("connection lost: {}", firstLine(PQerrorMessage(conn))), AttemptSide::Connection::Lost);
      return;
    }
    while (side.busy && PQisBusy(conn) == 0) {
      PgResultPtr result(PQgetResult(conn));
      if (!result) {
        side.busy = false;
        side.ms = msSince(side.sent);
        return;
      }
      sink(side, result.get());
    }
  }

  // Until every busy side delivered all its results or failed (kCommandTimeout each). False
  // when stopping.
  bool await(std::span<AttemptSide* const> sides, ResultSink sink) {
    const auto deadline = Clock::now() + kCommandTimeout;
    for (;;) {
      std::vector<pollfd> fds;
      std::vector<AttemptSide*> waiting;
      for (AttemptSide* side : sides) {
        if (!side->busy) continue;
        advance(*side, sink);
        if (!side->busy) continue;
        fds.push_back(
            pollfd{PQsocket(side->conn.get()), static_cast<short>(side->flushing ? POLLIN | POLLOUT : POLLIN), 0});
        waiting.push_back(side);
      }
      if (waiting.empty()) return !stopping();
      if (Clock::now() >= deadline) {
        for (AttemptSide* side : waiting) side->fail("no answer within 35 s", AttemptSide::Connection::Lost);
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
