#pragma once

#include <sys/socket.h>

#include <atomic>

#include "config/config.h"
#include "proxy/cancel_registry.h"

namespace cutover::proxy {

// A store address resolved once at start-up (never a DNS lookup on a worker).
struct StoreAddress {
  const config::StoreConfig* store = nullptr;
  sockaddr_storage address{};
  socklen_t address_length = 0;
};

// What every session needs from the process. Owned by the Server; outlives every worker.
struct SessionContext {
  const config::Config* config = nullptr;
  StoreAddress old_store;
  CancelRegistry* cancel_registry = nullptr;
  std::atomic<int>* client_connections = nullptr;   // all accepted client sockets, all workers
  int worker_count = 1;
};

}  // namespace cutover::proxy
