#include "proxy/auth_query.h"

#include <fmt/format.h>

#include <vector>

#include "common/log.h"

namespace cutover::proxy {
namespace {

// A lookup is one short statement: a store slower than this fails the login (28P01 to the
// client, the reason in the log) rather than holding it.
constexpr int64_t kConnectTimeoutMs = 5000;
constexpr int64_t kQueryTimeoutMs = 5000;

}  // namespace

AuthQuery::AuthQuery(const config::AuthQueryConfig& query, const config::StoreConfig& store)
    : config_(query), store_(store), thread_([this] { run(); }) {}

AuthQuery::~AuthQuery() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void AuthQuery::lookup(const std::string& user, Callback done) {
  std::unique_lock lock(mutex_);
  auto it = cache_.find(user);
  if (it != cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
    std::optional<std::string> secret = it->second.secret;
    lock.unlock();
    done(std::move(secret));
    return;
  }
  if (queue_.size() >= kMaxQueued) {
    lock.unlock();
    done(Status::error("too many authentication lookups waiting for the old store"));
    return;
  }
  queue_.push_back(Request{user, std::move(done)});
  lock.unlock();
  wake_.notify_one();
}

void AuthQuery::run() {
  for (;;) {
    Request request;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        for (auto& r : queue_) r.done(Status::error("cutover is stopping"));
        queue_.clear();
        return;
      }
      request = std::move(queue_.front());
      queue_.pop_front();
      // Another request for the same user may have filled the cache meanwhile.
      auto it = cache_.find(request.user);
      if (it != cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
        std::optional<std::string> secret = it->second.secret;
        lock.unlock();
        request.done(std::move(secret));
        continue;
      }
    }
    Answer answer = query(request.user);
    if (answer.isOk()) {
      std::lock_guard lock(mutex_);
      if (cache_.size() >= kMaxCached) {
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(cache_, [&](const auto& entry) { return entry.second.expires <= now; });
        if (cache_.size() >= kMaxCached) cache_.clear();   // still full of live entries: start over
      }
      cache_[request.user] = Cached{answer.value(), std::chrono::steady_clock::now() + std::chrono::seconds(config_.ttl_s)};
    }
    request.done(std::move(answer));
  }
}

Status AuthQuery::ensureConnected() {
  if (conn_.isOpen()) return Status::ok();
  pgclient::ConnectParams params = pgclient::paramsFor(store_, "cutover-auth-query", config_.database);
  if (const std::optional<std::string>& user = config_.user ? config_.user : store_.user) params.set("user", *user);
  if (const std::optional<std::string>& password = config_.password ? config_.password : store_.password) {
    params.set("password", *password);
  }
  auto connected = pgclient::Connection::connect(params, pgclient::deadlineIn(kConnectTimeoutMs));
  if (!connected.isOk()) return Status::error(fmt::format("auth.query on the old store: {}", connected.status().message()));
  conn_ = std::move(connected.value());
  return Status::ok();
}

AuthQuery::Answer AuthQuery::query(const std::string& user) {
  // One retry: the cached connection may have been closed by the store since the last lookup.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status connected = ensureConnected();
    if (!connected.isOk()) return connected;
    pgclient::Reply reply = conn_.exec(config_.query, {user}, pgclient::deadlineIn(kQueryTimeoutMs));
    if (reply.ok()) {
      if (reply.rows() == 0 || reply.columns() == 0) return std::optional<std::string>();
      const int column = reply.columns() - 1;
      if (reply.isNull(0, column)) return std::optional<std::string>();
      return std::optional<std::string>(std::string(reply.value(0, column)));
    }
    if (conn_.isOpen()) return Status::error(fmt::format("auth.query failed on the old store: {}", reply.error));
    if (attempt == 1) return Status::error(fmt::format("auth.query on the old store: {}", reply.error));
  }
  return Status::error("auth.query lost its connection to the old store twice");
}

}  // namespace cutover::proxy
