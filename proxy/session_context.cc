#include "proxy/session_context.h"

namespace cutover::proxy {

bool UserConnectionCounter::tryAcquire(const std::string& user, int limit) {
  std::lock_guard lock(mutex_);
  int& count = counts_[user];
  if (limit > 0 && count >= limit) {
    if (count == 0) counts_.erase(user);
    return false;
  }
  ++count;
  return true;
}

void UserConnectionCounter::release(const std::string& user) {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(user);
  if (it == counts_.end()) return;
  if (--it->second <= 0) counts_.erase(it);
}

}  // namespace cutover::proxy
