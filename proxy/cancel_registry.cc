#include "proxy/cancel_registry.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/random.h>

namespace cutover::proxy {
namespace {

uint32_t randomWord() {
  uint32_t value = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
    // RAND_bytes only fails when the CSPRNG cannot be seeded; getrandom(2) is the fallback.
    ssize_t ignored = getrandom(&value, sizeof value, 0);
    (void)ignored;
  }
  return value;
}

}  // namespace

CancelRegistry::MintedKey CancelRegistry::mint() {
  std::lock_guard lock(mutex_);
  for (;;) {
    // Positive process ids, like PostgreSQL's, so clients that print them are not surprised.
    int32_t pid = static_cast<int32_t>(randomWord() & 0x7fffffff);
    if (pid == 0 || entries_.contains(pid)) continue;
    int32_t secret = static_cast<int32_t>(randomWord());
    entries_.emplace(pid, Entry{secret, {}});
    return MintedKey{pid, secret};
  }
}

void CancelRegistry::bind(int32_t process_id, size_t slot, const CancelTarget& target) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(process_id);
  if (it != entries_.end() && slot < kSlots) it->second.targets[slot] = target;
}

void CancelRegistry::release(int32_t process_id) {
  std::lock_guard lock(mutex_);
  entries_.erase(process_id);
}

std::vector<CancelTarget> CancelRegistry::lookup(int32_t process_id, int32_t secret_key) const {
  std::vector<CancelTarget> out;
  std::lock_guard lock(mutex_);
  auto it = entries_.find(process_id);
  if (it == entries_.end()) return out;
  // Constant-time so that response timing does not leak how much of a guessed secret matched.
  if (CRYPTO_memcmp(&it->second.secret_key, &secret_key, sizeof secret_key) != 0) return out;
  for (const auto& target : it->second.targets) {
    if (target) out.push_back(*target);
  }
  return out;
}

}  // namespace cutover::proxy
