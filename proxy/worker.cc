#include "proxy/worker.h"

#include "common/log.h"
#include "proxy/client_session.h"

namespace cutover::proxy {

Worker::Worker(int index, const SessionContext& context)
    : index_(index), context_(context), flags_(context.flags) {}

Worker::~Worker() { stop(); }

Status Worker::start() {
  base_.reset(event_base_new());
  if (!base_) return Status::error("cannot create an event loop (event_base_new failed)");
  tasks_event_.reset(event_new(base_.get(), -1, 0, &Worker::onTasks, this));
  reap_event_.reset(event_new(base_.get(), -1, 0, &Worker::onReap, this));
  if (!tasks_event_ || !reap_event_) return Status::error("cannot create worker events");
  thread_ = std::thread([this] {
    // EVLOOP_NO_EXIT_ON_EMPTY: an idle worker with no sessions keeps waiting for posted work.
    event_base_loop(base_.get(), EVLOOP_NO_EXIT_ON_EMPTY);
  });
  return Status::ok();
}

void Worker::post(std::function<void()> task) {
  {
    std::lock_guard lock(tasks_mutex_);
    tasks_.push_back(std::move(task));
  }
  // event_active is thread-safe once evthread_use_pthreads() ran (Server does it first).
  event_active(tasks_event_.get(), EV_READ, 0);
}

void Worker::onTasks(evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->runTasks(); }

void Worker::runTasks() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(tasks_mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  post([this] {
    closeAllSessions("cutover is stopping");
    closed_.clear();
    event_base_loopbreak(base_.get());
  });
  thread_.join();
}

void Worker::adoptClient(int fd) {
  // Ids interleave across workers (worker i of n hands out i+1, i+1+n, …): unique per process
  // without a shared counter, so log lines of different workers never share a session id.
  const uint64_t id = next_session_id_++ * static_cast<uint64_t>(context_.worker_count) + index_ + 1;
  auto session = std::make_unique<ClientSession>(*this, id, fd);
  ClientSession* raw = session.get();
  sessions_.emplace(raw, std::move(session));
  session_count_.fetch_add(1, std::memory_order_relaxed);
  raw->start();
  if (draining_) raw->beginDrain();
}

void Worker::beginDrain() {
  draining_ = true;
  std::vector<ClientSession*> live;
  live.reserve(sessions_.size());
  for (auto& [raw, owned] : sessions_) live.push_back(raw);
  for (ClientSession* s : live) s->beginDrain();
}

void Worker::closeAllSessions(const char* reason) {
  std::vector<ClientSession*> live;
  for (auto& [raw, owned] : sessions_) live.push_back(raw);
  for (ClientSession* s : live) s->terminate(reason);
}

void Worker::sessionClosed(ClientSession* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  closed_.push_back(std::move(it->second));
  sessions_.erase(it);
  session_count_.fetch_sub(1, std::memory_order_relaxed);
  // Freed from the loop, not here: we are inside one of the session's own callbacks.
  event_active(reap_event_.get(), EV_READ, 0);
}

bool Worker::sessionAlive(ClientSession* session, uint64_t id) const {
  return sessions_.contains(session) && session->id() == id;
}

void Worker::onReap(evutil_socket_t, short, void* arg) { static_cast<Worker*>(arg)->closed_.clear(); }

}  // namespace cutover::proxy
