#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace cutover::proxy {

// Where a client's CancelRequest must go: the store address and the key that store gave the
// session's backend connection.
struct CancelTarget {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int32_t backend_process_id = 0;
  int32_t backend_secret_key = 0;
};

// The BackendKeyData the proxy minted for a client, mapped to the backends it covers: one per
// store the session holds a connection to (DESIGN.md: a cancel reaches the session's work on
// every backend).
// A CancelRequest arrives on a new connection, usually on another worker than the session, so
// this map is shared; it is touched only at session start/end and on cancel, never per message.
class CancelRegistry {
 public:
  struct MintedKey {
    int32_t process_id;
    int32_t secret_key;
  };

  // Mints a key no live session holds. Random so that a client cannot guess another's key.
  MintedKey mint();
  static constexpr size_t kSlots = 2;   // one per store: 0 old, 1 new
  // Sets (or replaces, after a reconnect) the target of one store's connection.
  void bind(int32_t process_id, size_t slot, const CancelTarget& target);
  void release(int32_t process_id);
  // The targets for a (process_id, secret_key) pair; none when either part does not match.
  std::vector<CancelTarget> lookup(int32_t process_id, int32_t secret_key) const;

 private:
  struct Entry {
    int32_t secret_key;
    std::array<std::optional<CancelTarget>, kSlots> targets;
  };
  mutable std::mutex mutex_;
  std::unordered_map<int32_t, Entry> entries_;
};

}  // namespace cutover::proxy
