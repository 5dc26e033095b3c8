#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace cutover::proxy {

// Where a client's CancelRequest must go: the store address and the key that store gave the
// session's backend connection.
struct CancelTarget {
  sockaddr_storage address{};
  socklen_t address_length = 0;
  int32_t backend_process_id = 0;
  int32_t backend_secret_key = 0;
};

// The BackendKeyData the proxy minted for a client, mapped to the backend(s) it covers.
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
  void bind(int32_t process_id, const CancelTarget& target);
  void release(int32_t process_id);
  // The target for a (process_id, secret_key) pair, or nothing when either part does not match.
  std::optional<CancelTarget> lookup(int32_t process_id, int32_t secret_key) const;

 private:
  struct Entry {
    int32_t secret_key;
    std::optional<CancelTarget> target;
  };
  mutable std::mutex mutex_;
  std::unordered_map<int32_t, Entry> entries_;
};

}  // namespace cutover::proxy
