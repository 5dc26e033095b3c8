#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "common/status.h"
#include "admin/admin_server.h"
#include "compare/journal.h"
#include "config/config.h"
#include "flags/auto_rollback.h"
#include "flags/flag_store.h"
#include "proxy/cancel_registry.h"
#include "proxy/control.h"
#include "proxy/mirror_sequencer.h"
#include "proxy/rechecker.h"
#include "proxy/libevent_handles.h"
#include "proxy/session_context.h"
#include "proxy/worker.h"

namespace cutover::proxy {

// The proxy process: the listener and signal handling on the main thread, sessions on workers.
// SIGTERM/SIGINT: stop accepting, let each session finish its transaction and close when idle,
// close what is left after shutdown_timeout_ms, return. A second signal closes everything at once.
class Server {
 public:
  // `config_path` is read again on SIGHUP.
  Server(const config::Config& config, std::string config_path);
  ~Server();

  // Binds, starts the workers and serves until shut down.
  Status run();

 private:
  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg);
  static void onAcceptError(evconnlistener*, void* arg);
  static void onSignal(evutil_socket_t signal, short, void* arg);
  static void onShutdownTick(evutil_socket_t, short, void* arg);
  static void onControlTick(evutil_socket_t, short, void* arg);
  void beginShutdown();
  // SIGHUP: reload the TLS certificate/key and the users file; on error keep the running ones.
  void reload();
  Status loadTlsAndUsers(const config::Config& config);
  Status openFleetFlagStore();
  Status recoverAsyncWrites();
  int liveSessions() const;
  // Closes the listening socket and removes its file when it is a Unix socket.
  void closeListener();

  const config::Config& config_;   // as loaded at start-up; context_.config() is the running one
  const std::string config_path_;
  std::vector<std::unique_ptr<const config::Config>> reloaded_;   // kept: sessions may be reading one
  CancelRegistry cancel_registry_;
  std::atomic<int> client_connections_{0};
  std::atomic<int> admitted_connections_{0};
  UserConnectionCounter user_connections_;
  std::unique_ptr<AuthQuery> auth_query_;
  MirrorSequencer sequencer_;                     // mirror: async, shared by every worker
  std::unique_ptr<flags::FlagStore> flag_store_;
  std::unique_ptr<compare::Journal> journal_;      // divergences.jsonl
  std::unique_ptr<compare::Journal> mismatches_;   // mismatches.jsonl
  std::unique_ptr<compare::AsyncWal> async_wal_;   // async-queue.<n>.jsonl (mirror: async durability)
  std::unique_ptr<Rechecker> rechecker_;           // re-runs mismatched shadow reads
  std::unique_ptr<StoreHealth> health_;
  std::unique_ptr<flags::PgFlagStore> fleet_;   // flags.store: postgres
  std::unique_ptr<JobWatch> jobs_;              // verify results; before control_, which reads it
  std::unique_ptr<ControlPlane> control_;
  std::atomic<ControlPlane*> control_ready_{nullptr};   // for the fleet store's thread
  std::unique_ptr<admin::AdminServer> admin_;
  SessionContext context_;
  EventBasePtr base_;
  ListenerPtr listener_;
  std::string unix_socket_path_;   // the listening Unix socket's file, while it listens
  std::vector<EventPtr> signal_events_;
  EventPtr shutdown_timer_;
  std::unique_ptr<flags::AutoRollback> auto_rollback_;
  EventPtr control_timer_;
  std::vector<std::unique_ptr<Worker>> workers_;
  size_t next_worker_ = 0;
  std::atomic<bool> shutting_down_{false};
  bool forced_ = false;
  std::chrono::steady_clock::time_point shutdown_started_;
};

// Resolves "host", port to the first address getaddrinfo returns; a host starting with '/' is a
// Unix socket directory, as in libpq ("<host>/.s.PGSQL.<port>").
Status resolveAddress(const std::string& host, uint16_t port, sockaddr_storage& out, socklen_t& length);

}  // namespace cutover::proxy
