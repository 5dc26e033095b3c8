#include "flags/pg_flag_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <system_error>

#include <fmt/format.h>

#include "common/log.h"
#include "common/metrics.h"
#include "pgclient/connection.h"

namespace cutover::flags {

namespace {

using std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kConnectTimeout = 5s;
constexpr auto kStatementsTimeout = 5s;  // for all statements of one load/publish/sync
constexpr auto kResyncInterval = 5s;     // safety net for a notification missed in a reconnect
constexpr auto kBackoffMin = 500ms;
constexpr auto kBackoffMax = 10s;
constexpr const char* kApplicationName = "cutover-flag-store";

using ControlConnection = pgclient::Connection;
using PgReply = pgclient::Reply;
using pgclient::Deadline;

std::string describe(const config::ControlConfig& control) {
  return fmt::format("{}:{}/{}", control.host, control.port, control.database);
}

// Every session of the flag store: server-side bounds (a statement or a row lock that takes
// longer fails on the server too — the client's deadline alone would leave a lock waiter behind —
// and a transaction left open by a vanished client is ended), and TCP keepalives so a vanished
// control database is noticed by the listening connection.
pgclient::ConnectParams controlParams(const config::ControlConfig& control) {
  pgclient::ConnectParams params = pgclient::paramsFor(control, kApplicationName);
  params.setting("statement_timeout", "5000")
      .setting("lock_timeout", "5000")
      .setting("idle_in_transaction_session_timeout", "10000");
  params.set("keepalives", "1").set("keepalives_idle", "5").set("keepalives_interval", "2");
  params.set("keepalives_count", "3").set("tcp_user_timeout", "10000");
  return params;
}

Result<ControlConnection> connectTo(const config::ControlConfig& control, Deadline deadline,
                                    int interrupt_fd = -1) {
  return ControlConnection::connect(controlParams(control), deadline, interrupt_fd);
}

// PostgreSQL error codes the store reacts to.
constexpr std::string_view kUndefinedTable = "42P01";
constexpr std::string_view kDuplicateTable = "42P07";
constexpr std::string_view kUniqueViolation = "23505";  // two CREATE TABLE racing on pg_type

struct StoredRow {
  uint64_t version = 0;
  std::string snapshot_text;
};

// The row (nullopt when there is none) or the failed statement's reply.
struct RowRead {
  PgReply reply;
  std::optional<StoredRow> row;
};

std::string quotedTable(const ControlConnection& conn, const std::string& table) {
  return conn.quoteIdentifier(table);
}

std::optional<uint64_t> parseVersion(const char* text) {
  uint64_t value = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

RowRead readRow(ControlConnection& conn, const std::string& table, Deadline deadline,
                int interrupt_fd = -1) {
  RowRead read;
  read.reply = conn.exec(
      fmt::format("SELECT version, snapshot::text FROM {} WHERE id = 1", quotedTable(conn, table)),
      {}, deadline, interrupt_fd);
  if (!read.reply.ok()) return read;
  PGresult* result = read.reply.result.get();
  if (PQntuples(result) == 0) return read;
  auto version = parseVersion(PQgetvalue(result, 0, 0));
  if (!version) {
    read.reply.error = fmt::format("version '{}' is not a number", PQgetvalue(result, 0, 0));
    return read;
  }
  read.row = StoredRow{*version, PQgetvalue(result, 0, 1)};
  return read;
}

// The row as a snapshot; errors say what is wrong with it.
Result<FlagSnapshot> parseRow(const StoredRow& row, const std::string& table) {
  auto refuse = [&](std::string_view why) {
    return Status::error(
        fmt::format("row v{} of {} is not a valid flag snapshot: {}", row.version, table, why));
  };
  const nlohmann::json json = nlohmann::json::parse(row.snapshot_text, nullptr, false);
  if (json.is_discarded()) return refuse("not JSON");
  auto snapshot = fromJson(json);
  if (!snapshot) return refuse(snapshot.status().message());
  if (snapshot->version != row.version) {
    return refuse(fmt::format("its snapshot says version {}", snapshot->version));
  }
  if (Status valid = validate(*snapshot); !valid) return refuse(valid.message());
  return snapshot;
}

// Creates the table unless it exists (checked first: CREATE ... IF NOT EXISTS needs the CREATE
// privilege even when the table is there).
Status ensureTable(ControlConnection& conn, const std::string& table, Deadline deadline,
                   int interrupt_fd = -1) {
  const std::string quoted = quotedTable(conn, table);
  PgReply exists = conn.exec("SELECT to_regclass($1) IS NOT NULL", {quoted}, deadline,
                             interrupt_fd);
  if (!exists.ok()) return Status::error(fmt::format("cannot look for {}: {}", table, exists.error));
  if (std::string_view(PQgetvalue(exists.result.get(), 0, 0)) == "t") return Status::ok();
  PgReply created = conn.exec(
      fmt::format("CREATE TABLE IF NOT EXISTS {} (id int PRIMARY KEY CHECK (id = 1), "
                  "version bigint NOT NULL, snapshot jsonb NOT NULL, "
                  "updated_at timestamptz NOT NULL DEFAULT now())",
                  quoted),
      {}, deadline, interrupt_fd);
  if (created.ok() || created.sqlstate == kDuplicateTable ||
      created.sqlstate == kUniqueViolation) {
    return Status::ok();
  }
  return Status::error(fmt::format("cannot create {}: {}", table, created.error));
}

void setUpGauge(bool up) { metrics::global().flagStoreUp().Set(up ? 1 : 0); }

}  // namespace

// ---- lifetime ----

PgFlagStore::PgFlagStore(const config::ControlConfig& control, RemoteChange on_remote_change,
                         int wake_fd)
    : control_(control), on_remote_change_(std::move(on_remote_change)), wake_fd_(wake_fd) {}

Result<std::unique_ptr<PgFlagStore>> PgFlagStore::open(const config::ControlConfig& control,
                                                       RemoteChange on_remote_change) {
  if (control.table.empty()) return Status::error("flags.control.table is empty");
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return Status::error(fmt::format("fleet flag store: eventfd: {}", std::strerror(errno)));
  }
  std::unique_ptr<PgFlagStore> store(new PgFlagStore(control, std::move(on_remote_change), wake_fd));
  setUpGauge(false);
  try {
    store->thread_ = std::thread([s = store.get()] { s->run(); });
  } catch (const std::system_error& e) {
    return Status::error(fmt::format("fleet flag store: cannot start its thread: {}", e.what()));
  }
  return store;
}

PgFlagStore::~PgFlagStore() {
  stop();
  ::close(wake_fd_);
}

void PgFlagStore::stop() {
  std::lock_guard lock(stop_mutex_);
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
}

PgFlagStoreHealth PgFlagStore::health() const {
  std::lock_guard lock(mutex_);
  return health_;
}

// ---- load and publish (callers' threads, short-lived connections) ----

Result<FlagSnapshot> PgFlagStore::load() {
  const std::string where = describe(control_);
  auto conn = connectTo(control_, steady_clock::now() + kConnectTimeout);
  if (!conn) {
    return Status::error(fmt::format("fleet flag store unreachable: {}", conn.status().message()));
  }
  RowRead read = readRow(*conn, control_.table, steady_clock::now() + kStatementsTimeout);
  if (!read.reply.ok()) {
    if (read.reply.sqlstate == kUndefinedTable) {
      return Status::error(fmt::format(
          "no flags published yet: table {} does not exist in {}", control_.table, where));
    }
    return Status::error(
        fmt::format("cannot read {} in {}: {}", control_.table, where, read.reply.error));
  }
  if (!read.row) {
    return Status::error(
        fmt::format("no flags published yet: table {} in {} has no row", control_.table, where));
  }
  auto snapshot = parseRow(*read.row, control_.table);
  if (!snapshot) return snapshot.status();
  std::lock_guard lock(mutex_);
  health_.last_version = std::max(health_.last_version, snapshot->version);
  health_.last_sync_at = nowRfc3339();
  return snapshot;
}

Result<FlagSnapshot> PgFlagStore::publish(const FlagSnapshot& next, uint64_t expected_version) {
  std::lock_guard publishing(publish_mutex_);
  FlagSnapshot stored = next;
  stored.version = expected_version + 1;
  auto refused = [&](std::string_view why) {
    return Status::error(fmt::format("flags v{} not published to the fleet flag store: {}",
                                     stored.version, why));
  };
  if (Status valid = validate(stored); !valid) return refused(valid.message());
  const std::string text =
      toJson(stored).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

  auto conn = connectTo(control_, steady_clock::now() + kConnectTimeout);
  if (!conn) return refused(conn.status().message());
  const Deadline deadline = steady_clock::now() + kStatementsTimeout;
  if (Status table = ensureTable(*conn, control_.table, deadline); !table) {
    return refused(table.message());
  }
  const std::string quoted = quotedTable(*conn, control_.table);
  auto exec = [&](const std::string& sql, const std::vector<std::string>& params) {
    return conn->exec(sql, params, deadline);
  };
  // Another instance's version: the compare-and-set failed.
  auto conflict = [&](const std::string& found) {
    return refused(fmt::format("another instance published version {} first (this change was "
                               "based on version {}); reload the flags and retry",
                               found, expected_version));
  };
  // The connection is dropped on every early return, which rolls the transaction back.
  if (PgReply begin = exec("BEGIN", {}); !begin.ok()) return refused(begin.error);
  PgReply current = exec(fmt::format("SELECT version FROM {} WHERE id = 1 FOR UPDATE", quoted), {});
  if (!current.ok()) return refused(current.error);
  if (PQntuples(current.result.get()) == 1) {
    const std::string found = PQgetvalue(current.result.get(), 0, 0);
    if (parseVersion(found.c_str()) != expected_version) return conflict(found);
  }
  const std::string version = std::to_string(stored.version);
  PgReply written = exec(
      fmt::format("INSERT INTO {} AS t (id, version, snapshot) VALUES (1, $1, $2::jsonb) "
                  "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, "
                  "snapshot = EXCLUDED.snapshot, updated_at = now() WHERE t.version = $3",
                  quoted),
      {version, text, std::to_string(expected_version)});
  if (!written.ok()) return refused(written.error);
  if (std::string_view(PQcmdTuples(written.result.get())) != "1") {
    // No row at the SELECT, but another instance inserted its first one meanwhile.
    PgReply found = exec(fmt::format("SELECT version FROM {} WHERE id = 1", quoted), {});
    return conflict(found.ok() && PQntuples(found.result.get()) == 1
                        ? PQgetvalue(found.result.get(), 0, 0)
                        : "?");
  }
  if (PgReply notified = exec("SELECT pg_notify($1, $2)", {control_.table, version});
      !notified.ok()) {
    return refused(notified.error);
  }
  {
    std::lock_guard lock(mutex_);
    own_publish_in_flight_ = stored.version;
  }
  PgReply committed = exec("COMMIT", {});
  std::lock_guard lock(mutex_);
  own_publish_in_flight_ = 0;
  if (!committed.ok()) {
    return refused(fmt::format("COMMIT failed, the outcome is unknown (load() tells): {}",
                               committed.error));
  }
  health_.last_version = std::max(health_.last_version, stored.version);
  return stored;
}

// ---- the background thread ----

void PgFlagStore::run() {
  ControlConnection conn;
  auto backoff = steady_clock::duration(kBackoffMin);
  auto next_sync = steady_clock::now();
  for (;;) {
    if (!conn.isOpen()) {
      Status up = connectAndListen(conn);
      if (!up) {
        conn.close();
        if (stopRequested()) break;  // interrupted by stop(): not an outage
        noteDown(up.message());
        pollfd wake{wake_fd_, POLLIN, 0};
        const int ms = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count());
        if (::poll(&wake, 1, ms) > 0) break;
        backoff = std::min<steady_clock::duration>(backoff * 2, kBackoffMax);
        continue;
      }
      backoff = kBackoffMin;
      noteUp();
      next_sync = steady_clock::now();  // catch up with what was published meanwhile
    }
    if (steady_clock::now() >= next_sync) {
      sync(conn);
      next_sync = steady_clock::now() + kResyncInterval;
      if (!conn.isOpen()) continue;
      // A NOTIFY that arrived with the SELECT's answer is already read: poll() won't see it.
      if (conn.takeNotifications() > 0) next_sync = steady_clock::now();
    }
    pollfd fds[2] = {{conn.socket(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(next_sync - steady_clock::now());
    const int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, left.count())));
    if (n < 0 && errno != EINTR) {
      log::error("fleet flag store: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[1].revents != 0) break;
    if (n > 0 && fds[0].revents != 0) {
      auto notified = conn.consumeNotifications();
      if (!notified) {
        noteDown(notified.status().message());
        continue;
      }
      if (*notified > 0) next_sync = steady_clock::now();
    }
  }
  conn.close();
  setUpGauge(false);
  std::lock_guard lock(mutex_);
  health_.connected = false;
}

Status PgFlagStore::connectAndListen(ControlConnection& conn) {
  auto connected = connectTo(control_, steady_clock::now() + kConnectTimeout, wake_fd_);
  if (!connected) return connected.status();
  conn = std::move(*connected);
  const Deadline deadline = steady_clock::now() + kStatementsTimeout;
  if (Status table = ensureTable(conn, control_.table, deadline, wake_fd_); !table) return table;
  PgReply listening = conn.exec(fmt::format("LISTEN {}", quotedTable(conn, control_.table)), {},
                                deadline, wake_fd_);
  if (!listening.ok()) return Status::error(fmt::format("LISTEN failed: {}", listening.error));
  return Status::ok();
}

void PgFlagStore::sync(ControlConnection& conn) {
  RowRead read = readRow(conn, control_.table, steady_clock::now() + kStatementsTimeout, wake_fd_);
  if (!read.reply.ok()) {
    if (!conn.isOpen()) {
      noteDown(read.reply.error);
      return;
    }
    // Connected but the statement failed (table dropped, privileges revoked): report, go on.
    const std::string problem = fmt::format("cannot read {}: {}", control_.table, read.reply.error);
    if (problem != problem_logged_) log::warn("fleet flag store: {}", problem);
    problem_logged_ = problem;
    std::lock_guard lock(mutex_);
    health_.last_error = problem;
    return;
  }
  uint64_t known = 0;
  {
    std::lock_guard lock(mutex_);
    health_.last_sync_at = nowRfc3339();
    if (!read.row || read.row->version <= health_.last_version) return;
    if (read.row->version == own_publish_in_flight_) {
      health_.last_version = read.row->version;  // this instance's publish, still committing
      return;
    }
    known = health_.last_version;
  }
  auto snapshot = parseRow(*read.row, control_.table);
  if (!snapshot) {
    const std::string& problem = snapshot.status().message();
    if (problem != problem_logged_) {
      log::error("fleet flag store: ignoring {}; keeping flags v{}", problem, known);
    }
    problem_logged_ = problem;
    std::lock_guard lock(mutex_);
    health_.last_error = problem;
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (snapshot->version <= health_.last_version) return;  // load() got it meanwhile
    health_.last_version = snapshot->version;
    health_.last_error.clear();
  }
  problem_logged_.clear();
  log::info("fleet flag store: flags v{} from {} (published by {})", snapshot->version,
            control_.table, snapshot->changed_by);
  if (on_remote_change_) on_remote_change_(std::move(*snapshot));
}

bool PgFlagStore::stopRequested() const {
  pollfd wake{wake_fd_, POLLIN, 0};
  return ::poll(&wake, 1, 0) > 0;
}

void PgFlagStore::noteDown(const std::string& error) {
  if (stopRequested()) return;  // the connection was given up by stop(), not lost
  setUpGauge(false);
  uint64_t version = 0;
  {
    std::lock_guard lock(mutex_);
    health_.connected = false;
    health_.last_error = error;
    version = health_.last_version;
  }
  if (outage_logged_) {
    log::debug("fleet flag store: still cannot reach {}: {}", describe(control_), error);
    return;
  }
  outage_logged_ = true;
  down_since_ = steady_clock::now();
  log::warn("fleet flag store: control database {} unreachable ({}); keeping {}, "
            "reconnecting with backoff up to {} s",
            describe(control_), error,
            version == 0 ? std::string("this instance's flags") : fmt::format("flags v{}", version),
            std::chrono::duration_cast<std::chrono::seconds>(kBackoffMax).count());
}

void PgFlagStore::noteUp() {
  setUpGauge(true);
  {
    std::lock_guard lock(mutex_);
    health_.connected = true;
    health_.last_error.clear();
  }
  problem_logged_.clear();
  if (outage_logged_) {
    const double seconds = std::chrono::duration<double>(steady_clock::now() - down_since_).count();
    log::info("fleet flag store: connected to {} again after {:.1f} s; catching up",
              describe(control_), seconds);
  } else {
    log::info("fleet flag store: listening on {} (table {})", describe(control_), control_.table);
  }
  outage_logged_ = false;
}

}  // namespace cutover::flags
