#include "proxy/auth_query.h"

#include <fmt/format.h>

#include <vector>

#include "common/log.h"

namespace cutover::proxy {
namespace {

using PgResultPtr = UniqueHandle<PGresult, PQclear>;

std::string firstLine(const char* text) {
  std::string s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

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
  if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return Status::ok();
  const std::string port = std::to_string(store_.port);
  const std::string user = config_.user.value_or(store_.user.value_or(""));
  const std::optional<std::string>& password = config_.password ? config_.password : store_.password;
  std::vector<const char*> keys = {"host", "port", "dbname", "application_name", "connect_timeout", "sslmode"};
  const std::string sslmode(config::toString(store_.sslmode));
  std::vector<const char*> values = {store_.host.c_str(), port.c_str(), config_.database.c_str(), "cutover-auth-query",
                                     "5", sslmode.c_str()};
  if (!user.empty()) {
    keys.push_back("user");
    values.push_back(user.c_str());
  }
  if (password) {
    keys.push_back("password");
    values.push_back(password->c_str());
  }
  if (!store_.sslrootcert.empty()) {
    keys.push_back("sslrootcert");
    values.push_back(store_.sslrootcert.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_.reset(PQconnectdbParams(keys.data(), values.data(), 0));
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    std::string error = firstLine(PQerrorMessage(conn_.get()));
    conn_.reset();
    return Status::error(fmt::format("auth.query cannot connect to the old store {}:{}: {}", store_.host, store_.port, error));
  }
  return Status::ok();
}

AuthQuery::Answer AuthQuery::query(const std::string& user) {
  // One retry: the cached connection may have been closed by the store since the last lookup.
  for (int attempt = 0; attempt < 2; ++attempt) {
    Status connected = ensureConnected();
    if (!connected.isOk()) return connected;
    const char* params[] = {user.c_str()};
    PgResultPtr result(PQexecParams(conn_.get(), config_.query.c_str(), 1, nullptr, params, nullptr, nullptr, 0));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_TUPLES_OK) {
      if (PQntuples(result.get()) == 0 || PQnfields(result.get()) == 0) return std::optional<std::string>();
      const int column = PQnfields(result.get()) - 1;
      if (PQgetisnull(result.get(), 0, column)) return std::optional<std::string>();
      return std::optional<std::string>(PQgetvalue(result.get(), 0, column));
    }
    if (PQstatus(conn_.get()) == CONNECTION_OK) {
      return Status::error(fmt::format("auth.query failed on the old store: {}", firstLine(PQresultErrorMessage(result.get()))));
    }
    conn_.reset();
  }
  return Status::error("auth.query lost its connection to the old store twice");
}

}  // namespace cutover::proxy
