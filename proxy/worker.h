#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "proxy/libevent_handles.h"
#include "proxy/session_context.h"
#include "proxy/shadow_reads.h"
#include "router/classifier.h"

namespace cutover::proxy {

class ClientSession;

// One event loop thread. A client session and its backend connections live and die on the worker
// that adopted the client socket; other threads reach a worker only through post().
class Worker {
 public:
  Worker(int index, const SessionContext& context);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  Status start();
  // Runs `task` on this worker's thread. Safe from any thread.
  void post(std::function<void()> task);
  // Asks the loop to exit and joins the thread. Sessions still open are closed first.
  void stop();

  // Worker thread only.
  void adoptClient(int fd);
  void beginDrain();
  void closeAllSessions(const char* reason);
  void sessionClosed(ClientSession* session);
  // True while `session` (with that id: addresses are reused) is open on this worker.
  bool sessionAlive(ClientSession* session, uint64_t id) const;   // destroyed later, outside its own callbacks

  event_base* base() const { return base_.get(); }
  int index() const { return index_; }
  const SessionContext& context() const { return context_; }
  bool draining() const { return draining_; }
  // This worker's statement classifier and its cache (not thread-safe: worker thread only).
  router::Classifier& classifier() { return classifier_; }
  int sessionCount() const { return session_count_.load(std::memory_order_relaxed); }
  // The flags this worker routes by: each session compares it with its own at every unit
  // boundary outside a transaction (one pointer compare), and takes it when it changed. Worker
  // thread only; other threads replace it with post([..] { setFlags(..); }).
  const flags::FlagSnapshotPtr& flags() const { return flags_; }
  void setFlags(flags::FlagSnapshotPtr flags) { flags_ = std::move(flags); }

  // Shadow reads in flight on this worker and the memory their digests may hold (worker thread).
  ShadowBudget& shadowBudget() { return shadow_budget_; }

 private:
  static void onTasks(evutil_socket_t, short, void* arg);
  static void onReap(evutil_socket_t, short, void* arg);
  void runTasks();

  const int index_;
  const SessionContext& context_;
  EventBasePtr base_;
  EventPtr tasks_event_;
  EventPtr reap_event_;
  std::thread thread_;

  std::mutex tasks_mutex_;
  std::vector<std::function<void()>> tasks_;

  uint64_t next_session_id_ = 0;
  bool draining_ = false;
  router::Classifier classifier_;
  flags::FlagSnapshotPtr flags_;
  ShadowBudget shadow_budget_;   // before sessions_: destroyed after every session
  std::unordered_map<ClientSession*, std::unique_ptr<ClientSession>> sessions_;
  std::vector<std::unique_ptr<ClientSession>> closed_;
  std::atomic<int> session_count_{0};
};

}  // namespace cutover::proxy
