// cutover.yaml -> Config: every key is read through MapReader, so unknown keys, wrong types and
// out-of-range values are reported with file, line and key path. yaml-cpp exceptions stop here.

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>

#include "common/log.h"
#include "config/build_support.h"
#include "config/config.h"
#include "config/secrets.h"
#include "config/yaml_reader.h"

namespace cutover::config {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
constexpr double kUnbounded = std::numeric_limits<double>::infinity();
constexpr int64_t kMaxWorkers = 256;
// PostgreSQL refuses messages of 1 GB and more (PQ_LARGE_MESSAGE_LIMIT); below 1 KiB ordinary
// queries would not fit.
constexpr int64_t kMinMessageBytes = 1024;
constexpr int64_t kMaxMessageBytes = int64_t{1} << 30;

// A string that must not be empty when given (paths, names).
void readName(MapReader& map, std::string_view key, std::string& out) {
  auto value = map.string(key);
  if (!value) return;
  if (value->empty()) {
    map.fail(key, "must not be empty; remove the key to use the default");
    return;
  }
  out = *value;
}

void readName(MapReader& map, std::string_view key, std::optional<std::string>& out) {
  std::string value;
  readName(map, key, value);
  if (!value.empty()) out = std::move(value);
}

template <typename T>
void readInt(MapReader& map, std::string_view key, int64_t min, int64_t max, T& out) {
  if (auto value = map.integer(key, min, max)) out = static_cast<T>(*value);
}

void readNumber(MapReader& map, std::string_view key, double min, double max, double& out) {
  if (auto value = map.number(key, min, max)) out = *value;
}

template <typename E>
void readChoice(MapReader& map, std::string_view key, std::span<const EnumName<E>> names,
                E& out) {
  if (auto value = map.choice<E>(key, names)) out = *value;
}

// "host:port" or "[v6-address]:port".
void readHostPort(MapReader& map, std::string_view key, HostPort& out) {
  auto text = map.string(key);
  if (!text) return;
  std::string host;
  std::string_view port;
  std::string_view rest = *text;
  if (rest.starts_with('[')) {
    auto close = rest.find(']');
    if (close != std::string_view::npos && rest.substr(close + 1).starts_with(':')) {
      host = std::string(rest.substr(1, close - 1));
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = std::string(rest.substr(0, colon));
    port = rest.substr(colon + 1);
    if (host.find(':') != std::string::npos) host.clear();  // bare IPv6 needs brackets
  }
  if (host.empty() || port.empty()) {
    map.fail(key, fmt::format("'{}' must be host:port, e.g. 127.0.0.1:6432 (IPv6: [::1]:6432)",
                              *text));
    return;
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535) {
    map.fail(key, fmt::format("port '{}' in '{}' must be a number from 1 to 65535", port, *text));
    return;
  }
  out.host = std::move(host);
  out.port = static_cast<uint16_t>(value);
}

// An inline secret key is refused before the unknown-key check so the message says why.
bool refuseInlineSecret(MapReader& map, std::string_view key, std::string_view env_key,
                        std::string_view file_key) {
  if (!map.has(key)) return true;
  map.fail(key, fmt::format("inline secrets are not accepted; use {} or {}", env_key, file_key));
  return false;
}

// Exactly one of `<env_key>` (a variable's name) and `<file_key>` (a path) may be given.
std::optional<std::string> readSecret(MapReader& map, std::string_view env_key,
                                      std::string_view file_key, const EnvLookup& env) {
  if (map.has(env_key) && map.has(file_key)) {
    map.fail(file_key, fmt::format("give either {} or {}, not both", env_key, file_key));
    return std::nullopt;
  }
  if (auto name = map.string(env_key)) {
    if (name->empty()) {
      map.fail(env_key, "must name an environment variable");
      return std::nullopt;
    }
    auto value = env(*name);
    if (!value) {
      map.fail(env_key, fmt::format("environment variable '{}' is not set; export it or use {}",
                                    *name, file_key));
      return std::nullopt;
    }
    if (value->empty()) {
      map.fail(env_key, fmt::format("environment variable '{}' is empty", *name));
      return std::nullopt;
    }
    return value;
  }
  if (auto path = map.string(file_key)) {
    auto secret = readSecretFile(*path);
    if (!secret) {
      map.fail(file_key, secret.status().message());
      return std::nullopt;
    }
    return std::move(*secret);
  }
  return std::nullopt;
}

void readStore(MapReader& map, const std::string& name, const EnvLookup& env,
               StoreConfig& store) {
  store.name = name;
  if (!refuseInlineSecret(map, "password", "password_env", "password_file")) return;
  if (!map.checkKeys({"host", "port", "user", "database", "password_env", "password_file",
                      "sslmode", "sslrootcert"})) {
    return;
  }
  readName(map, "host", store.host);
  readInt(map, "port", 1, 65535, store.port);
  readName(map, "user", store.user);
  readName(map, "database", store.database);
  store.password = readSecret(map, "password_env", "password_file", env);
  readChoice<SslMode>(map, "sslmode", kSslModeNames, store.sslmode);
  readName(map, "sslrootcert", store.sslrootcert);
}

void readStores(MapReader& root, const EnvLookup& env, Config& config) {
  auto stores = root.section("stores");
  if (!stores) {
    root.fail("stores",
              "required section is missing; add 'stores: { old: { host: ..., port: ... } }' "
              "naming the current database server");
    return;
  }
  if (!stores->checkKeys({"old", "new"})) return;
  auto old_store = stores->section("old");
  if (!old_store) {
    stores->fail("old", "required; give the current (old) store's host and port");
    return;
  }
  readStore(*old_store, "old", env, config.old_store);
  if (auto new_store = stores->section("new")) {
    config.new_store.emplace();
    readStore(*new_store, "new", env, *config.new_store);
  } else if (stores->has("new")) {
    stores->fail("new", "no settings given; remove the key or give the new store's host and port");
  }
}

void readAuth(MapReader& root, Config& config, const EnvLookup& env) {
  auto auth = root.section("auth");
  if (!auth || !auth->checkKeys({"method", "users_file", "query", "query_user", "query_password_env",
                                 "query_password_file", "query_database", "query_ttl_s"})) {
    return;
  }
  readChoice<AuthMethod>(*auth, "method", kAuthMethodNames, config.auth.method);
  readName(*auth, "users_file", config.auth.users_file);
  if (!auth->has("query")) {
    for (const char* key : {"query_user", "query_password_env", "query_password_file", "query_database", "query_ttl_s"}) {
      if (auth->has(key)) auth->fail(key, "only meaningful with auth.query; add the query or remove this key");
    }
    return;
  }
  AuthQueryConfig query;
  readName(*auth, "query", query.query);
  if (!query.query.empty() && query.query.find("$1") == std::string::npos) {
    auth->fail("query", "must take the user name as $1, e.g. SELECT rolpassword FROM pg_authid WHERE rolname = $1");
  }
  readName(*auth, "query_user", query.user);
  query.password = readSecret(*auth, "query_password_env", "query_password_file", env);
  readName(*auth, "query_database", query.database);
  readInt(*auth, "query_ttl_s", 1, 86400, query.ttl_s);
  config.auth.query = std::move(query);
}

void readTls(MapReader& root, Config& config) {
  auto tls = root.section("tls");
  if (!tls || !tls->checkKeys({"cert_file", "key_file", "mode"})) return;
  readName(*tls, "cert_file", config.tls.cert_file);
  readName(*tls, "key_file", config.tls.key_file);
  readChoice<TlsMode>(*tls, "mode", kTlsModeNames, config.tls.mode);
}

void readTableFlags(MapReader& tables, const std::string& name, TableFlags& out) {
  auto table = tables.section(name);
  if (!table || !table->checkKeys({"reads_new_percent", "shadow_percent", "writes"})) return;
  if (auto v = table->integer("reads_new_percent", 0, 100)) out.reads_new_percent = int(*v);
  if (auto v = table->integer("shadow_percent", 0, 100)) out.shadow_percent = int(*v);
  out.writes = table->choice<WritesMode>("writes", kWritesModeNames);
}

// flags.control, with every omitted key taken from stores.old (read before the flags).
void readControl(MapReader& flags, const StoreConfig& old_store, const EnvLookup& env,
                 ControlConfig& out) {
  out = controlFromOldStore(old_store);
  auto control = flags.section("control");
  if (!control) return;
  if (!refuseInlineSecret(*control, "password", "password_env", "password_file")) return;
  if (!control->checkKeys({"host", "port", "user", "database", "password_env", "password_file",
                           "sslmode", "sslrootcert", "table"})) {
    return;
  }
  readName(*control, "host", out.host);
  readInt(*control, "port", 1, 65535, out.port);
  readName(*control, "user", out.user);
  readName(*control, "database", out.database);
  if (auto password = readSecret(*control, "password_env", "password_file", env)) {
    out.password = std::move(password);
  }
  readChoice<SslMode>(*control, "sslmode", kSslModeNames, out.sslmode);
  readName(*control, "sslrootcert", out.sslrootcert);
  readName(*control, "table", out.table);
  // PostgreSQL would silently truncate a longer name (NAMEDATALEN), table and channel alike.
  if (out.table.size() > 63) {
    control->fail("table", fmt::format("'{}' is {} bytes long; PostgreSQL names are at most 63",
                                       out.table, out.table.size()));
  }
}

void readFlags(MapReader& root, const EnvLookup& env, Config& config) {
  auto flags = root.section("flags");
  if (!flags || !flags->checkKeys({"state_file", "writes", "mirror", "reads_new_percent",
                                   "shadow_percent", "sticky", "tables", "store", "control"})) {
    return;
  }
  FlagsConfig& out = config.flags;
  readName(*flags, "state_file", out.state_file);
  readChoice<WritesMode>(*flags, "writes", kWritesModeNames, out.writes);
  readChoice<MirrorMode>(*flags, "mirror", kMirrorModeNames, out.mirror);
  readInt(*flags, "reads_new_percent", 0, 100, out.reads_new_percent);
  readInt(*flags, "shadow_percent", 0, 100, out.shadow_percent);
  readChoice<Sticky>(*flags, "sticky", kStickyNames, out.sticky);
  readChoice<FlagStoreKind>(*flags, "store", kFlagStoreKindNames, out.store);
  if (out.store == FlagStoreKind::Postgres) {
    readControl(*flags, config.old_store, env, out.control.emplace());
  } else if (flags->has("control")) {
    flags->diagnostics().fail(
        flags->lineOf("control"),
        "flags.control is set but flags.store is file; add 'store: postgres' to use the fleet "
        "flag store, or remove flags.control");
  }
  auto tables = flags->section("tables");
  if (!tables || !tables->checkKeys({})) return;
  for (const std::string& name : tables->keys()) {
    readTableFlags(*tables, name, out.tables[name]);
  }
}

constexpr EnumName<bool> kBoolNames[] = {{true, "true"}, {false, "false"}};

void readBool(MapReader& map, std::string_view key, bool& out) {
  if (auto value = map.choice<bool>(key, kBoolNames)) out = *value;
}

void readCompare(MapReader& root, Config& config) {
  auto compare = root.section("compare");
  if (!compare || !compare->checkKeys({"ignore_columns", "float_tolerance", "recheck", "tables",
                                       "numeric_trailing_zeros", "timestamps_utc",
                                       "timestamp_precision_us", "strict_order", "log_values", "sample_bytes"})) {
    return;
  }
  CompareConfig& out = config.compare;
  if (auto columns = compare->stringList("ignore_columns")) out.ignore_columns = std::move(*columns);
  readNumber(*compare, "float_tolerance", 0, kUnbounded, out.float_tolerance);
  readBool(*compare, "numeric_trailing_zeros", out.numeric_trailing_zeros);
  readBool(*compare, "timestamps_utc", out.timestamps_utc);
  readInt(*compare, "timestamp_precision_us", 1, 60'000'000, out.timestamp_precision_us);  // up to a minute
  readBool(*compare, "strict_order", out.strict_order);
  readBool(*compare, "log_values", out.log_values);
  readInt(*compare, "sample_bytes", 0, 16 << 20, out.sample_bytes);
  if (auto tables = compare->section("tables"); tables && tables->checkKeys({})) {
    for (const std::string& name : tables->keys()) {
      auto table = tables->section(name);
      if (!table || !table->checkKeys({"ignore_columns"})) continue;
      if (auto columns = table->stringList("ignore_columns")) {
        out.tables[name].ignore_columns = std::move(*columns);
      }
    }
  }
  auto recheck = compare->section("recheck");
  if (!recheck || !recheck->checkKeys({"attempts", "delay_ms"})) return;
  readInt(*recheck, "attempts", 0, kIntMax, config.compare.recheck.attempts);
  readInt(*recheck, "delay_ms", 0, kIntMax, config.compare.recheck.delay_ms);
}

void readVerify(MapReader& root, Config& config) {
  auto verify = root.section("verify");
  if (!verify || !verify->checkKeys({"checks", "schemas", "database", "chunk_rows", "require_for_ramp", "max_age_s"})) return;
  VerifyConfig& out = config.verify;
  if (auto schemas = verify->stringList("schemas")) out.schemas = std::move(*schemas);
  if (auto database = verify->string("database")) {
    if (database->empty()) {
      verify->fail("database", "must name a database");
    } else {
      out.database = std::move(*database);
    }
  }
  readInt(*verify, "chunk_rows", 1, 100000000, out.chunk_rows);
  readBool(*verify, "require_for_ramp", out.require_for_ramp);
  readInt(*verify, "max_age_s", 1, 31536000, out.max_age_s);
  auto checks = verify->sectionList("checks");
  if (!checks) return;
  for (MapReader& check : *checks) {
    if (!check.checkKeys({"name", "sql"})) continue;
    auto name = check.string("name");
    auto sql = check.string("sql");
    if (!name || name->empty()) {
      if (!name) check.fail("name", "is required (the check's name in the report)");
      else check.fail("name", "must not be empty");
      continue;
    }
    if (!sql || sql->empty()) {
      if (!sql) check.fail("sql", "is required (a query run on both stores)");
      else check.fail("sql", "must not be empty");
      continue;
    }
    for (const VerifyCheck& earlier : out.checks) {
      if (earlier.name == *name) {
        check.fail("name", fmt::format("'{}' is used by another check", *name));
      }
    }
    out.checks.push_back(VerifyCheck{std::move(*name), std::move(*sql)});
  }
}

void readAutoRollback(MapReader& root, Config& config) {
  auto section = root.section("auto_rollback");
  if (!section || !section->checkKeys({"window_s", "max_mismatch_rate", "max_new_error_rate",
                                       "max_p99_ratio"})) {
    return;
  }
  AutoRollbackConfig& out = config.auto_rollback;
  out.enabled = true;
  readInt(*section, "window_s", 1, kIntMax, out.window_s);
  readNumber(*section, "max_mismatch_rate", 0, 1, out.max_mismatch_rate);
  readNumber(*section, "max_new_error_rate", 0, 1, out.max_new_error_rate);
  // Below 1 the new store would be rolled back for being as fast as the old one.
  readNumber(*section, "max_p99_ratio", 1, kUnbounded, out.max_p99_ratio);
}

// A path that must name a readable, non-empty file (a certificate, a key): checked now so that a
// typo is reported with its line, not when the server starts. Only the first byte is read (a
// private key stays out of this process's memory until OpenSSL loads it).
void readExistingFile(MapReader& map, std::string_view key, std::string& out) {
  readName(map, key, out);
  if (out.empty()) return;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(out.c_str(), "rb"), &std::fclose);
  int first = file ? std::fgetc(file.get()) : EOF;
  if (!file || (first == EOF && std::ferror(file.get()))) {  // a directory opens, then fails with EISDIR
    map.fail(key, fmt::format("cannot read '{}': {}", out, std::strerror(errno)));
  } else if (first == EOF) {
    map.fail(key, fmt::format("'{}' is empty", out));
  }
}

// admin.tls: present (even as `tls:` with every key commented out) means HTTPS, so both files
// are required; a null section must not silently fall back to plain HTTP.
void readAdminTls(MapReader& admin, AdminConfig& out) {
  if (!admin.has("tls")) return;
  AdminTlsConfig tls;
  auto section = admin.section("tls");
  if (!section) {  // null; a value that is not a mapping was reported, and only the first error is kept
    admin.fail("tls", "needs cert_file and key_file (PEM files); remove admin.tls to serve plain HTTP");
    return;
  }
  if (!section->checkKeys({"cert_file", "key_file"})) return;
  for (const char* key : {"cert_file", "key_file"}) {
    if (!section->has(key)) {
      section->fail(key, "required with admin.tls (a PEM file); remove admin.tls to serve plain HTTP");
      return;
    }
  }
  readExistingFile(*section, "cert_file", tls.cert_file);
  readExistingFile(*section, "key_file", tls.key_file);
  out.tls = std::move(tls);
}

void readAdmin(MapReader& root, const EnvLookup& env, Config& config) {
  auto admin = root.section("admin");
  if (!admin) return;
  if (!refuseInlineSecret(*admin, "token", "token_env", "token_file")) return;
  if (!admin->checkKeys({"listen", "token_env", "token_file", "tls"})) return;
  config.admin.enabled = true;
  readHostPort(*admin, "listen", config.admin.listen);
  config.admin.token = readSecret(*admin, "token_env", "token_file", env);
  readAdminTls(*admin, config.admin);
}

void readLogLevel(MapReader& root, Config& config) {
  auto text = root.string("log_level");
  if (!text) return;
  log::Level level;
  if (!log::parseLevel(*text, level)) {
    root.fail("log_level",
              fmt::format("'{}' is not valid (expected one of: debug, info, warn, error)", *text));
    return;
  }
  config.log_level = *text;
}

void readConfig(MapReader& root, const EnvLookup& env, Config& config) {
  if (!root.checkKeys({"listen", "workers", "max_client_connections", "max_connections_per_user",
                       "stores", "auth", "tls",
                       "flags", "compare", "verify", "auto_rollback", "journal_dir", "admin",
                       "login_timeout_ms", "connect_timeout_ms", "shutdown_timeout_ms", "mirror_timeout_ms",
                       "ramp_read_timeout_ms", "mirror_queue_units", "mirror_queue_bytes",
                       "max_message_bytes", "log_level", "allow_replication_connections"})) {
    return;
  }
  readHostPort(root, "listen", config.listen);
  readInt(root, "workers", 0, kMaxWorkers, config.workers);
  readInt(root, "max_client_connections", 1, kIntMax, config.max_client_connections);
  readInt(root, "mirror_timeout_ms", 1, 3600000, config.mirror_timeout_ms);
  readInt(root, "ramp_read_timeout_ms", 0, 3600000, config.ramp_read_timeout_ms);
  readInt(root, "mirror_queue_units", 1, 1000000, config.mirror_queue_units);
  readInt(root, "mirror_queue_bytes", 65536, 1 << 30, config.mirror_queue_bytes);
  readInt(root, "max_connections_per_user", 0, kIntMax, config.max_connections_per_user);
  readStores(root, env, config);
  readAuth(root, config, env);
  readTls(root, config);
  readFlags(root, env, config);
  readCompare(root, config);
  readVerify(root, config);
  readAutoRollback(root, config);
  readName(root, "journal_dir", config.journal_dir);
  readAdmin(root, env, config);
  readInt(root, "login_timeout_ms", 1, kIntMax, config.login_timeout_ms);
  readInt(root, "connect_timeout_ms", 1, kIntMax, config.connect_timeout_ms);
  readInt(root, "shutdown_timeout_ms", 1, kIntMax, config.shutdown_timeout_ms);
  readInt(root, "max_message_bytes", kMinMessageBytes, kMaxMessageBytes,
          config.max_message_bytes);
  readLogLevel(root, config);
  readBool(root, "allow_replication_connections", config.allow_replication_connections);
}

// Settings that depend on each other; run after checkSupportedByThisBuild so nobody is asked
// to complete a setting the build would then refuse.
void checkConsistency(const Config& config, Diagnostics& diag) {
  if (config.auth.method != AuthMethod::Trust && config.auth.users_file.empty() && !config.auth.query) {
    diag.fail(diag.lineOf("auth.method"),
              fmt::format("auth.users_file: required for auth.method '{}'; point it at a file of "
                          "\"name\" \"verifier\" lines, or set auth.query",
                          toString(config.auth.method)));
  }
  if (config.tls.mode != TlsMode::Disable &&
      (config.tls.cert_file.empty() || config.tls.key_file.empty())) {
    diag.fail(diag.lineOf("tls.mode"),
              fmt::format("tls.cert_file and tls.key_file: both required for tls.mode '{}'",
                          toString(config.tls.mode)));
  }
}

std::optional<std::string> getenvLookup(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (!value) return std::nullopt;
  return std::string(value);
}

}  // namespace

Result<Config> loadString(std::string_view yaml, std::string_view source_name,
                          const EnvLookup& env) {
  const EnvLookup& lookup = env ? env : EnvLookup(getenvLookup);
  Diagnostics diag{std::string(source_name)};
  Config config;
  try {
    YAML::Node document = YAML::Load(std::string(yaml));
    if (!document.IsNull() && !document.IsMap()) {
      diag.fail(lineOf(document, 1),
                "the file must be a mapping of keys such as 'listen:' and 'stores:'");
      return diag.status();
    }
    MapReader root(document, "", 1, diag);
    readConfig(root, lookup, config);
  } catch (const YAML::ParserException& e) {
    diag.fail(e.mark.is_null() ? 1 : e.mark.line + 1, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    diag.fail(e.mark.is_null() ? 1 : e.mark.line + 1, std::string("YAML error: ") + e.what());
  }
  if (diag.failed()) return diag.status();

  if (auto refusal = checkSupportedByThisBuild(config)) {
    diag.fail(diag.lineOf(refusal->key_path),
              fmt::format("{}: {}", refusal->key_path, refusal->message));
    return diag.status();
  }
  checkConsistency(config, diag);
  if (diag.failed()) return diag.status();

  if (config.workers == 0) {
    config.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  return config;
}

Result<Config> loadFile(const std::string& path, const EnvLookup& env) {
  auto text = readWholeFile(path);
  if (!text) {
    return Status::error(
        fmt::format("cannot read config file '{}': {}", path, text.status().message()));
  }
  return loadString(*text, path, env);
}

}  // namespace cutover::config
