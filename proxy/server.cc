#include "proxy/server.h"

#include <event2/thread.h>
#include <netdb.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <openssl/rand.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/build_support.h"
#include "pgclient/conninfo.h"
#include "proxy/socket_util.h"

namespace cutover::proxy {
namespace {

// The verify results in the control database are read this often, each read within the deadline.
constexpr std::chrono::milliseconds kJobPollPeriod{5000};
constexpr std::chrono::milliseconds kJobReadDeadline{3000};

}  // namespace

Status resolveAddress(const std::string& host, uint16_t port, sockaddr_storage& out, socklen_t& length) {
  if (host.starts_with("/")) {
    // As in libpq: a host that starts with '/' is the directory of the server's Unix socket.
    const std::string path = fmt::format("{}/.s.PGSQL.{}", host, port);
    sockaddr_un address{};
    if (path.size() >= sizeof address.sun_path) {
      return Status::error(fmt::format("Unix socket path '{}' is longer than {} bytes", path,
                                       sizeof address.sun_path - 1));
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&out, &address, sizeof address);
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return Status::ok();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return Status::error(fmt::format("cannot resolve '{}': {}", host, gai_strerror(rc)));
  }
  std::memcpy(&out, result->ai_addr, result->ai_addrlen);
  length = result->ai_addrlen;
  freeaddrinfo(result);
  return Status::ok();
}

Server::Server(const config::Config& config, std::string config_path)
    : config_(config), config_path_(std::move(config_path)) {
  context_.running_config.store(&config_);
  context_.cancel_registry = &cancel_registry_;
  context_.client_connections = &client_connections_;
  context_.admitted_connections = &admitted_connections_;
  context_.user_connections = &user_connections_;
  unsigned char secret[32];
  if (RAND_bytes(secret, sizeof secret) != 1) std::memset(secret, 0x5a, sizeof secret);
  context_.mock_auth_secret.assign(reinterpret_cast<char*>(secret), sizeof secret);
}

Status Server::loadTlsAndUsers(const config::Config& config) {
  std::shared_ptr<const TlsServerContext> tls;
  if (config.tls.mode != config::TlsMode::Disable) {
    auto loaded = TlsServerContext::load(config.tls);
    if (!loaded.isOk()) return loaded.status();
    tls = std::move(loaded.value());
  }
  std::shared_ptr<const config::UsersFile> users;
  if (config.auth.method != config::AuthMethod::Trust && !config.auth.users_file.empty()) {
    auto loaded = config::UsersFile::load(config.auth.users_file);
    if (!loaded.isOk()) return Status::error("auth.users_file: " + loaded.status().message());
    users = std::make_shared<const config::UsersFile>(std::move(loaded.value()));
  }
  std::atomic_store(&context_.tls_server, std::move(tls));
  std::atomic_store(&context_.users_file, std::move(users));
  return Status::ok();
}

// SIGHUP: the config file again, the TLS certificate/key and the users file. Keys bound at
// start-up (listen, workers, stores, flags, journal_dir, admin, auth.query) keep their running
// values, said in the log; everything else applies to the next use (limits and timeouts to the
// next connection or statement, log_level and auto_rollback at once). Any error keeps the
// running config, certificate and users as they are.
void Server::reload() {
  auto loaded = config::loadFile(config_path_);
  if (!loaded.isOk()) {
    log::error("SIGHUP: reload failed; the running config, TLS certificate and users stay: {}", loaded.status().message());
    return;
  }
  auto next = std::make_unique<config::Config>(std::move(loaded.value()));
  const config::Config& running = context_.config();
  std::vector<std::string> kept;
  auto keep = [&kept](auto& field, const auto& value, const char* key) {
    if (!(field == value)) {
      kept.emplace_back(key);
      field = value;
    }
  };
  keep(next->listen, running.listen, "listen");
  keep(next->workers, running.workers, "workers");
  keep(next->old_store, running.old_store, "stores.old");
  keep(next->new_store, running.new_store, "stores.new");
  keep(next->flags, running.flags, "flags (change flags with PUT /flags or cutover ctl set)");
  keep(next->journal_dir, running.journal_dir, "journal_dir");
  keep(next->admin, running.admin, "admin");
  keep(next->auth.query, running.auth.query, "auth.query");
  if (Status status = loadTlsAndUsers(*next); !status.isOk()) {
    log::error("SIGHUP: reload failed; the running config, TLS certificate and users stay: {}", status.message());
    return;
  }
  log::Level level;
  if (log::parseLevel(next->log_level, level)) log::setLevel(level);
  if (next->auto_rollback.enabled && auto_rollback_) {
    auto_rollback_ = std::make_unique<flags::AutoRollback>(next->auto_rollback);
  } else if (next->auto_rollback.enabled != running.auto_rollback.enabled) {
    kept.emplace_back("auto_rollback (enabling or disabling it)");
    next->auto_rollback = running.auto_rollback;
  }
  reloaded_.push_back(std::move(next));
  context_.running_config.store(reloaded_.back().get(), std::memory_order_release);
  if (kept.empty()) {
    log::info("SIGHUP: reloaded {} (and the TLS certificate and users file)", config_path_);
  } else {
    log::warn("SIGHUP: reloaded {} (and the TLS certificate and users file); changes that need a restart are not "
              "applied, the running values stay: {}",
              config_path_, fmt::join(kept, ", "));
  }
}

Server::~Server() {
  admin_.reset();
  if (fleet_) fleet_->stop();
  closeListener();
  for (auto& w : workers_) w->stop();
}

Status Server::run() {
  // Cross-thread event_active() (Worker::post) needs libevent's locking.
  if (evthread_use_pthreads() != 0) return Status::error("libevent has no pthreads support");
  signal(SIGPIPE, SIG_IGN);

  context_.old_store.store = &config_.old_store;
  Status resolved = resolveAddress(config_.old_store.host, config_.old_store.port, context_.old_store.address,
                                   context_.old_store.address_length);
  if (!resolved) return Status::error("stores.old.host: " + resolved.message());

  if (config_.old_store.sslmode != config::SslMode::Disable) {
    auto tls = TlsClientContext::load(config_.old_store);
    if (!tls.isOk()) return tls.status();
    context_.old_store_tls = std::move(tls.value());
  }
  if (config_.new_store) {
    context_.new_store.store = &*config_.new_store;
    Status new_resolved = resolveAddress(config_.new_store->host, config_.new_store->port,
                                         context_.new_store.address, context_.new_store.address_length);
    if (!new_resolved) return Status::error("stores.new.host: " + new_resolved.message());
    if (config_.new_store->sslmode != config::SslMode::Disable) {
      auto tls = TlsClientContext::load(*config_.new_store);
      if (!tls.isOk()) return tls.status();
      context_.new_store_tls = std::move(tls.value());
    }
  }
  auto flag_store = flags::FlagStore::open(config_.flags);
  if (!flag_store.isOk()) return flag_store.status();
  metrics::global().flagStoreUp().Set(1);   // the state file; the fleet store sets its own
  flag_store_ = std::move(flag_store.value());
  if (config_.flags.store == config::FlagStoreKind::Postgres) {
    Status fleet = openFleetFlagStore();
    if (!fleet) return fleet;
  }
  context_.flags = flag_store_->current();
  {
    const flags::FlagSnapshot& f = *context_.flags;
    if (auto refusal = config::checkFlagsSupported({f.writes, f.mirror, f.reads_new_percent, f.shadow_percent, &f.tables},
                                                   config_.new_store.has_value())) {
      return Status::error(fmt::format("flags v{} (state file {}): {}: {}", f.version, config_.flags.state_file,
                                       refusal->key_path, refusal->message));
    }
  }
  if (config_.new_store) {
    // Flags may route to the new store at any time (a flip), so divergences may come at any time.
    auto journal = compare::Journal::open(config_.journal_dir, "divergences.jsonl");
    if (!journal.isOk()) return Status::error("journal_dir: " + journal.status().message());
    journal_ = std::move(journal.value());
    context_.journal = journal_.get();
    auto mismatches = compare::Journal::open(config_.journal_dir, "mismatches.jsonl");
    if (!mismatches.isOk()) return Status::error("journal_dir: " + mismatches.status().message());
    mismatches_ = std::move(mismatches.value());
    context_.mismatches = mismatches_.get();
    Status recovered = recoverAsyncWrites();
    if (!recovered) return recovered;
    rechecker_ = std::make_unique<Rechecker>(config_.old_store, *config_.new_store);
    context_.rechecker = rechecker_.get();
  }
  if (config_.new_store) {
    health_ = std::make_unique<StoreHealth>(config_);
    context_.health = health_.get();
  }
  context_.sequencer = &sequencer_;
  auto& registry = metrics::global();
  registry.flagsVersion().Set(static_cast<double>(context_.flags->version));
  registry.readsNewPercent().Set(context_.flags->reads_new_percent);
  if (config_.auth.query && config_.auth.method != config::AuthMethod::Trust) {
    auth_query_ = std::make_unique<AuthQuery>(*config_.auth.query, config_.old_store);
    context_.auth_query = auth_query_.get();
  }
  Status loaded = loadTlsAndUsers(config_);
  if (!loaded.isOk()) return loaded;

  base_.reset(event_base_new());
  if (!base_) return Status::error("cannot create the main event loop");

  const int worker_count = config_.workers > 0 ? config_.workers : 1;
  context_.worker_count = worker_count;
  for (int i = 0; i < worker_count; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, context_));
    Status started = workers_.back()->start();
    if (!started) return started;
  }

  if (config_.admin.enabled || fleet_ || config_.auto_rollback.enabled) {
    // After the workers exist: flag changes go to every worker.
    ControlPlane::Parts parts;
    parts.config = &config_;
    parts.flag_store = flag_store_.get();
    parts.workers = &workers_;
    parts.health = health_.get();
    parts.live_sessions = [this] { return liveSessions(); };
    parts.sessions_missed_writes = [this] { return context_.sessions_missed_writes.load(std::memory_order_relaxed); };
    parts.lost_at_start_old = context_.lost_at_start_old;
    parts.lost_at_start_new = context_.lost_at_start_new;
    parts.shutting_down = &shutting_down_;
    parts.fleet = fleet_.get();
    if (config_.new_store) {
      // The jobs' results in the control database: /status, job_* metrics, the read-ramp gate.
      jobs_ = std::make_unique<JobWatch>(pgclient::controlFor(config_), kJobPollPeriod, kJobReadDeadline);
      parts.jobs = jobs_.get();
    }
    auto control = ControlPlane::open(std::move(parts));
    if (!control.isOk()) return control.status();
    control_ = std::move(control.value());
    control_ready_.store(control_.get(), std::memory_order_release);
  }
  if (control_) {
    if (config_.auto_rollback.enabled) auto_rollback_ = std::make_unique<flags::AutoRollback>(config_.auto_rollback);
    control_timer_.reset(event_new(base_.get(), -1, EV_PERSIST, &Server::onControlTick, this));
    timeval second{1, 0};
    evtimer_add(control_timer_.get(), &second);
  }
  if (config_.admin.enabled) {
    auto admin = admin::AdminServer::start(config_.admin);
    if (!admin.isOk()) return Status::error("admin: " + admin.status().message());
    admin_ = std::move(admin.value());
    admin_->setMetricsSource([this] {
      metrics::global().clientConnections().Set(client_connections_.load(std::memory_order_relaxed));
      return metrics::global().serialize();
    });
    control_->registerRoutes(*admin_);
  }

  // Last: once the port accepts, the admin API answers too (tests and orchestrators wait on it).
  sockaddr_storage listen_address{};
  socklen_t listen_length = 0;
  Status listen_resolved = resolveAddress(config_.listen.host, config_.listen.port, listen_address, listen_length);
  if (!listen_resolved) return Status::error("listen: " + listen_resolved.message());
  std::string unix_path;
  if (listen_address.ss_family == AF_UNIX) {
    unix_path = reinterpret_cast<const sockaddr_un*>(&listen_address)->sun_path;
    Status claimed = claimUnixSocketPath(unix_path);
    if (!claimed) {
      return Status::error(fmt::format("cannot listen on {}: {}", config_.listen.toString(), claimed.message()));
    }
  }
  listener_.reset(evconnlistener_new_bind(base_.get(), &Server::onAccept, this,
                                          LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
                                          reinterpret_cast<sockaddr*>(&listen_address),
                                          static_cast<int>(listen_length)));
  if (!listener_) {
    return Status::error(fmt::format("cannot listen on {}: {}", config_.listen.toString(),
                                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
  }
  evconnlistener_set_error_cb(listener_.get(), &Server::onAcceptError);
  if (!unix_path.empty()) {
    unix_socket_path_ = unix_path;
    // As PostgreSQL's default unix_socket_permissions: anyone may connect, authentication decides
    // who gets in. The directory's permissions restrict it further where that is wanted.
    if (::chmod(unix_path.c_str(), 0777) != 0) {
      return Status::error(fmt::format("cannot make '{}' accessible: {}", unix_path, std::strerror(errno)));
    }
  }

  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    signal_events_.emplace_back(evsignal_new(base_.get(), sig, &Server::onSignal, this));
    evsignal_add(signal_events_.back().get(), nullptr);
  }

  const std::string listening = unix_socket_path_.empty() ? config_.listen.toString() : unix_socket_path_;
  log::info("cutover {} listening on {} with {} workers; old store {}:{}{}; flags v{} writes {} reads_new_percent {}",
            CUTOVER_VERSION_STRING, listening, worker_count, config_.old_store.host, config_.old_store.port,
            config_.new_store ? fmt::format(", new store {}:{}", config_.new_store->host, config_.new_store->port) : "",
            context_.flags->version, config::toString(context_.flags->writes), context_.flags->reads_new_percent);
  event_base_dispatch(base_.get());

  closeListener();
  admin_.reset();   // first: its handlers reach the workers
  if (fleet_) fleet_->stop();   // and so do the fleet store's callbacks
  for (auto& w : workers_) w->stop();
  // After the worker threads, before the Worker objects: a lookup still in flight posts its
  // answer into a stopped worker's queue, where it is dropped.
  auth_query_.reset();
  workers_.clear();
  control_ready_.store(nullptr);
  control_.reset();
  fleet_.reset();
  health_.reset();
  rechecker_.reset();   // before the journals its callbacks write to
  journal_.reset();     // drains and fsyncs what is queued
  async_wal_.reset();   // after every session: their queues are applied or journaled
  mismatches_.reset();
  log::info("cutover stopped");
  return Status::ok();
}

// mirror: async durability. Writes acknowledged before an unclean stop (kill -9, a crash) that
// the secondary never confirmed are journaled now, before any client is served; the store that
// missed them serves no reads in this process (as a session that missed a write). Then the
// write-ahead record starts afresh.
Status Server::recoverAsyncWrites() {
  auto recovered = compare::AsyncWal::recover(config_.journal_dir);
  if (!recovered.isOk()) return Status::error("journal_dir: " + recovered.status().message());
  const compare::AsyncWal::Recovered& found = recovered.value();
  if (!found.lost.empty()) {
    const std::string found_at = nowRfc3339Ms();
    std::mutex mutex;
    std::condition_variable cv;
    size_t left = found.lost.size();
    bool all_durable = true;
    for (nlohmann::json record : found.lost) {
      const bool missed_old = record.value("secondary_store", "") == "old";
      (missed_old ? context_.lost_at_start_old : context_.lost_at_start_new) += 1;
      record["reason"] = "found at start-up " + found_at + " in the async write-ahead record";
      metrics::global().divergences(metrics::DivergenceKindLabel::UncleanStop).Increment();
      const bool queued = journal_->append(std::move(record), [&](bool durable) {
        std::lock_guard lock(mutex);
        all_durable = all_durable && durable;
        --left;
        cv.notify_one();
      });
      if (!queued) {
        std::lock_guard lock(mutex);
        all_durable = false;
        --left;
      }
    }
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return left == 0; });
    if (!all_durable) {
      return Status::error(fmt::format(
          "{} acknowledged async writes were lost at the last unclean stop, and writing them to {} failed; the "
          "write-ahead record in {} is kept: free the disk and start again",
          found.lost.size(), journal_->path(), config_.journal_dir));
    }
    log::error("the last stop was unclean: {} acknowledged async writes were never confirmed applied ({} on new, {} "
               "on old); each is in {} as unclean_stop. That store serves no reads in this process: run cutover verify "
               "to see the rows that differ, mend them, then restart cutover",
               found.lost.size(), context_.lost_at_start_new, context_.lost_at_start_old, journal_->path());
  } else if (found.segments > 0) {
    log::info("async write-ahead record: every acknowledged write of the last run was applied ({} records)",
              found.intents);
  }
  if (Status removed = compare::AsyncWal::removeSegments(config_.journal_dir); !removed) {
    return Status::error("journal_dir: " + removed.message());
  }
  auto wal = compare::AsyncWal::open(config_.journal_dir);
  if (!wal.isOk()) return Status::error("journal_dir: " + wal.status().message());
  async_wal_ = std::move(wal.value());
  context_.async_wal = async_wal_.get();
  return Status::ok();
}

// flags.store: postgres. The fleet's snapshot wins over the state file when it is newer; the
// first instance seeds an empty table with its own flags. An unreachable control database is not
// fatal: the instance starts with its state file and follows the fleet once it is back.
Status Server::openFleetFlagStore() {
  const config::ControlConfig& control = *config_.flags.control;   // set with store: postgres
  auto fleet = flags::PgFlagStore::open(control, [this](flags::FlagSnapshot remote) {
    // The fleet store's thread. Before the control plane exists the start-up load below covers it.
    if (ControlPlane* control = control_ready_.load(std::memory_order_acquire)) control->adoptRemote(std::move(remote));
  });
  if (!fleet.isOk()) return Status::error("flags.control: " + fleet.status().message());
  fleet_ = std::move(fleet.value());
  auto loaded = fleet_->load();
  const flags::FlagSnapshotPtr local = flag_store_->current();
  if (loaded.isOk()) {
    if (loaded->version > local->version) {
      const uint64_t version = loaded->version;
      auto adopted = flag_store_->adopt(std::move(loaded.value()));
      if (!adopted.isOk()) return Status::error("flags from the fleet flag store: " + adopted.status().message());
      log::info("flags v{} from the fleet flag store ({}:{} table {}) replace the local v{}", version, control.host,
                control.port, control.table, local->version);
    } else if (loaded->version < local->version) {
      log::warn("the local flags v{} are newer than the fleet flag store's v{} (changed while the control database was "
                "unreachable?); other instances do not have them: PUT /flags again to share them",
                local->version, loaded->version);
    }
  } else if (loaded.status().message().find("no flags published yet") != std::string::npos) {
    flags::FlagSnapshot seed = *local;
    auto stored = fleet_->publish(seed, local->version - 1);   // stored as version local->version
    if (stored.isOk()) {
      log::info("the fleet flag store ({}:{} table {}) starts with this instance's flags v{}", control.host,
                control.port, control.table, stored->version);
    } else {
      log::warn("could not seed the fleet flag store: {}", stored.status().message());
    }
  } else {
    log::warn("the fleet flag store ({}:{} table {}) cannot be read: {}; starting with flags v{} from {}", control.host,
              control.port, control.table, loaded.status().message(), local->version, config_.flags.state_file);
  }
  return Status::ok();
}

namespace {

// Whether a rollback would change anything auto-rollback may undo: reads on new, or authority on
// new while old is still mirrored. (From writes: new, rollback needs an operator's force.)
bool rollbackWouldChange(const flags::FlagSnapshot& f) {
  if (f.writes == config::WritesMode::New) return false;
  if (f.reads_new_percent > 0 || f.writes == config::WritesMode::DualNew) return true;
  for (const auto& [name, table] : f.tables) {
    if (table.reads_new_percent.value_or(0) > 0 || table.writes.value_or(config::WritesMode::Old) == config::WritesMode::DualNew) {
      return true;
    }
  }
  return false;
}

}  // namespace

// Once a second on the main thread: the fleet store catches up with a local rollback, and
// auto_rollback's window over the store figures.
void Server::onControlTick(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (self->shutting_down_ || !self->control_) return;
  self->control_->reconcileFleet();
  if (!self->auto_rollback_) return;
  if (!rollbackWouldChange(*self->flag_store_->current())) return self->auto_rollback_->reset();
  auto& registry = metrics::global();
  flags::HealthSample sample;
  sample.at = std::chrono::steady_clock::now();
  sample.new_errors = static_cast<uint64_t>(registry.storeErrors(metrics::StoreLabel::New).Value());
  sample.old_latency = registry.statementDurationTotal(metrics::StoreLabel::Old);
  sample.new_latency = registry.statementDurationTotal(metrics::StoreLabel::New);
  sample.new_statements = sample.new_latency.count;
  sample.mismatches = static_cast<uint64_t>(registry.shadowComparisons(metrics::ShadowResult::Mismatch).Value());
  for (auto result : {metrics::ShadowResult::Match, metrics::ShadowResult::Mismatch, metrics::ShadowResult::Transient,
                      metrics::ShadowResult::Error}) {
    sample.comparisons += static_cast<uint64_t>(registry.shadowComparisons(result).Value());
  }
  auto breach = self->auto_rollback_->observe(sample);
  if (!breach) return;
  self->auto_rollback_->reset();
  log::error("auto-rollback: {}: rolling back (reads to old, authority to old)", breach->describe());
  auto outcome = self->control_->rollback(true, "auto-rollback", breach->describe(), false);
  if (outcome.refusal != ControlPlane::Refusal::None) {
    log::error("auto-rollback could not roll back: {}", outcome.error);
    return;
  }
  log::warn("auto-rollback done: flags v{} route every read to old; there is no automatic re-ramp: fix the cause, "
            "then ramp again (cutover ctl set reads_new_percent=N)",
            outcome.applied.flags->version);
}

void Server::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
  auto* self = static_cast<Server*>(arg);
  Worker& worker = *self->workers_[self->next_worker_++ % self->workers_.size()];
  worker.post([&worker, fd] { worker.adoptClient(fd); });
}

void Server::onAcceptError(evconnlistener*, void*) {
  // EMFILE/ENFILE and friends: keep serving existing sessions; the kernel queues new ones.
  log::error("accepting a client connection failed: {}", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void Server::onSignal(evutil_socket_t signal, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  if (signal == SIGHUP) return self->reload();
  if (self->shutting_down_) {
    log::warn("second signal {}: closing every session now", static_cast<int>(signal));
    self->forced_ = true;
    for (auto& w : self->workers_) {
      Worker* worker = w.get();
      worker->post([worker] { worker->closeAllSessions("cutover is stopping"); });
    }
    return;
  }
  log::info("signal {}: no longer accepting connections; waiting up to {} ms for sessions to finish",
            static_cast<int>(signal), self->context_.config().shutdown_timeout_ms);
  self->beginShutdown();
}

void Server::beginShutdown() {
  shutting_down_ = true;
  shutdown_started_ = std::chrono::steady_clock::now();
  closeListener();   // new connections are refused
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->post([worker] { worker->beginDrain(); });
  }
  shutdown_timer_.reset(event_new(base_.get(), -1, EV_PERSIST, &Server::onShutdownTick, this));
  timeval tick{0, 20 * 1000};
  evtimer_add(shutdown_timer_.get(), &tick);
}

void Server::closeListener() {
  listener_.reset();
  if (unix_socket_path_.empty()) return;
  // As PostgreSQL: a stopped server leaves no socket file behind (clients then read "No such
  // file or directory", the usual sign that nothing listens there).
  if (::unlink(unix_socket_path_.c_str()) != 0 && errno != ENOENT) {
    log::warn("could not remove the socket file {}: {}", unix_socket_path_, std::strerror(errno));
  }
  unix_socket_path_.clear();
}

int Server::liveSessions() const {
  int total = 0;
  for (const auto& w : workers_) total += w->sessionCount();
  return total;
}

void Server::onShutdownTick(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  const int live = self->liveSessions();
  if (live == 0) {
    event_base_loopexit(self->base_.get(), nullptr);
    return;
  }
  const auto waited = std::chrono::steady_clock::now() - self->shutdown_started_;
  if (!self->forced_ && waited > std::chrono::milliseconds(self->context_.config().shutdown_timeout_ms)) {
    log::warn("shutdown timeout ({} ms) reached with {} sessions still busy; closing them",
              self->context_.config().shutdown_timeout_ms, live);
    self->forced_ = true;
    for (auto& w : self->workers_) {
      Worker* worker = w.get();
      worker->post([worker] { worker->closeAllSessions("cutover shutdown timeout reached"); });
    }
  }
}

}  // namespace cutover::proxy
