#pragma once

// A thread of its own that calls a function every `period` until the Ticker is destroyed; the
// destructor wakes it from its wait and joins it (a call in progress finishes first). For the
// background pollers of jobs and the proxy: progress output, the control database's job state.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace cutover {

class Ticker {
 public:
  enum class First { Now, AfterPeriod };

  Ticker(std::chrono::milliseconds period, First first, std::function<void()> tick)
      : period_(period), tick_(std::move(tick)), thread_([this, first] { run(first); }) {}
  ~Ticker() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  void run(First first) {
    if (first == First::Now) tick_();
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        if (wake_.wait_for(lock, period_, [this] { return stopping_; })) return;
      }
      tick_();
    }
  }

  const std::chrono::milliseconds period_;
  const std::function<void()> tick_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;   // last: started once everything above exists
};

}  // namespace cutover
