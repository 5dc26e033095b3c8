// PgFlagStore against a real PostgreSQL. The live tests need a control database:
//   CUTOVER_TEST_CONTROL_DB     libpq conninfo, e.g. "host=127.0.0.1 port=5432 user=postgres"
//   CUTOVER_TEST_CONTROL_STOP   shell command stopping that server  (outage test only)
//   CUTOVER_TEST_CONTROL_START  shell command starting it again     (outage test only)
// tests/integration/test_flag_store_pg.py starts a throwaway cluster and sets all three; without
// them the live tests skip, so plain unit runs stay green. The offline test always runs.

#include "flags/pg_flag_store.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "common/metrics.h"
#include "common/unique_handle.h"
#include "pgclient/handles.h"

namespace cutover::flags {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using pgclient::PgConnPtr;
using pgclient::PgResultPtr;

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

template <typename Pred>
bool waitUntil(Pred pred, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// The value of an unlabelled sample in the process's /metrics text, or -1.
double gauge(const std::string& name) {
  const std::string text = metrics::global().serialize();
  const std::string prefix = "\n" + name + " ";
  auto at = text.find(prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + prefix.size()));
}

// Every snapshot a store delivered, with when it arrived.
class Recorder {
 public:
  PgFlagStore::RemoteChange callback() {
    return [this](FlagSnapshot snapshot) {
      std::lock_guard lock(mutex_);
      received_.push_back({std::move(snapshot), Clock::now()});
      changed_.notify_all();
    };
  }
  // When `version` arrived, or nullopt after `timeout`.
  std::optional<Clock::time_point> waitFor(uint64_t version, Clock::duration timeout) {
    std::unique_lock lock(mutex_);
    std::optional<Clock::time_point> at;
    changed_.wait_for(lock, timeout, [&] {
      for (const auto& r : received_) {
        if (r.snapshot.version == version) at = r.at;
      }
      return at.has_value();
    });
    return at;
  }
  std::vector<uint64_t> versions() {
    std::lock_guard lock(mutex_);
    std::vector<uint64_t> out;
    for (const auto& r : received_) out.push_back(r.snapshot.version);
    return out;
  }
  FlagSnapshot last() {
    std::lock_guard lock(mutex_);
    return received_.back().snapshot;
  }

 private:
  struct Received {
    FlagSnapshot snapshot;
    Clock::time_point at;
  };
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Received> received_;
};

FlagSnapshot sample(int reads_new_percent, std::string reason) {
  FlagSnapshot s;
  s.writes = config::WritesMode::Dual;
  s.reads_new_percent = reads_new_percent;
  s.changed_at = nowRfc3339();
  s.changed_by = "pg_flag_store_test";
  s.reason = std::move(reason);
  return s;
}

// ---- offline ----

// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(PgFlagStoreOffline, UnreachableControlDatabaseIsReportedNotFatal) {
  config::ControlConfig control;
  control.host = "127.0.0.1";
  control.port = closedPort();
  control.sslmode = config::SslMode::Disable;
  Recorder recorder;
  auto store = PgFlagStore::open(control, recorder.callback());
  ASSERT_TRUE(store) << store.status().message();
  const std::string where = fmt::format("127.0.0.1:{}/postgres", control.port);
  ASSERT_TRUE(waitUntil([&] { return !(*store)->health().last_error.empty(); }, 5s));
  PgFlagStoreHealth health = (*store)->health();
  EXPECT_FALSE(health.connected);
  EXPECT_NE(health.last_error.find("cannot connect to " + where), std::string::npos)
      << health.last_error;
  EXPECT_EQ(health.last_version, 0u);
  EXPECT_EQ(gauge("cutover_flag_store_up"), 0);

  auto loaded = (*store)->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().message().rfind("fleet flag store unreachable: cannot connect to " +
                                                where + ": ",
                                            0),
            0u)
      << loaded.status().message();
  auto published = (*store)->publish(sample(10, "offline"), 1);
  ASSERT_FALSE(published);
  EXPECT_EQ(published.status().message().rfind(
                "flags v2 not published to the fleet flag store: cannot connect to " + where, 0),
            0u)
      << published.status().message();

  // Stopping while the thread sits in its reconnect backoff is prompt.
  std::this_thread::sleep_for(700ms);
  const auto t0 = Clock::now();
  store->reset();
  EXPECT_LT(ms(Clock::now() - t0), 1000);
  EXPECT_TRUE(recorder.versions().empty());
}

TEST(PgFlagStoreOffline, EmptyTableNameAndInvalidSnapshotAreRefused) {
  config::ControlConfig control;
  control.table = "";
  auto store = PgFlagStore::open(control, nullptr);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.status().message(), "flags.control.table is empty");

  control.table = "t";
  control.port = closedPort();
  auto ok = PgFlagStore::open(control, nullptr);
  ASSERT_TRUE(ok);
  FlagSnapshot bad = sample(150, "too much");
  auto published = (*ok)->publish(bad, 3);
  ASSERT_FALSE(published);
  EXPECT_EQ(published.status().message().rfind(
                "flags v4 not published to the fleet flag store: invalid flags: reads_new_percent", 0),
            0u)
      << published.status().message();
}

// ---- live ----

class PgFlagStoreLive : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* conninfo = env("CUTOVER_TEST_CONTROL_DB");
    if (conninfo == nullptr) {
      GTEST_SKIP() << "CUTOVER_TEST_CONTROL_DB is not set: no control database to test against "
                      "(tests/integration/test_flag_store_pg.py runs these tests on a real one)";
    }
    conninfo_ = conninfo;
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(conninfo, &error);
    ASSERT_NE(options, nullptr) << (error ? error : "bad conninfo");
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      const std::string key = o->keyword, val = o->val;
      if (key == "host") control_.host = val;
      if (key == "port") control_.port = static_cast<uint16_t>(std::stoi(val));
      if (key == "user") control_.user = val;
      if (key == "dbname") control_.database = val;
      if (key == "password") control_.password = val;
    }
    PQconninfoFree(options);
    control_.sslmode = config::SslMode::Disable;
    // A name that needs quoting, so every statement must use the escaped identifier.
    control_.table = std::string("Fleet \"flags\" ") +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name();
    control_.table.resize(std::min<size_t>(control_.table.size(), 63));
    sql(fmt::format("DROP TABLE IF EXISTS {}", quoted()));
  }

  // A plain libpq connection behind the stores' backs ("a third instance", or an operator).
  PgResultPtr sql(const std::string& statement, const std::vector<std::string>& params = {}) {
    PgConnPtr conn(PQconnectdb(conninfo_.c_str()));
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PgResultPtr result(PQexecParams(conn.get(), statement.c_str(), static_cast<int>(values.size()),
                                    nullptr, values.data(), nullptr, nullptr, 0));
    const auto status = PQresultStatus(result.get());
    EXPECT_TRUE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        << statement << ": " << PQresultErrorMessage(result.get());
    return result;
  }

  std::string quoted() const {
    std::string out = "\"";
    for (char c : control_.table) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
  }

  std::unique_ptr<PgFlagStore> open(Recorder& recorder) {
    auto store = PgFlagStore::open(control_, recorder.callback());
    EXPECT_TRUE(store) << store.status().message();
    if (!store) return nullptr;
    EXPECT_TRUE(waitUntil([&] { return (*store)->health().connected; }, 10s))
        << (*store)->health().last_error;
    return std::move(*store);
  }

  // Publishes through `store` and expects success.
  FlagSnapshot publish(PgFlagStore& store, const FlagSnapshot& next, uint64_t expected) {
    auto published = store.publish(next, expected);
    EXPECT_TRUE(published) << published.status().message();
    return published ? *published : FlagSnapshot{};
  }

  std::string conninfo_;
  config::ControlConfig control_;
};

TEST_F(PgFlagStoreLive, CreatesTheTableOnFirstOpen) {
  auto exists = [&] {
    return std::string(PQgetvalue(sql("SELECT to_regclass($1) IS NOT NULL", {quoted()}).get(), 0, 0));
  };
  ASSERT_EQ(exists(), "f");
  Recorder recorder;
  auto store = open(recorder);
  ASSERT_TRUE(store);
  EXPECT_EQ(exists(), "t");
  EXPECT_EQ(gauge("cutover_flag_store_up"), 1);
  auto loaded = store->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().message(),
            fmt::format("no flags published yet: table {} in {}:{}/{} has no row", control_.table,
                        control_.host, control_.port, control_.database));
  PgFlagStoreHealth health = store->health();
  EXPECT_TRUE(health.connected);
  EXPECT_EQ(health.last_error, "");
  EXPECT_EQ(health.last_version, 0u);
  EXPECT_FALSE(health.last_sync_at.empty());
  // The columns the design names.
  PgResultPtr columns = sql(
      "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) "
      "FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0",
      {quoted()});
  EXPECT_STREQ(PQgetvalue(columns.get(), 0, 0),
               "id integer, version bigint, snapshot jsonb, updated_at timestamp with time zone");
}

TEST_F(PgFlagStoreLive, PublishReachesAnotherInstanceWithinOneSecond) {
  Recorder seen_by_a, seen_by_b;
  auto a = open(seen_by_a);
  auto b = open(seen_by_b);
  ASSERT_TRUE(a && b);

  FlagSnapshot v1 = publish(*a, sample(0, "first"), 0);
  EXPECT_EQ(v1.version, 1u);
  ASSERT_TRUE(seen_by_b.waitFor(1, 6s)) << "instance B never saw v1";

  const auto t0 = Clock::now();
  FlagSnapshot v2 = publish(*a, sample(50, "ramp to half"), 1);
  const auto published_at = Clock::now();
  ASSERT_EQ(v2.version, 2u);
  auto arrived = seen_by_b.waitFor(2, 5s);
  ASSERT_TRUE(arrived) << "instance B never saw v2";
  const double latency = ms(*arrived - t0);
  std::printf("FLAG_STORE_NOTIFY_LATENCY_MS %.1f (publish call %.1f ms, NOTIFY to callback %.1f ms)\n",
              latency, ms(published_at - t0), ms(*arrived - published_at));
  EXPECT_LT(latency, 1000) << "a flip must reach the other instances within 1 s";

  FlagSnapshot got = seen_by_b.last();
  EXPECT_EQ(got.version, 2u);
  EXPECT_EQ(got.reads_new_percent, 50);
  EXPECT_EQ(got.writes, config::WritesMode::Dual);
  EXPECT_EQ(got.changed_by, "pg_flag_store_test");
  EXPECT_EQ(got.reason, "ramp to half");
  EXPECT_EQ(toJson(got), toJson(v2));
  // An instance is not told about its own publishes.
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(seen_by_a.versions().empty());
  EXPECT_EQ(seen_by_b.versions(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(a->health().last_version, 2u);
  EXPECT_EQ(b->health().last_version, 2u);

  // What load() returns at start-up, and the row itself.
  auto loaded = b->load();
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(toJson(*loaded), toJson(v2));
  PgResultPtr row = sql(fmt::format("SELECT version, snapshot->>'reads_new_percent' FROM {}", quoted()));
  EXPECT_STREQ(PQgetvalue(row.get(), 0, 0), "2");
  EXPECT_STREQ(PQgetvalue(row.get(), 0, 1), "50");
}

TEST_F(PgFlagStoreLive, StaleExpectedVersionIsRefused) {
  Recorder seen_by_a, seen_by_b;
  auto a = open(seen_by_a);
  auto b = open(seen_by_b);
  ASSERT_TRUE(a && b);
  publish(*a, sample(0, "v1"), 0);
  publish(*a, sample(10, "v2"), 1);
  ASSERT_TRUE(seen_by_b.waitFor(2, 6s));

  auto stale = b->publish(sample(99, "based on v1"), 1);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.status().message(),
            "flags v2 not published to the fleet flag store: another instance published version 2 "
            "first (this change was based on version 1); reload the flags and retry");
  auto loaded = a->load();
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->version, 2u);
  EXPECT_EQ(loaded->reads_new_percent, 10);

  // Retrying on the current version works, and the other instance hears of it.
  FlagSnapshot v3 = publish(*b, sample(99, "based on v2"), 2);
  EXPECT_EQ(v3.version, 3u);
  ASSERT_TRUE(seen_by_a.waitFor(3, 5s));
  EXPECT_EQ(seen_by_a.last().reads_new_percent, 99);
}

TEST_F(PgFlagStoreLive, CorruptRowIsIgnoredAndTheLastGoodSnapshotKept) {
  Recorder seen_by_a, seen_by_b;
  auto a = open(seen_by_a);
  auto b = open(seen_by_b);
  ASSERT_TRUE(a && b);
  publish(*a, sample(20, "good"), 0);
  ASSERT_TRUE(seen_by_b.waitFor(1, 6s));

  // Behind the stores' backs: version 2 whose snapshot is garbage, announced as usual.
  sql(fmt::format("UPDATE {} SET version = 2, snapshot = '{{\"garbage\": true}}'", quoted()));
  sql("SELECT pg_notify($1, '2')", {control_.table});
  ASSERT_TRUE(waitUntil([&] { return !b->health().last_error.empty(); }, 3s));
  PgFlagStoreHealth health = b->health();
  EXPECT_EQ(health.last_error.rfind(fmt::format("row v2 of {} is not a valid flag snapshot: "
                                                "invalid flags: ",
                                                control_.table),
                                    0),
            0u)
      << health.last_error;
  EXPECT_TRUE(health.connected);
  EXPECT_EQ(health.last_version, 1u);
  auto loaded = b->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().message(), health.last_error);

  // Valid JSON, invalid flags: refused the same way.
  FlagSnapshot out_of_range = sample(150, "too much");
  out_of_range.version = 3;
  sql(fmt::format("UPDATE {} SET version = 3, snapshot = $1::jsonb", quoted()),
      {toJson(out_of_range).dump()});
  sql("SELECT pg_notify($1, '3')", {control_.table});
  ASSERT_TRUE(waitUntil([&] { return b->health().last_error.find("row v3") == 0; }, 3s))
      << b->health().last_error;
  EXPECT_NE(b->health().last_error.find("reads_new_percent"), std::string::npos);
  EXPECT_EQ(seen_by_b.versions(), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(seen_by_a.versions().empty());

  // A valid version published over the bad row is taken again.
  FlagSnapshot v4 = publish(*a, sample(30, "repair"), 3);
  ASSERT_TRUE(seen_by_b.waitFor(4, 5s));
  EXPECT_EQ(seen_by_b.last().reads_new_percent, 30);
  EXPECT_EQ(b->health().last_error, "");
  EXPECT_EQ(b->health().last_version, 4u);
}

TEST_F(PgFlagStoreLive, OutageKeepsTheLastSnapshotThenReconnectsAndCatchesUp) {
  const char* stop_cmd = env("CUTOVER_TEST_CONTROL_STOP");
  const char* start_cmd = env("CUTOVER_TEST_CONTROL_START");
  if (stop_cmd == nullptr || start_cmd == nullptr) {
    GTEST_SKIP() << "CUTOVER_TEST_CONTROL_STOP/START are not set: cannot stop the control database";
  }
  Recorder seen;
  auto store = open(seen);
  ASSERT_TRUE(store);
  publish(*store, sample(40, "before the outage"), 0);
  EXPECT_EQ(gauge("cutover_flag_store_up"), 1);

  ASSERT_EQ(std::system(stop_cmd), 0) << stop_cmd;
  const auto down_at = Clock::now();
  ASSERT_TRUE(waitUntil([&] { return !store->health().connected; }, 10s));
  std::printf("FLAG_STORE_OUTAGE_DETECTED_MS %.1f\n", ms(Clock::now() - down_at));
  PgFlagStoreHealth health = store->health();
  EXPECT_FALSE(health.last_error.empty());
  EXPECT_EQ(health.last_version, 1u);
  EXPECT_EQ(gauge("cutover_flag_store_up"), 0);

  // Neither load nor publish hangs on a dead control database.
  const auto t0 = Clock::now();
  auto loaded = store->load();
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().message().rfind("fleet flag store unreachable: ", 0), 0u)
      << loaded.status().message();
  auto published = store->publish(sample(0, "during the outage"), 1);
  ASSERT_FALSE(published);
  EXPECT_LT(ms(Clock::now() - t0), 12000);

  // A store opened and closed during the outage stops promptly from its backoff.
  {
    auto during = PgFlagStore::open(control_, nullptr);
    ASSERT_TRUE(during);
    std::this_thread::sleep_for(600ms);
    const auto stopping = Clock::now();
    during->reset();
    EXPECT_LT(ms(Clock::now() - stopping), 1000);
  }
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(store->health().connected);
  EXPECT_TRUE(seen.versions().empty()) << "no callback while disconnected";

  ASSERT_EQ(std::system(start_cmd), 0) << start_cmd;
  const auto up_at = Clock::now();
  // A third instance publishes v2 at once (plain libpq: UPDATE + NOTIFY), most likely before
  // `store` has reconnected: it must catch up on reconnection.
  FlagSnapshot v2 = sample(60, "published during the reconnect");
  v2.version = 2;
  sql(fmt::format("UPDATE {} SET version = 2, snapshot = $1::jsonb, updated_at = now()", quoted()),
      {toJson(v2).dump()});
  sql("SELECT pg_notify($1, '2')", {control_.table});
  const bool reconnected_before_v2 = store->health().connected;
  auto arrived = seen.waitFor(2, 20s);
  ASSERT_TRUE(arrived) << "no catch-up after the control database came back: "
                       << store->health().last_error;
  std::printf("FLAG_STORE_CATCH_UP_MS %.1f (after the restart; reconnected before v2 was "
              "written: %s)\n",
              ms(*arrived - up_at), reconnected_before_v2 ? "yes" : "no");
  EXPECT_EQ(toJson(seen.last()), toJson(v2));
  EXPECT_TRUE(store->health().connected);
  EXPECT_EQ(store->health().last_error, "");
  EXPECT_EQ(store->health().last_version, 2u);
  EXPECT_EQ(gauge("cutover_flag_store_up"), 1);

  const auto stopping = Clock::now();
  store.reset();
  EXPECT_LT(ms(Clock::now() - stopping), 1000);
}

}  // namespace
}  // namespace cutover::flags
