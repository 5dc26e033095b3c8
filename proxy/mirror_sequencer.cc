#include "proxy/mirror_sequencer.h"

namespace cutover::proxy {

uint64_t MirrorSequencer::take() {
  std::lock_guard lock(mutex_);
  return next_++;
}

void MirrorSequencer::release(uint64_t ticket) {
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    if (ticket < floor_) return;
    waiters_.erase(ticket);   // its owner gave it up while waiting
    released_.insert(ticket);
    while (!released_.empty() && *released_.begin() == floor_) {
      released_.erase(released_.begin());
      ++floor_;
    }
    // Only the write holding ticket floor_ can have become ready.
    if (auto it = waiters_.find(floor_); it != waiters_.end()) {
      wake = std::move(it->second);
      waiters_.erase(it);
    }
  }
  if (wake) wake();
}

bool MirrorSequencer::readyOrWait(uint64_t ticket, std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  if (ticket <= floor_) return true;
  waiters_[ticket] = std::move(wake);
  return false;
}

uint64_t MirrorSequencer::outstanding() const {
  std::lock_guard lock(mutex_);
  return next_ - floor_ - released_.size();
}

}  // namespace cutover::proxy
