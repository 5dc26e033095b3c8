#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/status.h"
#include "config/config.h"
#include "pgclient/connection.h"

namespace cutover::proxy {


// auth.query: finds a client's secret (SCRAM verifier or md5 hash) in the old store, on a thread
// of its own with one libpq connection, so no worker ever waits on it. Answers, found or not, are
// cached for auth.query.ttl_s; at most kMaxCached users are remembered.
class AuthQuery {
 public:
  // nullopt secret: no such user (or a NULL secret). An error Status: the lookup itself failed.
  using Answer = Result<std::optional<std::string>>;
  using Callback = std::function<void(Answer)>;

  AuthQuery(const config::AuthQueryConfig& query, const config::StoreConfig& store);
  ~AuthQuery();
  AuthQuery(const AuthQuery&) = delete;
  AuthQuery& operator=(const AuthQuery&) = delete;

  // Any thread. `done` runs on the lookup thread (or at once on a cache hit): post it onward.
  void lookup(const std::string& user, Callback done);

 private:
  static constexpr size_t kMaxCached = 10000;
  static constexpr size_t kMaxQueued = 10000;
  struct Cached {
    std::optional<std::string> secret;
    std::chrono::steady_clock::time_point expires;
  };
  struct Request {
    std::string user;
    Callback done;
  };

  void run();
  Answer query(const std::string& user);
  Status ensureConnected();

  const config::AuthQueryConfig config_;
  const config::StoreConfig store_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;
  std::unordered_map<std::string, Cached> cache_;
  bool stopping_ = false;
  pgclient::Connection conn_;   // lookup thread only
  std::thread thread_;
};

}  // namespace cutover::proxy
