#pragma once

// `cutover ctl`: the operator's client for the admin HTTP API (DESIGN.md "Interfaces").
//
//   cutover ctl [--admin URL] [--cacert F] [--insecure] [--token T] [--token-file F] [--reason TEXT]
//               [--json] COMMAND ...
//     flags              GET /flags
//     set KEY=VALUE...   PUT /flags with a partial body
//     rollback [--force] POST /rollback
//     status             GET /status
//
// Exit codes: 0 ok, 1 the server refused (4xx/5xx), 2 usage error, 3 admin API unreachable (TLS
// failures included: an untrusted certificate, a wrong host name, TLS to a plain-HTTP port).

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/config.h"

namespace cutover::admin {

enum class CtlCommand { Flags, Set, Rollback, Status };

enum CtlExit : int { kCtlExitOk = 0, kCtlExitRefused = 1, kCtlExitUsage = 2, kCtlExitUnreachable = 3 };

constexpr const char* kCtlDefaultAdmin = "http://127.0.0.1:9187";
constexpr const char* kCtlTokenEnv = "CUTOVER_ADMIN_TOKEN";

struct CtlOptions {
  CtlCommand command = CtlCommand::Flags;
  bool help = false;  // -h/--help: print the usage, nothing else is checked
  std::string admin = kCtlDefaultAdmin;
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> reason;
  std::optional<std::string> cacert;  // https: the CA file to verify the server with
  bool insecure = false;              // https: skip certificate and host name verification
  bool json = false;   // print the server's JSON as received
  bool force = false;  // rollback past the point of no return; set past the read-ramp gate
  std::vector<std::string> assignments;  // set's KEY=VALUE arguments, as given
};

// The arguments after `ctl`. Options may come before or after the command; `--opt=value` and
// `--opt value` both work; `--` ends the options. The error names the offending argument.
// --cacert and --insecure exclude each other (checked here) and need an https:// --admin
// (checked by runCtl, since --admin may come later).
Result<CtlOptions> parseCtlArgs(const std::vector<std::string>& args);

struct AdminAddress {
  std::string host;  // without IPv6 brackets
  uint16_t port = 0;
  bool tls = false;  // https://
};

// `http://host:port` or `https://host:port` (a trailing "/" is allowed; no port means 80 or 443)
// or a bare `host:port` (plain HTTP). Other schemes and paths are refused with a message saying
// what to do.
Result<AdminAddress> parseAdminUrl(std::string_view url);

// PUT /flags's body from `set`'s KEY=VALUE arguments plus "reason". Integer keys
// (reads_new_percent, shadow_percent, version) must be integers; other values are strings;
// `tables.T.K=V` nests as {"tables":{"T":{"K":V}}} (K is the last segment, so T may hold dots:
// "public.orders"); an empty value of a table key is null (it clears the override), and
// `tables.T=` (T without dots) drops all of T's overrides. The same key twice, a key without a value and `reason=` (use
// --reason) are errors; unknown keys are left for the server to judge.
Result<nlohmann::json> buildSetBody(const std::vector<std::string>& assignments, const std::string& reason);

struct CtlToken {
  std::string value;   // "" when none was given
  std::string source;  // for messages: "--token", "--token-file F", "$CUTOVER_ADMIN_TOKEN", ""
};

// --token, else --token-file's content (trailing whitespace trimmed), else $CUTOVER_ADMIN_TOKEN.
// Errors: an unreadable or empty token file.
Result<CtlToken> resolveToken(const CtlOptions& options, const config::EnvLookup& env);

// --reason, else "cutover ctl by $USER" (runCtl's default environment answers USER from the
// password database when the variable is unset).
std::string resolveReason(const CtlOptions& options, const config::EnvLookup& env);

// What runCtl needs from the outside world (tests pass their own).
struct CtlEnvironment {
  std::ostream& out;
  std::ostream& err;
  config::EnvLookup env;  // empty = getenv (USER falls back to the password database)
  std::chrono::milliseconds timeout{10000};  // connect + request + answer
};

// Runs `cutover ctl` with the arguments after `ctl`; returns the exit code.
int runCtl(const std::vector<std::string>& args, const CtlEnvironment& environment);

extern const char* const kCtlUsage;

}  // namespace cutover::admin
