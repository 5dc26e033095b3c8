#include "config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

namespace cutover::config {
namespace {

const std::map<std::string, std::string> kEnv = {
    {"OLD_PASSWORD", "old-secret"},
    {"NEW_PASSWORD", "new-secret"},
    {"CUTOVER_ADMIN_TOKEN", "admin-token"},
    {"EMPTY", ""},
};

std::optional<std::string> fakeEnv(const std::string& name) {
  auto it = kEnv.find(name);
  if (it == kEnv.end()) return std::nullopt;
  return it->second;
}

Result<Config> load(std::string_view yaml) { return loadString(yaml, "cutover.yaml", fakeEnv); }

// The error message of a load that must fail.
std::string errorOf(std::string_view yaml) {
  auto result = load(yaml);
  if (result) return "<loaded without error>";
  return result.status().message();
}

// Smallest config this build accepts: the old store, and client auth spelled out as trust.
constexpr std::string_view kMinimal =
    "stores: { old: {} }\n"
    "auth: { method: trust }\n";

std::string minimalWith(std::string_view extra) {
  return std::string(kMinimal) + std::string(extra);
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "config_test_XXXXXX";
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    for (const auto& f : files_) unlink(f.c_str());
    rmdir(path_.c_str());
  }
  std::string write(const std::string& name, const std::string& content) {
    std::string path = path_ + "/" + name;
    std::ofstream(path) << content;
    files_.push_back(path);
    return path;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// DESIGN.md's example with the values this build refuses replaced by accepted ones
// (writes: old, shadow_percent: 0, no per-table rules, auth trust, tls disable).
constexpr std::string_view kDesignExample = R"(listen: 127.0.0.1:6432
workers: 2                       # event-loop threads; 0 = one per core
max_client_connections: 1000
stores:                          # user/database omitted = the ones the client asked for
  old: { host: 127.0.0.1, port: 5432, user: app, password_env: OLD_PASSWORD, sslmode: prefer }
  new: { host: 127.0.0.1, port: 5433, user: app, password_env: NEW_PASSWORD, sslmode: prefer,
         database: app_v2 }      # e.g. the new store names the database differently
auth:
  method: trust                  # scram-sha-256 | md5 | trust
  users_file: users.txt          # "name" "SCRAM-SHA-256$..." lines, as pg_authid stores them
tls: { cert_file: server.crt, key_file: server.key, mode: disable }   # disable|allow|require
flags:                            # initial values; the state file wins once it exists
  state_file: cutover-flags.json
  writes: old                    # old | dual | dual-new | new
  mirror: async                  # sync | async | strict
  reads_new_percent: 0
  shadow_percent: 0
  sticky: statement
compare:
  ignore_columns: [updated_at, synced_at]
  float_tolerance: 1e-6
  recheck: { attempts: 3, delay_ms: 250 }
auto_rollback: { window_s: 60, max_mismatch_rate: 0.01, max_new_error_rate: 0.02, max_p99_ratio: 2.5 }
journal_dir: /var/lib/cutover/journal/
admin: { listen: 0.0.0.0:9188, token_env: CUTOVER_ADMIN_TOKEN }
login_timeout_ms: 10000
connect_timeout_ms: 2000
shutdown_timeout_ms: 15000
max_message_bytes: 16777216
log_level: debug
)";

TEST(ConfigLoad, DesignExampleLoadsEveryField) {
  auto result = load(kDesignExample);
  ASSERT_TRUE(result) << result.status().message();
  const Config& c = *result;
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.workers, 2);
  EXPECT_EQ(c.max_client_connections, 1000);

  EXPECT_EQ(c.old_store.name, "old");
  EXPECT_EQ(c.old_store.host, "127.0.0.1");
  EXPECT_EQ(c.old_store.port, 5432);
  EXPECT_EQ(c.old_store.user, "app");
  EXPECT_EQ(c.old_store.database, std::nullopt);
  EXPECT_EQ(c.old_store.password, "old-secret");
  EXPECT_EQ(c.old_store.sslmode, SslMode::Prefer);
  EXPECT_EQ(c.old_store.sslrootcert, "");
  ASSERT_TRUE(c.new_store.has_value());
  EXPECT_EQ(c.new_store->name, "new");
  EXPECT_EQ(c.new_store->host, "127.0.0.1");
  EXPECT_EQ(c.new_store->port, 5433);
  EXPECT_EQ(c.new_store->user, "app");
  EXPECT_EQ(c.new_store->database, "app_v2");
  EXPECT_EQ(c.new_store->password, "new-secret");
  EXPECT_EQ(c.new_store->sslmode, SslMode::Prefer);

  EXPECT_EQ(c.auth.method, AuthMethod::Trust);
  EXPECT_EQ(c.auth.users_file, "users.txt");
  EXPECT_EQ(c.tls.cert_file, "server.crt");
  EXPECT_EQ(c.tls.key_file, "server.key");
  EXPECT_EQ(c.tls.mode, TlsMode::Disable);

  EXPECT_EQ(c.flags.state_file, "cutover-flags.json");
  EXPECT_EQ(c.flags.writes, WritesMode::Old);
  EXPECT_EQ(c.flags.mirror, MirrorMode::Async);
  EXPECT_EQ(c.flags.reads_new_percent, 0);
  EXPECT_EQ(c.flags.shadow_percent, 0);
  EXPECT_EQ(c.flags.sticky, Sticky::Statement);
  EXPECT_TRUE(c.flags.tables.empty());

  EXPECT_EQ(c.compare.ignore_columns, (std::vector<std::string>{"updated_at", "synced_at"}));
  EXPECT_DOUBLE_EQ(c.compare.float_tolerance, 1e-6);
  EXPECT_EQ(c.compare.recheck.attempts, 3);
  EXPECT_EQ(c.compare.recheck.delay_ms, 250);

  EXPECT_TRUE(c.auto_rollback.enabled);
  EXPECT_EQ(c.auto_rollback.window_s, 60);
  EXPECT_DOUBLE_EQ(c.auto_rollback.max_mismatch_rate, 0.01);
  EXPECT_DOUBLE_EQ(c.auto_rollback.max_new_error_rate, 0.02);
  EXPECT_DOUBLE_EQ(c.auto_rollback.max_p99_ratio, 2.5);

  EXPECT_EQ(c.journal_dir, "/var/lib/cutover/journal/");
  EXPECT_EQ(c.admin.listen.host, "0.0.0.0");
  EXPECT_EQ(c.admin.listen.port, 9188);
  EXPECT_EQ(c.admin.token, "admin-token");

  EXPECT_EQ(c.login_timeout_ms, 10000);
  EXPECT_EQ(c.connect_timeout_ms, 2000);
  EXPECT_EQ(c.shutdown_timeout_ms, 15000);
  EXPECT_EQ(c.max_message_bytes, 16777216u);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(ConfigLoad, OmittedKeysTakeDefaults) {
  auto result = load(kMinimal);
  ASSERT_TRUE(result) << result.status().message();
  const Config& c = *result;
  EXPECT_EQ(c.listen.toString(), "127.0.0.1:6432");
  EXPECT_EQ(c.workers, 2);
  EXPECT_EQ(c.max_client_connections, 1000);
  EXPECT_EQ(c.old_store.name, "old");
  EXPECT_EQ(c.old_store.host, "127.0.0.1");
  EXPECT_EQ(c.old_store.port, 5432);
  EXPECT_EQ(c.old_store.user, std::nullopt);
  EXPECT_EQ(c.old_store.database, std::nullopt);
  EXPECT_EQ(c.old_store.password, std::nullopt);
  EXPECT_EQ(c.old_store.sslmode, SslMode::Prefer);
  EXPECT_FALSE(c.new_store.has_value());
  EXPECT_EQ(c.auth.users_file, "");
  EXPECT_EQ(c.tls.mode, TlsMode::Disable);
  EXPECT_EQ(c.flags.state_file, "cutover-flags.json");
  EXPECT_EQ(c.flags.writes, WritesMode::Old);
  EXPECT_EQ(c.flags.mirror, MirrorMode::Sync);
  EXPECT_EQ(c.flags.reads_new_percent, 0);
  EXPECT_EQ(c.flags.shadow_percent, 0);
  EXPECT_EQ(c.flags.sticky, Sticky::Session);
  EXPECT_TRUE(c.compare.ignore_columns.empty());
  EXPECT_DOUBLE_EQ(c.compare.float_tolerance, 1e-9);
  EXPECT_EQ(c.compare.recheck.attempts, 2);
  EXPECT_EQ(c.compare.recheck.delay_ms, 200);
  EXPECT_FALSE(c.auto_rollback.enabled);
  EXPECT_EQ(c.journal_dir, "journal/");
  EXPECT_EQ(c.admin.listen.toString(), "127.0.0.1:9187");
  EXPECT_EQ(c.admin.token, std::nullopt);
  EXPECT_EQ(c.login_timeout_ms, 60000);
  EXPECT_EQ(c.connect_timeout_ms, 5000);
  EXPECT_EQ(c.shutdown_timeout_ms, 30000);
  EXPECT_EQ(c.mirror_timeout_ms, 5000);
  EXPECT_EQ(c.ramp_read_timeout_ms, 5000);
  EXPECT_EQ(c.max_message_bytes, 1u << 30);
  EXPECT_EQ(c.log_level, "info");
}

TEST(ConfigLoad, EmptySectionsCountAsOmitted) {
  auto result = load(minimalWith("tls:\ncompare:\nauto_rollback:\nadmin:\n"));
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_FALSE(result->auto_rollback.enabled);
  EXPECT_EQ(result->admin.listen.port, 9187);
}

TEST(ConfigLoad, AutoRollbackSectionPresentEnablesItWithDefaults) {
  auto result = load(minimalWith("auto_rollback: {}\n"));
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_TRUE(result->auto_rollback.enabled);
  EXPECT_EQ(result->auto_rollback.window_s, 30);
  EXPECT_DOUBLE_EQ(result->auto_rollback.max_p99_ratio, 1.5);
}

TEST(ConfigLoad, WorkersZeroResolvesToCoreCount) {
  auto result = load(minimalWith("workers: 0\n"));
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_GE(result->workers, 1);
}

TEST(ConfigLoad, Ipv6ListenAddress) {
  auto result = load(minimalWith("listen: '[::1]:7432'\n"));
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->listen.host, "::1");
  EXPECT_EQ(result->listen.port, 7432);
  EXPECT_EQ(result->listen.toString(), "[::1]:7432");
}

TEST(ConfigLoad, SslmodeDisableAndPreferAreAccepted) {
  auto result = load(
      "stores:\n"
      "  old: { sslmode: disable }\n"
      "  new: { sslmode: prefer, sslrootcert: /etc/ca.pem }\n"
      "auth: { method: trust }\n");
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->old_store.sslmode, SslMode::Disable);
  EXPECT_EQ(result->new_store->sslmode, SslMode::Prefer);
  EXPECT_EQ(result->new_store->sslrootcert, "/etc/ca.pem");
}

TEST(ConfigLoad, EnumNamesRoundTrip) {
  EXPECT_EQ(toString(SslMode::VerifyFull), "verify-full");
  EXPECT_EQ(toString(AuthMethod::ScramSha256), "scram-sha-256");
  EXPECT_EQ(toString(TlsMode::Require), "require");
  EXPECT_EQ(toString(WritesMode::DualNew), "dual-new");
  EXPECT_EQ(toString(MirrorMode::Strict), "strict");
  EXPECT_EQ(toString(Sticky::Statement), "statement");
}

TEST(ConfigLoad, CompareNormalisationKeys) {
  auto result = load(minimalWith("compare:\n"
                                 "  ignore_columns: [updated_at]\n"
                                 "  float_tolerance: 0\n"
                                 "  numeric_trailing_zeros: false\n"
                                 "  timestamps_utc: false\n"
                                 "  timestamp_precision_us: 1000\n"
                                 "  strict_order: true\n"
                                 "  log_values: true\n"
                                 "  sample_bytes: 4096\n"
                                 "  tables:\n"
                                 "    orders: { ignore_columns: [synced_at, etag] }\n"
                                 "    billing.invoices: {}\n"));
  ASSERT_TRUE(result) << result.status().message();
  const CompareConfig& c = result->compare;
  EXPECT_EQ(c.ignore_columns, (std::vector<std::string>{"updated_at"}));
  EXPECT_DOUBLE_EQ(c.float_tolerance, 0);
  EXPECT_FALSE(c.numeric_trailing_zeros);
  EXPECT_FALSE(c.timestamps_utc);
  EXPECT_EQ(c.timestamp_precision_us, 1000);
  EXPECT_TRUE(c.strict_order);
  EXPECT_TRUE(c.log_values);
  EXPECT_EQ(c.sample_bytes, 4096u);
  ASSERT_EQ(c.tables.size(), 1u);  // a table given no settings adds nothing
  EXPECT_EQ(c.tables.at("orders").ignore_columns, (std::vector<std::string>{"synced_at", "etag"}));
}

TEST(ConfigLoad, CompareNormalisationDefaults) {
  auto result = load(kMinimal);
  ASSERT_TRUE(result) << result.status().message();
  const CompareConfig& c = result->compare;
  EXPECT_TRUE(c.tables.empty());
  EXPECT_TRUE(c.numeric_trailing_zeros);
  EXPECT_TRUE(c.timestamps_utc);
  EXPECT_EQ(c.timestamp_precision_us, 1);
  EXPECT_FALSE(c.strict_order);
  EXPECT_FALSE(c.log_values);
  EXPECT_EQ(c.sample_bytes, 64u * 1024);
}

TEST(ConfigErrors, CompareKeys) {
  EXPECT_EQ(errorOf(minimalWith("compare:\n  strict_order: yes\n")),
            "cutover.yaml:4: compare.strict_order: 'yes' is not valid (expected one of: true, "
            "false)");
  EXPECT_EQ(errorOf(minimalWith("compare:\n  sample_bytes: -1\n")),
            "cutover.yaml:4: compare.sample_bytes: -1 is out of range (0-16777216)");
  EXPECT_EQ(errorOf(minimalWith("compare:\n  timestamp_precision_us: 0\n")),
            "cutover.yaml:4: compare.timestamp_precision_us: 0 is out of range (1-60000000)");
  EXPECT_EQ(errorOf(minimalWith("compare:\n  ignore_column: [a]\n")),
            "cutover.yaml:4: unknown key 'compare.ignore_column' (expected one of: "
            "ignore_columns, float_tolerance, recheck, tables, numeric_trailing_zeros, "
            "timestamps_utc, timestamp_precision_us, strict_order, log_values, sample_bytes)");
  EXPECT_EQ(errorOf(minimalWith("compare:\n  tables:\n    orders:\n      ignore: [a]\n")),
            "cutover.yaml:6: unknown key 'compare.tables.orders.ignore' (expected one of: "
            "ignore_columns)");
}

// --- keys and types ---------------------------------------------------------------------------

TEST(ConfigErrors, UnknownStoreKeyNamesLineAndExpectedKeys) {
  EXPECT_EQ(errorOf("listen: 127.0.0.1:6432\n"
                    "workers: 2\n"
                    "auth:\n"
                    "  method: trust\n"
                    "stores:\n"
                    "  old:\n"
                    "    hots: db1\n"),
            "cutover.yaml:7: unknown key 'stores.old.hots' (expected one of: host, port, user, "
            "database, password_env, password_file, sslmode, sslrootcert)");
}

TEST(ConfigErrors, UnknownTopLevelKey) {
  EXPECT_EQ(errorOf(minimalWith("worker: 4\n")),
            "cutover.yaml:3: unknown key 'worker' (expected one of: listen, workers, "
            "max_client_connections, max_connections_per_user, stores, auth, tls, flags, compare, verify, auto_rollback, "
            "journal_dir, admin, login_timeout_ms, connect_timeout_ms, shutdown_timeout_ms, "
            "mirror_timeout_ms, ramp_read_timeout_ms, mirror_queue_units, mirror_queue_bytes, max_message_bytes, log_level, "
            "allow_replication_connections)");
}

TEST(ConfigErrors, UnknownNestedKeys) {
  EXPECT_EQ(errorOf(minimalWith("compare:\n  recheck: { attempts: 1, delay: 5 }\n")),
            "cutover.yaml:4: unknown key 'compare.recheck.delay' (expected one of: attempts, "
            "delay_ms)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  tables:\n    orders: { read_new_percent: 5 }\n")),
            "cutover.yaml:5: unknown key 'flags.tables.orders.read_new_percent' (expected one "
            "of: reads_new_percent, shadow_percent, writes)");
  EXPECT_EQ(errorOf("stores: { old: {}, older: {} }\nauth: { method: trust }\n"),
            "cutover.yaml:1: unknown key 'stores.older' (expected one of: old, new)");
}

TEST(ConfigErrors, DuplicateKey) {
  EXPECT_EQ(errorOf(minimalWith("workers: 2\nworkers: 3\n")),
            "cutover.yaml:4: duplicate key 'workers' (first given on line 3); keep one");
}

TEST(ConfigErrors, PercentOutOfRange) {
  EXPECT_EQ(errorOf(minimalWith("listen: 127.0.0.1:6432\n"
                                "workers: 2\n"
                                "max_client_connections: 10\n"
                                "journal_dir: j/\n"
                                "log_level: info\n"
                                "login_timeout_ms: 100\n"
                                "connect_timeout_ms: 100\n"
                                "flags:\n"
                                "  sticky: session\n"
                                "  reads_new_percent: 150\n")),
            "cutover.yaml:12: flags.reads_new_percent: 150 is out of range (0-100)");
  EXPECT_EQ(errorOf(minimalWith("flags: { shadow_percent: -1 }\n")),
            "cutover.yaml:3: flags.shadow_percent: -1 is out of range (0-100)");
}

TEST(ConfigErrors, BadEnumListsValidValues) {
  EXPECT_EQ(errorOf(minimalWith("flags:\n  writes: both\n")),
            "cutover.yaml:4: flags.writes: 'both' is not valid (expected one of: old, dual, "
            "dual-new, new)");
  EXPECT_EQ(errorOf(minimalWith("flags: { mirror: later }\n")),
            "cutover.yaml:3: flags.mirror: 'later' is not valid (expected one of: sync, async, "
            "strict)");
  EXPECT_EQ(errorOf(minimalWith("flags: { sticky: user }\n")),
            "cutover.yaml:3: flags.sticky: 'user' is not valid (expected one of: session, "
            "statement)");
  EXPECT_EQ(errorOf("stores: { old: {} }\nauth: { method: password }\n"),
            "cutover.yaml:2: auth.method: 'password' is not valid (expected one of: "
            "scram-sha-256, md5, trust)");
  EXPECT_EQ(errorOf(minimalWith("tls: { mode: on }\n")),
            "cutover.yaml:3: tls.mode: 'on' is not valid (expected one of: disable, allow, "
            "require)");
  EXPECT_EQ(errorOf("stores: { old: { sslmode: allow } }\nauth: { method: trust }\n"),
            "cutover.yaml:1: stores.old.sslmode: 'allow' is not valid (expected one of: "
            "disable, prefer, require, verify-ca, verify-full)");
  EXPECT_EQ(errorOf(minimalWith("log_level: verbose\n")),
            "cutover.yaml:3: log_level: 'verbose' is not valid (expected one of: debug, info, "
            "warn, error)");
}

TEST(ConfigErrors, PortsMustBeOneTo65535) {
  EXPECT_EQ(errorOf("stores:\n  old: { port: 0 }\nauth: { method: trust }\n"),
            "cutover.yaml:2: stores.old.port: 0 is out of range (1-65535)");
  EXPECT_EQ(errorOf("stores:\n  old: {}\n  new:\n    port: 70000\nauth: { method: trust }\n"),
            "cutover.yaml:4: stores.new.port: 70000 is out of range (1-65535)");
  EXPECT_EQ(errorOf("stores:\n  old: { port: fivefourthreetwo }\nauth: { method: trust }\n"),
            "cutover.yaml:2: stores.old.port: 'fivefourthreetwo' is not an integer; expected a "
            "whole number (1-65535)");
  EXPECT_EQ(errorOf(minimalWith("listen: 127.0.0.1:0\n")),
            "cutover.yaml:3: listen: port '0' in '127.0.0.1:0' must be a number from 1 to "
            "65535");
  EXPECT_EQ(errorOf(minimalWith("admin: { listen: 'localhost:http' }\n")),
            "cutover.yaml:3: admin.listen: port 'http' in 'localhost:http' must be a number "
            "from 1 to 65535");
}

TEST(ConfigErrors, ListenMustBeHostPort) {
  EXPECT_EQ(errorOf(minimalWith("listen: 6432\n")),
            "cutover.yaml:3: listen: '6432' must be host:port, e.g. 127.0.0.1:6432 (IPv6: "
            "[::1]:6432)");
  EXPECT_EQ(errorOf(minimalWith("listen: '::1:6432'\n")),
            "cutover.yaml:3: listen: '::1:6432' must be host:port, e.g. 127.0.0.1:6432 (IPv6: "
            "[::1]:6432)");
  EXPECT_EQ(errorOf(minimalWith("listen: { host: a, port: 1 }\n")),
            "cutover.yaml:3: listen: expected a string, got a mapping");
}

TEST(ConfigErrors, CountsAndTimeouts) {
  EXPECT_EQ(errorOf(minimalWith("workers: 257\n")),
            "cutover.yaml:3: workers: 257 is out of range (0-256)");
  EXPECT_EQ(errorOf(minimalWith("workers: two\n")),
            "cutover.yaml:3: workers: 'two' is not an integer; expected a whole number (0-256)");
  EXPECT_EQ(errorOf(minimalWith("max_client_connections: 0\n")),
            "cutover.yaml:3: max_client_connections: 0 is out of range (at least 1)");
  EXPECT_EQ(errorOf(minimalWith("login_timeout_ms: 0\n")),
            "cutover.yaml:3: login_timeout_ms: 0 is out of range (at least 1)");
  EXPECT_EQ(errorOf(minimalWith("connect_timeout_ms: -5\n")),
            "cutover.yaml:3: connect_timeout_ms: -5 is out of range (at least 1)");
  EXPECT_EQ(errorOf(minimalWith("shutdown_timeout_ms: 1.5\n")),
            "cutover.yaml:3: shutdown_timeout_ms: '1.5' is not an integer; expected a whole "
            "number (at least 1)");
  EXPECT_EQ(errorOf(minimalWith("ramp_read_timeout_ms: -1\n")),
            "cutover.yaml:3: ramp_read_timeout_ms: -1 is out of range (0-3600000)");
  auto no_ramp_timeout = load(minimalWith("ramp_read_timeout_ms: 0\n"));
  ASSERT_TRUE(no_ramp_timeout) << no_ramp_timeout.status().message();
  EXPECT_EQ(no_ramp_timeout->ramp_read_timeout_ms, 0);
  EXPECT_EQ(errorOf(minimalWith("max_message_bytes: 2000000000\n")),
            "cutover.yaml:3: max_message_bytes: 2000000000 is out of range (1024-1073741824)");
  EXPECT_EQ(errorOf(minimalWith("workers: 99999999999999999999\n")),
            "cutover.yaml:3: workers: 99999999999999999999 is out of range (0-256)");
}

TEST(ConfigErrors, NumbersAndLists) {
  EXPECT_EQ(errorOf(minimalWith("compare: { float_tolerance: -0.5 }\n")),
            "cutover.yaml:3: compare.float_tolerance: -0.5 is out of range (at least 0)");
  EXPECT_EQ(errorOf(minimalWith("compare: { float_tolerance: .nan }\n")),
            "cutover.yaml:3: compare.float_tolerance: '.nan' is not a number; expected a number "
            "(at least 0)");
  EXPECT_EQ(errorOf(minimalWith("auto_rollback:\n  max_mismatch_rate: 5\n")),
            "cutover.yaml:4: auto_rollback.max_mismatch_rate: 5 is out of range (0-1)");
  EXPECT_EQ(errorOf(minimalWith("auto_rollback:\n  max_p99_ratio: 0.5\n")),
            "cutover.yaml:4: auto_rollback.max_p99_ratio: 0.5 is out of range (at least 1)");
  EXPECT_EQ(errorOf(minimalWith("compare: { ignore_columns: updated_at }\n")),
            "cutover.yaml:3: compare.ignore_columns: expected a list such as [a, b], got a "
            "single value");
  EXPECT_EQ(errorOf(minimalWith("compare:\n  ignore_columns:\n    - a\n    - [b]\n")),
            "cutover.yaml:6: compare.ignore_columns: every item must be a non-empty name");
}

TEST(ConfigErrors, KeyWithoutValue) {
  EXPECT_EQ(errorOf(minimalWith("flags:\n  writes:\n")),
            "cutover.yaml:4: flags.writes: no value given (expected one of: old, dual, "
            "dual-new, new); remove the key to use the default");
  EXPECT_EQ(errorOf("stores: { old: { host: '' } }\nauth: { method: trust }\n"),
            "cutover.yaml:1: stores.old.host: must not be empty; remove the key to use the "
            "default");
}

TEST(ConfigErrors, StoresRequired) {
  EXPECT_EQ(errorOf("workers: 2\n"),
            "cutover.yaml:1: stores: required section is missing; add 'stores: { old: { host: "
            "..., port: ... } }' naming the current database server");
  EXPECT_EQ(errorOf(""),
            "cutover.yaml:1: stores: required section is missing; add 'stores: { old: { host: "
            "..., port: ... } }' naming the current database server");
  EXPECT_EQ(errorOf("workers: 2\nstores:\n  new: { port: 5433 }\n"),
            "cutover.yaml:3: stores.old: required; give the current (old) store's host and port");
  EXPECT_EQ(errorOf("workers: 2\nstores:\n  old: {}\n  new:\n"),
            "cutover.yaml:4: stores.new: no settings given; remove the key or give the new "
            "store's host and port");
}

TEST(ConfigErrors, TopLevelMustBeMapping) {
  EXPECT_EQ(errorOf("- listen\n- stores\n"),
            "cutover.yaml:1: the file must be a mapping of keys such as 'listen:' and 'stores:'");
}

TEST(ConfigErrors, YamlSyntaxErrorNamesLine) {
  EXPECT_EQ(errorOf("workers: 2\nstores:\n  old: { host: a\nauth: x\n"),
            "cutover.yaml:4: YAML syntax error: end of map flow not found");
}

// --- secrets ----------------------------------------------------------------------------------

TEST(ConfigSecrets, InlinePasswordIsRejected) {
  EXPECT_EQ(errorOf("stores:\n  old:\n    host: db\n    password: hunter2\n"
                    "auth: { method: trust }\n"),
            "cutover.yaml:4: stores.old.password: inline secrets are not accepted; use "
            "password_env or password_file");
  EXPECT_EQ(errorOf(minimalWith("admin: { token: abc }\n")),
            "cutover.yaml:3: admin.token: inline secrets are not accepted; use token_env or "
            "token_file");
}

TEST(ConfigSecrets, UnsetOrEmptyEnvironmentVariable) {
  EXPECT_EQ(errorOf("stores:\n  old: { password_env: NOPE_PASSWORD }\nauth: { method: trust }\n"),
            "cutover.yaml:2: stores.old.password_env: environment variable 'NOPE_PASSWORD' is "
            "not set; export it or use password_file");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  token_env: MISSING_TOKEN\n")),
            "cutover.yaml:4: admin.token_env: environment variable 'MISSING_TOKEN' is not set; "
            "export it or use token_file");
  EXPECT_EQ(errorOf("stores:\n  old: { password_env: EMPTY }\nauth: { method: trust }\n"),
            "cutover.yaml:2: stores.old.password_env: environment variable 'EMPTY' is empty");
}

TEST(ConfigSecrets, PasswordAndTokenFromFilesStripTrailingNewline) {
  TempDir dir;
  std::string password = dir.write("old.pass", "s3cret pass\n");
  std::string token = dir.write("admin.token", "tok\r\n");
  auto result = load("stores:\n  old: { password_file: '" + password +
                     "' }\nauth: { method: trust }\nadmin: { token_file: '" + token + "' }\n");
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->old_store.password, "s3cret pass");
  EXPECT_EQ(result->admin.token, "tok");
}

TEST(ConfigSecrets, SecretFileProblems) {
  TempDir dir;
  std::string missing = dir.path() + "/missing";
  EXPECT_EQ(errorOf("stores:\n  old:\n    password_file: " + missing +
                    "\nauth: { method: trust }\n"),
            "cutover.yaml:3: stores.old.password_file: cannot read '" + missing +
                "': No such file or directory");
  std::string empty = dir.write("empty", "\n");
  EXPECT_EQ(errorOf(minimalWith("admin: { token_file: " + empty + " }\n")),
            "cutover.yaml:3: admin.token_file: '" + empty + "' is empty");
  EXPECT_EQ(errorOf(minimalWith("admin: { token_file: " + dir.path() + " }\n")),
            "cutover.yaml:3: admin.token_file: cannot read '" + dir.path() +
                "': Is a directory");
}

// --- admin.tls ----------------------------------------------------------------------------------

TEST(ConfigAdminTls, AbsentMeansPlainHttp) {
  auto result = load(minimalWith("admin: { listen: 127.0.0.1:9187 }\n"));
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->admin.tls, std::nullopt);
}

TEST(ConfigAdminTls, CertAndKeyFilesAreRead) {
  TempDir dir;
  std::string cert = dir.write("admin.crt", "-----BEGIN CERTIFICATE-----\n");
  std::string key = dir.write("admin.key", "-----BEGIN PRIVATE KEY-----\n");
  auto result = load(minimalWith("admin:\n  listen: 127.0.0.1:9187\n  tls:\n    cert_file: " + cert +
                                 "\n    key_file: " + key + "\n"));
  ASSERT_TRUE(result) << result.status().message();
  ASSERT_TRUE(result->admin.tls.has_value());
  EXPECT_EQ(result->admin.tls->cert_file, cert);
  EXPECT_EQ(result->admin.tls->key_file, key);

  // A changed path is a changed AdminConfig (SIGHUP compares them to warn about restart-only keys).
  config::AdminConfig other = result->admin;
  EXPECT_EQ(other, result->admin);
  other.tls->key_file += ".new";
  EXPECT_NE(other, result->admin);
  other.tls.reset();
  EXPECT_NE(other, result->admin);
}

TEST(ConfigAdminTls, BothFilesAreRequired) {
  TempDir dir;
  std::string cert = dir.write("admin.crt", "pem");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls:\n    cert_file: " + cert + "\n")),
            "cutover.yaml:5: admin.tls.key_file: required with admin.tls (a PEM file); remove admin.tls to "
            "serve plain HTTP");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls: { key_file: " + cert + " }\n")),
            "cutover.yaml:4: admin.tls.cert_file: required with admin.tls (a PEM file); remove admin.tls to "
            "serve plain HTTP");
  // `tls:` with every key commented out does not fall back to plain HTTP.
  EXPECT_EQ(errorOf(minimalWith("admin:\n  listen: 127.0.0.1:9187\n  tls:\n")),
            "cutover.yaml:5: admin.tls: needs cert_file and key_file (PEM files); remove admin.tls to serve "
            "plain HTTP");
  EXPECT_EQ(errorOf(minimalWith("admin: { tls: on }\n")),
            "cutover.yaml:3: admin.tls: expected a mapping of keys, got a single value");
}

TEST(ConfigAdminTls, FilesMustBeReadable) {
  TempDir dir;
  std::string cert = dir.write("admin.crt", "pem");
  std::string empty = dir.write("empty.key", "");
  std::string missing = dir.path() + "/missing.key";
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls:\n    cert_file: " + cert + "\n    key_file: " + missing + "\n")),
            "cutover.yaml:6: admin.tls.key_file: cannot read '" + missing + "': No such file or directory");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls:\n    cert_file: " + dir.path() + "\n    key_file: " + cert + "\n")),
            "cutover.yaml:5: admin.tls.cert_file: cannot read '" + dir.path() + "': Is a directory");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls:\n    cert_file: " + cert + "\n    key_file: " + empty + "\n")),
            "cutover.yaml:6: admin.tls.key_file: '" + empty + "' is empty");
  EXPECT_EQ(errorOf(minimalWith("admin:\n  tls:\n    cert_file: ''\n    key_file: " + cert + "\n")),
            "cutover.yaml:5: admin.tls.cert_file: must not be empty; remove the key to use the default");
}

TEST(ConfigAdminTls, UnknownKeyIsNamed) {
  TempDir dir;
  std::string cert = dir.write("admin.crt", "pem");
  std::string error = errorOf(minimalWith("admin:\n  tls:\n    cert_file: " + cert + "\n    key_file: " + cert +
                                          "\n    ca_file: " + cert + "\n"));
  EXPECT_EQ(error, "cutover.yaml:7: unknown key 'admin.tls.ca_file' (expected one of: cert_file, key_file)");
  error = errorOf(minimalWith("admin: { tsl: {} }\n"));
  EXPECT_EQ(error.rfind("cutover.yaml:3: unknown key 'admin.tsl' (expected one of: listen, token_env, token_file, tls", 0), 0u)
      << error;
}

TEST(ConfigSecrets, EnvAndFileTogetherIsAnError) {
  EXPECT_EQ(errorOf("stores:\n  old:\n    password_env: OLD_PASSWORD\n    password_file: p\n"
                    "auth: { method: trust }\n"),
            "cutover.yaml:4: stores.old.password_file: give either password_env or "
            "password_file, not both");
}

TEST(ConfigSecrets, DefaultLookupReadsProcessEnvironment) {
  setenv("CUTOVER_CONFIG_TEST_PW", "from-env", 1);
  auto result = loadString(
      "stores: { old: { password_env: CUTOVER_CONFIG_TEST_PW } }\nauth: { method: trust }\n",
      "x.yaml");
  unsetenv("CUTOVER_CONFIG_TEST_PW");
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->old_store.password, "from-env");
}

// --- what this build refuses ------------------------------------------------------------------

TEST(ConfigBuildSupport, RoutingToNewNeedsTheNewStore) {
  // The error points at the key that needs the new store.
  const std::string message = ": these flags route statements to the new store, but stores.new is not configured";
  EXPECT_EQ(errorOf(minimalWith("flags:\n  writes: dual\n")), "cutover.yaml:4: flags.writes" + message);
  EXPECT_EQ(errorOf(minimalWith("flags: { writes: new }\n")), "cutover.yaml:3: flags.writes" + message);
  EXPECT_EQ(errorOf(minimalWith("flags:\n  reads_new_percent: 10\n")), "cutover.yaml:4: flags.reads_new_percent" + message);
  EXPECT_EQ(errorOf(minimalWith("flags:\n  tables:\n    orders: { reads_new_percent: 50 }\n")),
            "cutover.yaml:5: flags.tables.orders" + message);
}

TEST(ConfigBuildSupport, DualWritesAndRampAcceptedWithTheNewStore) {
  auto c = load("stores: { old: {}, new: { port: 5433 } }\nauth: { method: trust }\n"
                "flags: { writes: dual-new, mirror: sync, reads_new_percent: 30, tables: { orders: { reads_new_percent: 5 } } }\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->flags.writes, WritesMode::DualNew);
  EXPECT_EQ(c->flags.reads_new_percent, 30);
  EXPECT_EQ(c->flags.tables.at("orders").reads_new_percent, 5);
}

TEST(ConfigBuildSupport, AsyncMirrorAcceptedAndShadowNeedsTheNewStore) {
  auto async = load("stores: { old: {}, new: {} }\nauth: { method: trust }\nflags:\n  writes: dual\n  mirror: async\n"
                    "mirror_queue_units: 50\nmirror_queue_bytes: 1048576\n");
  ASSERT_TRUE(async) << async.status().message();
  EXPECT_EQ(async->flags.mirror, MirrorMode::Async);
  EXPECT_EQ(async->mirror_queue_units, 50);
  EXPECT_EQ(async->mirror_queue_bytes, 1048576);
  EXPECT_EQ(errorOf(minimalWith("mirror_queue_bytes: 100\n")),
            "cutover.yaml:3: mirror_queue_bytes: 100 is out of range (65536-1073741824)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  shadow_percent: 10\n")),
            "cutover.yaml:4: flags.shadow_percent: these flags route statements to the new store, but stores.new "
            "is not configured");
  auto c = load("stores: { old: {}, new: { port: 5433 } }\nauth: { method: trust }\nflags: { shadow_percent: 10 }\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->flags.shadow_percent, 10);
}

TEST(ConfigBuildSupport, StrictMirrorRefused) {
  EXPECT_EQ(errorOf(minimalWith("flags: { mirror: strict }\n")),
            "cutover.yaml:3: flags.mirror: 'strict' (two-phase commit mode) is not available "
            "yet; use sync or async");
}

TEST(ConfigFrontDoor, ClientAuthNeedsUsersFileOrQuery) {
  EXPECT_EQ(errorOf("stores: { old: {} }\nauth:\n  method: md5\n"),
            "cutover.yaml:3: auth.users_file: required for auth.method 'md5'; point it at a file of "
            "\"name\" \"verifier\" lines, or set auth.query");
  // scram-sha-256 is the default method, so an empty config asks for its users too.
  EXPECT_EQ(errorOf("stores: { old: {} }\n"),
            "cutover.yaml:1: auth.users_file: required for auth.method 'scram-sha-256'; point it at a "
            "file of \"name\" \"verifier\" lines, or set auth.query");
  auto c = load("stores: { old: {} }\nauth: { method: scram-sha-256, users_file: u.txt }\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->auth.method, AuthMethod::ScramSha256);
  EXPECT_EQ(c->auth.users_file, "u.txt");
  EXPECT_FALSE(c->auth.query.has_value());
}

TEST(ConfigFrontDoor, AuthQuery) {
  auto c = load(
      "stores: { old: { user: app, password_env: OLD_PASSWORD } }\n"
      "auth:\n"
      "  method: scram-sha-256\n"
      "  query: SELECT rolpassword FROM pg_authid WHERE rolname = $1\n"
      "  query_user: lookup\n"
      "  query_password_env: NEW_PASSWORD\n"
      "  query_database: admin\n"
      "  query_ttl_s: 5\n");
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_TRUE(c->auth.query.has_value());
  EXPECT_EQ(c->auth.query->query, "SELECT rolpassword FROM pg_authid WHERE rolname = $1");
  EXPECT_EQ(c->auth.query->user, "lookup");
  EXPECT_EQ(c->auth.query->password, "new-secret");
  EXPECT_EQ(c->auth.query->database, "admin");
  EXPECT_EQ(c->auth.query->ttl_s, 5);

  auto defaults = load("stores: { old: {} }\nauth: { query: 'SELECT p FROM u WHERE n = $1' }\n");
  ASSERT_TRUE(defaults) << defaults.status().message();
  EXPECT_EQ(defaults->auth.query->database, "postgres");
  EXPECT_EQ(defaults->auth.query->ttl_s, 60);
  EXPECT_FALSE(defaults->auth.query->user.has_value());

  EXPECT_EQ(errorOf("stores: { old: {} }\nauth:\n  query: SELECT 1\n"),
            "cutover.yaml:3: auth.query: must take the user name as $1, e.g. SELECT rolpassword FROM "
            "pg_authid WHERE rolname = $1");
  EXPECT_EQ(errorOf("stores: { old: {} }\nauth:\n  users_file: u\n  query_ttl_s: 5\n"),
            "cutover.yaml:4: auth.query_ttl_s: only meaningful with auth.query; add the query or remove "
            "this key");
}

TEST(ConfigFrontDoor, TlsAndStoreSslmodesAccepted) {
  auto c = load(
      "stores:\n  old: { sslmode: verify-full, sslrootcert: ca.crt }\n  new: { sslmode: require }\n"
      "auth: { method: trust }\n"
      "tls: { cert_file: s.crt, key_file: s.key, mode: require }\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->old_store.sslmode, SslMode::VerifyFull);
  EXPECT_EQ(c->old_store.sslrootcert, "ca.crt");
  EXPECT_EQ(c->new_store->sslmode, SslMode::Require);
  EXPECT_EQ(c->tls.mode, TlsMode::Require);
  EXPECT_EQ(errorOf(minimalWith("tls: { mode: allow }\n")),
            "cutover.yaml:3: tls.cert_file and tls.key_file: both required for tls.mode 'allow'");
}

TEST(ConfigFrontDoor, MaxConnectionsPerUser) {
  auto c = load(minimalWith("max_connections_per_user: 7\n"));
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->max_connections_per_user, 7);
  EXPECT_EQ(load(kMinimal)->max_connections_per_user, 0);
  EXPECT_EQ(errorOf(minimalWith("max_connections_per_user: -1\n")).substr(0, 45),
            "cutover.yaml:3: max_connections_per_user: -1 ");
}

TEST(ConfigFrontDoor, AllowReplicationConnections) {
  EXPECT_FALSE(load(kMinimal)->allow_replication_connections);
  auto c = load(minimalWith("allow_replication_connections: true\n"));
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_TRUE(c->allow_replication_connections);
  EXPECT_EQ(errorOf(minimalWith("allow_replication_connections: database\n")),
            "cutover.yaml:3: allow_replication_connections: 'database' is not valid (expected one of: true, "
            "false)");
}

// --- flags.store / flags.control (the fleet flag store) --------------------------------------

TEST(ConfigFlagStore, DefaultsToTheFileStore) {
  auto c = load(kMinimal);
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->flags.store, FlagStoreKind::File);
  EXPECT_FALSE(c->flags.control.has_value());
  EXPECT_EQ(toString(FlagStoreKind::Postgres), "postgres");
}

TEST(ConfigFlagStore, PostgresWithoutControlTakesEverythingFromTheOldStore) {
  auto c = load(
      "stores:\n"
      "  old: { host: db1, port: 5433, user: app, database: shop, password_env: OLD_PASSWORD,\n"
      "         sslmode: verify-full, sslrootcert: ca.crt }\n"
      "auth: { method: trust }\n"
      "flags:\n"
      "  store: postgres\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->flags.store, FlagStoreKind::Postgres);
  ASSERT_TRUE(c->flags.control.has_value());
  const ControlConfig& control = *c->flags.control;
  EXPECT_EQ(control.host, "db1");
  EXPECT_EQ(control.port, 5433);
  EXPECT_EQ(control.user, "app");
  EXPECT_EQ(control.database, "shop");
  EXPECT_EQ(control.password, "old-secret");
  EXPECT_EQ(control.sslmode, SslMode::VerifyFull);
  EXPECT_EQ(control.sslrootcert, "ca.crt");
  EXPECT_EQ(control.table, "cutover_flags");

  // The old store without user/database: libpq's default user, database "postgres".
  auto bare = load(minimalWith("flags: { store: postgres }\n"));
  ASSERT_TRUE(bare) << bare.status().message();
  EXPECT_EQ(bare->flags.control->host, "127.0.0.1");
  EXPECT_EQ(bare->flags.control->port, 5432);
  EXPECT_FALSE(bare->flags.control->user.has_value());
  EXPECT_EQ(bare->flags.control->database, "postgres");
  EXPECT_FALSE(bare->flags.control->password.has_value());
  EXPECT_EQ(bare->flags.control->sslmode, SslMode::Prefer);
}

TEST(ConfigFlagStore, ControlKeysOverrideTheOldStore) {
  auto c = load(
      "stores: { old: { host: db1, port: 5433, user: app, password_env: OLD_PASSWORD } }\n"
      "auth: { method: trust }\n"
      "flags:\n"
      "  store: postgres\n"
      "  control:\n"
      "    host: control.internal\n"
      "    port: 6543\n"
      "    user: cutover\n"
      "    database: ops\n"
      "    password_env: NEW_PASSWORD\n"
      "    sslmode: require\n"
      "    table: fleet_flags\n");
  ASSERT_TRUE(c) << c.status().message();
  const ControlConfig& control = *c->flags.control;
  EXPECT_EQ(control.host, "control.internal");
  EXPECT_EQ(control.port, 6543);
  EXPECT_EQ(control.user, "cutover");
  EXPECT_EQ(control.database, "ops");
  EXPECT_EQ(control.password, "new-secret");
  EXPECT_EQ(control.sslmode, SslMode::Require);
  EXPECT_EQ(control.table, "fleet_flags");

  TempDir dir;
  const std::string file = dir.write("control.pw", "from-file\n");
  auto from_file = load(minimalWith("flags:\n  store: postgres\n  control: { password_file: " +
                                    file + " }\n"));
  ASSERT_TRUE(from_file) << from_file.status().message();
  EXPECT_EQ(from_file->flags.control->password, "from-file");
}

TEST(ConfigFlagStore, Errors) {
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: etcd\n")),
            "cutover.yaml:4: flags.store: 'etcd' is not valid (expected one of: file, postgres)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  writes: old\n  control: { table: t }\n")),
            "cutover.yaml:5: flags.control is set but flags.store is file; add 'store: postgres' "
            "to use the fleet flag store, or remove flags.control");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: file\n  control:\n")),
            "cutover.yaml:5: flags.control is set but flags.store is file; add 'store: postgres' "
            "to use the fleet flag store, or remove flags.control");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n    tabel: t\n")),
            "cutover.yaml:6: unknown key 'flags.control.tabel' (expected one of: host, port, user, "
            "database, password_env, password_file, sslmode, sslrootcert, table)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control: { port: 0 }\n")),
            "cutover.yaml:5: flags.control.port: 0 is out of range (1-65535)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n    sslmode: allow\n")),
            "cutover.yaml:6: flags.control.sslmode: 'allow' is not valid (expected one of: "
            "disable, prefer, require, verify-ca, verify-full)");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n    table: ''\n")),
            "cutover.yaml:6: flags.control.table: must not be empty; remove the key to use the "
            "default");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n    table: " +
                                std::string(64, 't') + "\n")),
            "cutover.yaml:6: flags.control.table: '" + std::string(64, 't') +
                "' is 64 bytes long; PostgreSQL names are at most 63");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n    password: x\n")),
            "cutover.yaml:6: flags.control.password: inline secrets are not accepted; use "
            "password_env or password_file");
  EXPECT_EQ(errorOf(minimalWith("flags:\n  store: postgres\n  control:\n"
                                "    password_env: NOT_SET\n")),
            "cutover.yaml:6: flags.control.password_env: environment variable 'NOT_SET' is not "
            "set; export it or use password_file");
}

// --- files ------------------------------------------------------------------------------------

TEST(ConfigFile, MissingFile) {
  auto result = loadFile("/nonexistent/cutover.yaml", fakeEnv);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().message(),
            "cannot read config file '/nonexistent/cutover.yaml': No such file or directory");
}

TEST(ConfigFile, LoadsAndNamesTheFileInErrors) {
  TempDir dir;
  std::string good = dir.write("good.yaml", std::string(kDesignExample));
  auto result = loadFile(good, fakeEnv);
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->new_store->database, "app_v2");

  std::string bad = dir.write("bad.yaml", std::string(kMinimal) + "workers: 1000\n");
  auto failed = loadFile(bad, fakeEnv);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.status().message(), bad + ":3: workers: 1000 is out of range (0-256)");
}

TEST(ConfigLoad, VerifySection) {
  auto c = load(minimalWith(
      "verify:\n"
      "  database: app\n"
      "  schemas: [public, sales]\n"
      "  chunk_rows: 500\n"
      "  checks:\n"
      "    - { name: balances, sql: \"SELECT sum(balance) FROM accounts\" }\n"
      "    - name: open\n"
      "      sql: SELECT count(*) FROM orders\n"));
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c->verify.database, "app");
  EXPECT_EQ(c->verify.schemas, (std::vector<std::string>{"public", "sales"}));
  EXPECT_EQ(c->verify.chunk_rows, 500);
  const std::vector<VerifyCheck> checks = {{"balances", "SELECT sum(balance) FROM accounts"},
                                           {"open", "SELECT count(*) FROM orders"}};
  EXPECT_EQ(c->verify.checks, checks);
  auto defaults = load(kMinimal);
  EXPECT_EQ(defaults->verify.database, "postgres");
  EXPECT_EQ(defaults->verify.chunk_rows, 10000);
  EXPECT_TRUE(defaults->verify.checks.empty());
}

TEST(ConfigLoad, VerifySectionErrors) {
  EXPECT_EQ(errorOf(minimalWith("verify:\n  checks:\n    - { sql: SELECT 1 }\n")),
            "cutover.yaml:5: verify.checks.0.name: is required (the check's name in the report)");
  EXPECT_EQ(errorOf(minimalWith("verify:\n  checks:\n    - { name: a }\n")),
            "cutover.yaml:5: verify.checks.0.sql: is required (a query run on both stores)");
  EXPECT_EQ(errorOf(minimalWith("verify:\n  checks:\n    - { name: a, sql: x }\n    - { name: a, sql: y }\n")),
            "cutover.yaml:6: verify.checks.1.name: 'a' is used by another check");
  EXPECT_EQ(errorOf(minimalWith("verify:\n  checks: { name: a }\n")),
            "cutover.yaml:4: verify.checks: expected a list of mappings, got a mapping");
  EXPECT_EQ(errorOf(minimalWith("verify:\n  chunk_rows: 0\n")).substr(0, 33),
            "cutover.yaml:4: verify.chunk_rows");
  EXPECT_EQ(errorOf(minimalWith("verify:\n  checks:\n    - { name: a, sql: x, when: y }\n")),
            "cutover.yaml:5: unknown key 'verify.checks.0.when' (expected one of: name, sql)");
}

}  // namespace
}  // namespace cutover::config
