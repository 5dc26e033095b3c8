#pragma once

// The proxy's configuration: cutover.yaml parsed into plain, validated, immutable structs.
// Nothing here exposes YAML types; every key and default is documented in docs/configuration.md.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cutover::config {

// libpq's sslmode names (allow is left out: it only makes sense for libpq's retry dance).
enum class SslMode { Disable, Prefer, Require, VerifyCa, VerifyFull };
// How clients authenticate to the proxy (the front door).
enum class AuthMethod { ScramSha256, Md5, Trust };
// Whether clients may or must use TLS to reach the proxy.
enum class TlsMode { Disable, Allow, Require };
// Who is authoritative for writes and whether the other store is mirrored (DESIGN.md "Flags").
enum class WritesMode { Old, Dual, DualNew, New };
// When the secondary must have applied a mirrored write.
enum class MirrorMode { Sync, Async, Strict };
// Ramp bucketing key.
enum class Sticky { Session, Statement };
// Where the current flag snapshot is kept: the local state file only, or also a table of a
// control database shared by every proxy instance (the fleet store).
enum class FlagStoreKind { File, Postgres };

// The YAML spelling of each value ("verify-full", "scram-sha-256", "dual-new", ...).
std::string_view toString(SslMode value);
std::string_view toString(AuthMethod value);
std::string_view toString(TlsMode value);
std::string_view toString(WritesMode value);
std::string_view toString(MirrorMode value);
std::string_view toString(Sticky value);
std::string_view toString(FlagStoreKind value);

struct HostPort {
  std::string host;
  uint16_t port = 0;
  // "host:port", with an IPv6 host in brackets: "[::1]:6432".
  std::string toString() const;
  bool operator==(const HostPort&) const = default;
};

struct StoreConfig {
  std::string name;                     // "old" / "new"
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  std::optional<std::string> user;      // omitted = the user the client asked for
  std::optional<std::string> database;  // omitted = the database the client asked for
  // Resolved at load from password_env (an environment variable's NAME) or password_file (a
  // path; trailing newline stripped). Inline passwords are refused.
  std::optional<std::string> password;
  SslMode sslmode = SslMode::Prefer;    // this build: prefer means plaintext
  std::string sslrootcert;
  bool operator==(const StoreConfig&) const = default;
};

// auth.query: look a client's secret up in the old store (PgBouncer's auth_query idea) when
// the users file does not list the user. Runs on its own connection as `query_user`.
struct AuthQueryConfig {
  std::string query;                       // one parameter ($1 = user name); the last column of the first row is the secret
  std::optional<std::string> user;         // default: stores.old.user
  std::optional<std::string> password;     // from query_password_env/query_password_file; default: stores.old's
  std::string database = "postgres";
  int ttl_s = 60;                          // answers (found or not) are cached this long
  bool operator==(const AuthQueryConfig&) const = default;
};

struct AuthConfig {
  AuthMethod method = AuthMethod::ScramSha256;
  std::string users_file;  // "name" "SCRAM-SHA-256$..." lines, as pg_authid stores them
  std::optional<AuthQueryConfig> query;
};

struct TlsConfig {
  std::string cert_file, key_file;
  TlsMode mode = TlsMode::Disable;
};

// Per-table overrides of the global flags; an unset field inherits the global value.
struct TableFlags {
  std::optional<int> reads_new_percent, shadow_percent;
  std::optional<WritesMode> writes;
  bool operator==(const TableFlags&) const = default;
};

// flags.control: the database of the fleet flag store (flags.store: postgres). Resolved at load:
// every omitted key takes stores.old's value, so this is complete as it stands.
struct ControlConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 5432;
  std::optional<std::string> user;      // omitted here and in stores.old: libpq's default
  std::string database = "postgres";    // stores.old.database, else "postgres"
  std::optional<std::string> password;  // from password_env/password_file, else stores.old's
  SslMode sslmode = SslMode::Prefer;
  std::string sslrootcert;
  std::string table = "cutover_flags";  // also the LISTEN/NOTIFY channel
  bool operator==(const ControlConfig&) const = default;
};

// The control database where flags.control names none: stores.old's server, credentials and
// database ("postgres" when stores.old names none). flags.control starts from this too.
ControlConfig controlFromOldStore(const StoreConfig& old_store);

// Initial flag values; the state file wins once it exists.
struct FlagsConfig {
  std::string state_file = "cutover-flags.json";
  WritesMode writes = WritesMode::Old;
  MirrorMode mirror = MirrorMode::Sync;
  int reads_new_percent = 0;
  int shadow_percent = 0;
  Sticky sticky = Sticky::Session;
  std::map<std::string, TableFlags> tables;
  FlagStoreKind store = FlagStoreKind::File;
  std::optional<ControlConfig> control;  // set exactly when store is Postgres
  bool operator==(const FlagsConfig&) const = default;
};

struct RecheckConfig {
  int attempts = 2;
  int delay_ms = 200;
};

// compare.tables.<name>: comparison settings for statements that read the table.
struct CompareTableConfig {
  std::vector<std::string> ignore_columns;  // added to compare.ignore_columns
};

// How shadow-read results are normalised and compared (compare/compare_rules.h applies it).
struct CompareConfig {
  std::vector<std::string> ignore_columns;
  // float4/float8 a and b are equal when |a - b| <= float_tolerance * max(1, |a|, |b|).
  double float_tolerance = 1e-9;
  RecheckConfig recheck;
  std::map<std::string, CompareTableConfig> tables;  // [schema.]name as in flags.tables
  bool numeric_trailing_zeros = true;  // numeric 1.50 equals 1.5
  bool timestamps_utc = true;          // timestamptz text compared as the instant it names
  // timestamp/timestamptz compared rounded to this many µs (1000: timestamp(3) = timestamp(6)).
  int64_t timestamp_precision_us = 1;
  bool strict_order = false;           // compare row order even without a top-level ORDER BY
  bool log_values = false;             // mismatch records carry values and the statement text
  uint32_t sample_bytes = 64 * 1024;   // per side: first rows kept to show differing rows
};

// verify.checks: a declared invariant, one query run on both stores whose results must agree.
struct VerifyCheck {
  std::string name;
  std::string sql;
  bool operator==(const VerifyCheck&) const = default;
};

// verify: settings of `cutover verify` (migrate/verify.h).
struct VerifyConfig {
  std::vector<VerifyCheck> checks;
  std::vector<std::string> schemas;  // empty = every schema but the system ones and `cutover`
  // The database verified where a store names none (stores.*.database wins); default "postgres".
  std::string database = "postgres";
  int chunk_rows = 10000;            // --chunk-rows overrides
  // The read-ramp gate: the proxy refuses a flag change raising reads_new_percent (global or a
  // table's) unless the last verify covering it was equal and at most max_age_s old.
  bool require_for_ramp = false;
  int max_age_s = 86400;
  bool operator==(const VerifyConfig&) const = default;
};

struct AutoRollbackConfig {
  bool enabled = false;  // true when the auto_rollback section is present (even as {})
  int window_s = 30;
  double max_mismatch_rate = 0.001, max_new_error_rate = 0.001, max_p99_ratio = 1.5;
};

// admin.tls: serve the admin API over HTTPS only (TLS 1.2 or newer). Both paths are required;
// the loader checks that they are readable, AdminServer::start loads them with OpenSSL.
struct AdminTlsConfig {
  std::string cert_file;  // PEM: the server certificate, then any intermediates
  std::string key_file;   // PEM private key matching cert_file
  bool operator==(const AdminTlsConfig&) const = default;
};

struct AdminConfig {
  bool enabled = false;              // the admin section is present: serve the API on `listen`
  HostPort listen{"127.0.0.1", 9187};
  std::optional<std::string> token;  // resolved from token_env or token_file
  std::optional<AdminTlsConfig> tls;  // absent: plain HTTP
  bool operator==(const AdminConfig&) const = default;
};

struct Config {
  HostPort listen{"127.0.0.1", 6432};
  int workers = 2;  // the YAML value 0 = one per core, resolved at load (never 0 here)
  int max_client_connections = 1000;
  int max_connections_per_user = 0;        // 0 = no per-user limit (extension)
  // A client asking for a replication connection (startup parameter replication=database/true)
  // is refused unless this is set; then it is passed through to the authoritative store only.
  bool allow_replication_connections = false;
  StoreConfig old_store;                 // stores.old — required
  std::optional<StoreConfig> new_store;  // stores.new — optional for pass-through
  AuthConfig auth;
  TlsConfig tls;
  FlagsConfig flags;
  CompareConfig compare;
  VerifyConfig verify;
  AutoRollbackConfig auto_rollback;
  std::string journal_dir = "journal/";
  AdminConfig admin;

  // Extensions beyond DESIGN.md's example (see docs/configuration.md):
  int login_timeout_ms = 60000;  // client must finish startup+auth within this
                                 // (PostgreSQL's authentication_timeout)
  int connect_timeout_ms = 5000;       // TCP connect + login to a store
  int shutdown_timeout_ms = 30000;     // SIGTERM: how long sessions may finish before closing
  // The longest the secondary may take over a mirrored write (sync: the client's extra wait; async:
  // one queued write) before the miss is journaled and the session goes on without it.
  int mirror_timeout_ms = 5000;
  // A read served by the store that is not authoritative (the read ramp) that has sent the client
  // nothing after this long is cancelled there and served by the authoritative store instead;
  // 0 = wait as long as it takes.
  int ramp_read_timeout_ms = 5000;
  // mirror: async, per session: writes acknowledged and not yet applied on the secondary. Beyond
  // either bound a write is not queued: it is journaled as a divergence (queue_full).
  int mirror_queue_units = 10000;
  int mirror_queue_bytes = 16 << 20;
  uint32_t max_message_bytes = 1u << 30;  // after authentication (PostgreSQL's own ceiling)
  std::string log_level = "info";         // debug|info|warn|error
};

// Looks up an environment variable by name; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Reads, parses and validates a config file. Errors read "<path>:<line>: <key.path>: <what to
// do>". `env` defaults to getenv. Relative paths inside the file (password_file, token_file)
// are resolved against the process's working directory.
Result<Config> loadFile(const std::string& path, const EnvLookup& env = {});
// Same, from text already in memory; `source_name` prefixes every error message.
Result<Config> loadString(std::string_view yaml, std::string_view source_name,
                          const EnvLookup& env = {});

}  // namespace cutover::config
