#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "config/config.h"

namespace cutover::proxy {

// Pings each configured store once a second from a thread of its own (libpq's PQpingParams: a
// server that answers at all, even to refuse, is up) and publishes the result to
// cutover_store_up and to sessions, which use it to decide when to reconnect a lost secondary.
class StoreHealth {
 public:
  explicit StoreHealth(const config::Config& config);
  ~StoreHealth();
  StoreHealth(const StoreHealth&) = delete;
  StoreHealth& operator=(const StoreHealth&) = delete;

  bool oldUp() const { return old_up_.load(std::memory_order_relaxed); }
  bool newUp() const { return new_up_.load(std::memory_order_relaxed); }

 private:
  void run();
  static bool ping(const config::StoreConfig& store);

  const config::Config& config_;
  std::atomic<bool> old_up_{true};
  std::atomic<bool> new_up_{true};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cutover::proxy
