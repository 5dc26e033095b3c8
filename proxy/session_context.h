#pragma once

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "compare/async_wal.h"
#include "compare/journal.h"
#include "config/users_file.h"
#include "flags/flag_snapshot.h"
#include "proxy/auth_query.h"
#include "proxy/cancel_registry.h"
#include "proxy/store_health.h"
#include "proxy/tls.h"

namespace cutover::proxy {

class Rechecker;

// A store address resolved once at start-up (never a DNS lookup on a worker).
struct StoreAddress {
  const config::StoreConfig* store = nullptr;
  sockaddr_storage address{};
  socklen_t address_length = 0;
};

// Client connections per user, for max_connections_per_user. Touched at login and logout only.
class UserConnectionCounter {
 public:
  // Counts one more connection for `user` unless that would pass `limit` (0 = no limit).
  bool tryAcquire(const std::string& user, int limit);
  void release(const std::string& user);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, int> counts_;
};

// What every session needs from the process. Owned by the Server; outlives every worker.
class MirrorSequencer;

struct SessionContext {
  // The running config, replaced as a whole by a SIGHUP reload (keys that need a restart keep
  // their start-up values in it). Read it afresh where it is used; never keep the reference.
  const config::Config& config() const { return *running_config.load(std::memory_order_acquire); }
  std::atomic<const config::Config*> running_config{nullptr};
  StoreAddress old_store;
  StoreAddress new_store;                                   // store null when stores.new is absent
  CancelRegistry* cancel_registry = nullptr;
  std::atomic<int>* client_connections = nullptr;   // all accepted client sockets, all workers
  // Slots of max_client_connections: taken by a session whose startup packet was admitted, held
  // through authentication, store login and relaying until it closes (as PostgreSQL counts a
  // backend from fork). A connection refused, or still before its startup packet, holds none.
  std::atomic<int>* admitted_connections = nullptr;
  // Sessions open that missed a write on a store (journaled): their reads no longer go there.
  mutable std::atomic<int> sessions_missed_writes{0};
  int worker_count = 1;
  std::shared_ptr<const TlsClientContext> old_store_tls;   // null when stores.old.sslmode is disable
  std::shared_ptr<const TlsClientContext> new_store_tls;
  compare::Journal* journal = nullptr;                      // divergences.jsonl
  compare::Journal* mismatches = nullptr;                   // mismatches.jsonl (shadow reads)
  Rechecker* rechecker = nullptr;                           // re-runs mismatched shadow reads; may be null
  const StoreHealth* health = nullptr;                      // null unless a new store is configured
  // The flags at start-up. Flips reach sessions through their worker (Worker::flags()).
  flags::FlagSnapshotPtr flags;
  std::string mock_auth_secret;                            // per process: unknown users' fake SCRAM salt
  UserConnectionCounter* user_connections = nullptr;
  AuthQuery* auth_query = nullptr;                          // null unless auth.query is set
  MirrorSequencer* sequencer = nullptr;                     // mirror: async, cross-session order
  compare::AsyncWal* async_wal = nullptr;                   // mirror: async, acknowledged writes not yet applied
  // Acknowledged async writes a store missed before the last unclean stop (journaled
  // unclean_stop at start-up): no session of this process serves reads from that store.
  uint64_t lost_at_start_old = 0, lost_at_start_new = 0;

  // Client TLS: replaced as a whole on reload; sessions take it once, at SSLRequest time.
  std::shared_ptr<const TlsServerContext> tlsServer() const { return std::atomic_load(&tls_server); }
  std::shared_ptr<const TlsServerContext> tls_server;
  // The users file (null with auth.method trust), replaced as a whole on reload.
  std::shared_ptr<const config::UsersFile> users() const { return std::atomic_load(&users_file); }
  std::shared_ptr<const config::UsersFile> users_file;
};

}  // namespace cutover::proxy
