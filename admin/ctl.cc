#include "admin/ctl.h"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>

#include "admin/ctl_output.h"
#include "admin/http_client.h"

namespace cutover::admin {

const char* const kCtlUsage =
    "usage: cutover ctl [options] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  flags                 show the flags (GET /flags)\n"
    "  set KEY=VALUE...      change flags (PUT /flags), e.g.\n"
    "                          set writes=dual reads_new_percent=10\n"
    "                          set tables.orders.reads_new_percent=50\n"
    "                          set tables.orders.writes=     (empty: clear the table's override)\n"
    "                        --force --reason TEXT: past the read-ramp gate\n"
    "                        (verify.require_for_ramp), recorded in the audit\n"
    "  rollback [--force]    reads and authority back to old (POST /rollback); --force is needed\n"
    "                        once writes is 'new' (past the point of no return)\n"
    "  status                stores, sessions, flag version, divergences, last verify\n"
    "                        (GET /status)\n"
    "\n"
    "options (before or after the command):\n"
    "  --admin URL           the proxy's admin API, as admin.listen in its config\n"
    "                        (default http://127.0.0.1:9187); https://host:port when\n"
    "                        its config has admin.tls\n"
    "  --cacert FILE         https: trust the CA certificate(s) in FILE (PEM) instead of\n"
    "                        the system's; the certificate must also name the URL's host\n"
    "  --insecure            https: do not verify the certificate or the host name\n"
    "  --token T             bearer token for set and rollback; else --token-file F,\n"
    "  --token-file F        else $CUTOVER_ADMIN_TOKEN\n"
    "  --reason TEXT         recorded with the change (default \"cutover ctl by $USER\")\n"
    "  --json                print the server's JSON answer as it came\n"
    "\n"
    "exit codes: 0 ok, 1 refused by the server, 2 usage error, 3 admin API unreachable\n"
    "            (or its TLS certificate not trusted)\n";

namespace {

using nlohmann::json;

bool isIntegerKey(std::string_view key) {
  return key == "reads_new_percent" || key == "shadow_percent" || key == "version";
}

bool takesValue(std::string_view option) {
  return option == "--admin" || option == "--token" || option == "--token-file" || option == "--reason" ||
         option == "--cacert";
}

std::vector<std::string> splitKey(std::string_view key) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    segments.emplace_back(key.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return segments;
    start = dot + 1;
  }
}

Result<json> parseValue(std::string_view key, std::string_view field, std::string_view value,
                        std::string_view argument) {
  if (!isIntegerKey(field)) return json(std::string(value));
  int64_t number = 0;
  const char* end = value.data() + value.size();
  auto [at, ec] = std::from_chars(value.data(), end, number);
  if (value.empty() || ec != std::errc() || at != end) {
    return Status::error(fmt::format("set: '{}': {} needs an integer, e.g. {}=10", argument, key, key));
  }
  return json(number);
}

std::string lowerCase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string envOr(const config::EnvLookup& env, const char* name, std::string fallback) {
  auto value = env(name);
  return value && !value->empty() ? *value : fallback;
}

// The server's `error` text, else its body (shortened), else a placeholder.
std::string refusalText(const HttpReply& reply) {
  json parsed = json::parse(reply.body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  std::string body = reply.body;
  while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
  if (body.empty()) return "(no message)";
  if (body.size() > 500) body = body.substr(0, 500) + "...";
  return body;
}

std::string refusalHint(int status, const CtlToken& token, const std::string& method, const std::string& target) {
  switch (status) {
    case 401:
      if (token.value.empty()) {
        return "no admin token given: pass --token T or --token-file F, or set CUTOVER_ADMIN_TOKEN, "
               "to the token the proxy reads from its admin.token_env or admin.token_file";
      }
      return fmt::format("the admin token (from {}) is wrong: it must equal the token the proxy reads "
                         "from its admin.token_env or admin.token_file",
                         token.source);
    case 403:
      return "the proxy has no admin token configured, so it refuses every change: set admin.token_env "
             "or admin.token_file in its config and restart it";
    case 404:
    case 405:  // the path exists for other methods (GET /flags before PUT /flags)
      return fmt::format("this proxy's admin API does not serve {} {} (an older cutover build?)", method, target);
    default:
      return "";
  }
}

// Why ctl got no answer, and what to check, by the kind of failure.
std::string unreachableText(HttpFailure failure, const CtlOptions& options, const AdminAddress& address,
                            const std::string& error) {
  const std::string& url = options.admin;
  switch (failure) {
    case HttpFailure::CertificateUntrusted:
      return fmt::format(
          "cutover ctl: the admin API at {} is not trusted ({}): {}, or pass --insecure to skip the check\n", url,
          error,
          options.cacert ? fmt::format("check that --cacert {} holds the CA that signed the certificate in the "
                                       "proxy's admin.tls.cert_file",
                                       *options.cacert)
                         : "pass --cacert FILE with the CA that signed the certificate in the proxy's "
                           "admin.tls.cert_file (the system's trust store was used)");
    case HttpFailure::HostNameMismatch:
      return fmt::format(
          "cutover ctl: the admin API's certificate at {} does not name '{}' ({}): use a host name or address "
          "the certificate lists in its subjectAltName, or pass --insecure to skip the check\n",
          url, address.host, error);
    case HttpFailure::NotTls:
      return fmt::format(
          "cutover ctl: the admin API at {} does not speak TLS ({}): without admin.tls in the proxy's config it "
          "serves plain HTTP; use http://{}\n",
          url, error, url.substr(url.find("://") + 3));
    case HttpFailure::NoHttpAnswer:
      if (!address.tls) {
        return fmt::format(
            "cutover ctl: no HTTP answer from the admin API at {} ({}): if the proxy's config has admin.tls, "
            "use https://\n",
            url, error);
      }
      break;
    default:
      break;
  }
  return fmt::format(
      "cutover ctl: cannot reach the admin API at {} ({}): check admin.listen in the proxy's config "
      "(the admin section must be present) and that the proxy is running, or pass --admin URL\n",
      url, error);
}

// A request body as text. Arguments come from a terminal and may not be UTF-8 (a Latin-1
// locale); nlohmann refuses to write such a string, and so does the server's parser.
Result<std::string> bodyText(const json& body) {
  try {
    return body.dump();
  } catch (const json::exception&) {
    return Status::error("the arguments are not valid UTF-8 (check the terminal's locale)");
  }
}

}  // namespace

Result<CtlOptions> parseCtlArgs(const std::vector<std::string>& args) {
  CtlOptions options;
  std::vector<std::string> positional;
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      options.help = true;
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    if (takesValue(name)) {
      std::string value;
      if (inline_value) {
        value = *inline_value;
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return Status::error(fmt::format("{} needs a value", name));
      }
      if (name == "--admin") options.admin = value;
      if (name == "--token") options.token = value;
      if (name == "--token-file") options.token_file = value;
      if (name == "--reason") options.reason = value;
      if (name == "--cacert") options.cacert = value;
    } else if (name == "--json" || name == "--force" || name == "--insecure") {
      if (inline_value) return Status::error(fmt::format("{} takes no value", name));
      (name == "--json" ? options.json : name == "--force" ? options.force : options.insecure) = true;
    } else {
      return Status::error(fmt::format("unknown option '{}'", arg));
    }
  }
  if (options.help) return options;

  if (positional.empty()) return Status::error("a command is needed: flags, set, rollback or status");
  const std::string& command = positional.front();
  static const std::map<std::string, CtlCommand, std::less<>> kCommands = {
      {"flags", CtlCommand::Flags},
      {"set", CtlCommand::Set},
      {"rollback", CtlCommand::Rollback},
      {"status", CtlCommand::Status}};
  auto found = kCommands.find(command);
  if (found == kCommands.end()) {
    return Status::error(fmt::format("unknown command '{}' (flags, set, rollback or status)", command));
  }
  options.command = found->second;
  if (options.command == CtlCommand::Set) {
    options.assignments.assign(positional.begin() + 1, positional.end());
    if (options.assignments.empty()) {
      return Status::error("set needs at least one KEY=VALUE, e.g. set reads_new_percent=10");
    }
  } else if (positional.size() > 1) {
    return Status::error(fmt::format("{} takes no arguments (got '{}')", command, positional[1]));
  }
  if (options.force && options.command != CtlCommand::Rollback && options.command != CtlCommand::Set) {
    return Status::error("--force only applies to set (past the read-ramp gate) and rollback");
  }
  if (options.force && options.command == CtlCommand::Set && (!options.reason || options.reason->empty())) {
    return Status::error("set --force needs --reason TEXT: why the read-ramp gate is overridden (it is audited)");
  }
  if (options.cacert && options.insecure) {
    return Status::error("give --cacert FILE (verify with that CA) or --insecure (do not verify), not both");
  }
  if (options.cacert && options.cacert->empty()) return Status::error("--cacert needs a file name");
  return options;
}

Result<AdminAddress> parseAdminUrl(std::string_view url) {
  const std::string lower = lowerCase(url);
  AdminAddress address;
  std::string_view rest = url;
  if (lower.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (lower.starts_with("https://")) {
    rest.remove_prefix(8);
    address.tls = true;
  } else if (lower.find("://") != std::string::npos) {
    return Status::error(fmt::format("--admin '{}': only http://host:port or https://host:port is supported", url));
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return Status::error(fmt::format("--admin '{}': give only {}://host:port (no path or user)", url,
                                     address.tls ? "https" : "http"));
  }

  std::string_view port;
  if (rest.starts_with('[')) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return Status::error(fmt::format("--admin '{}': unclosed '['", url));
    address.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      return Status::error(fmt::format("--admin '{}': expected ':port' after ']'", url));
    }
    if (!after.empty()) port = after.substr(1);
    if (after == ":") return Status::error(fmt::format("--admin '{}': the port is empty", url));
  } else {
    size_t colon = rest.find(':');
    if (colon != std::string_view::npos && rest.find(':', colon + 1) != std::string_view::npos) {
      return Status::error(fmt::format("--admin '{}': put an IPv6 address in brackets: http://[::1]:9187", url));
    }
    address.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = rest.substr(colon + 1);
      if (port.empty()) return Status::error(fmt::format("--admin '{}': the port is empty", url));
    }
  }
  if (address.host.empty()) return Status::error(fmt::format("--admin '{}': no host", url));
  if (port.empty()) {
    address.port = address.tls ? 443 : 80;
  } else {
    unsigned number = 0;
    auto [at, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (ec != std::errc() || at != port.data() + port.size() || number == 0 || number > 65535) {
      return Status::error(fmt::format("--admin '{}': the port must be a number from 1 to 65535", url));
    }
    address.port = static_cast<uint16_t>(number);
  }
  return address;
}

Result<json> buildSetBody(const std::vector<std::string>& assignments, const std::string& reason) {
  json body = json::object();
  // Every key path set so far, to refuse the same one twice (and a dropped table's keys).
  std::map<std::string, std::string> given;  // path -> the argument that set it
  for (const std::string& argument : assignments) {
    size_t eq = argument.find('=');
    if (eq == std::string::npos) {
      return Status::error(fmt::format("set: '{}' is not KEY=VALUE", argument));
    }
    std::string key = argument.substr(0, eq);
    std::string_view value = std::string_view(argument).substr(eq + 1);
    std::vector<std::string> segments = splitKey(key);
    if (std::any_of(segments.begin(), segments.end(), [](const std::string& s) { return s.empty(); })) {
      return Status::error(fmt::format("set: '{}': '{}' is not a key", argument, key));
    }
    auto remember = [&](const std::string& path) -> Status {
      auto [it, inserted] = given.emplace(path, argument);
      if (!inserted) return Status::error(fmt::format("set: '{}' and '{}' set the same key", it->second, argument));
      return Status::ok();
    };

    if (segments.front() != "tables") {
      if (segments.size() > 1) {
        return Status::error(fmt::format("set: '{}': only tables.TABLE.KEY keys are nested", argument));
      }
      if (key == "reason") return Status::error("set: give the reason with --reason TEXT");
      if (value.empty()) {
        return Status::error(fmt::format(
            "set: '{}' has no value (only a table override can be cleared with an empty value)", argument));
      }
      auto parsed = parseValue(key, key, value, argument);
      if (!parsed.isOk()) return parsed.status();
      if (Status s = remember(key); !s.isOk()) return s;
      body[key] = parsed.value();
      continue;
    }

    if (segments.size() == 1) {
      return Status::error(fmt::format(
          "set: '{}': name a table and a key: tables.TABLE.KEY=VALUE (e.g. tables.orders.reads_new_percent=50)",
          argument));
    }
    json& tables = body["tables"];
    if (segments.size() == 2) {
      const std::string& table = segments[1];
      if (!value.empty()) {
        return Status::error(fmt::format(
            "set: '{}': name a key (tables.{}.reads_new_percent=50), or leave the value empty to drop "
            "every override of {}",
            argument, table, table));
      }
      if (Status s = remember("tables." + table); !s.isOk()) return s;
      if (tables.contains(table)) {
        return Status::error(fmt::format("set: '{}' drops every override of {}; do not also set one", argument, table));
      }
      tables[table] = nullptr;
      continue;
    }
    // The key is the last segment; the table name is everything between (it may hold dots).
    const std::string& field = segments.back();
    std::string table = key.substr(7, key.size() - 7 - field.size() - 1);
    if (tables.contains(table) && tables[table].is_null()) {
      return Status::error(fmt::format("set: '{}' drops every override of {}; do not also set one",
                                       given["tables." + table], table));
    }
    if (Status s = remember("tables." + table + "\n" + field); !s.isOk()) return s;
    if (value.empty()) {
      tables[table][field] = nullptr;
    } else {
      auto parsed = parseValue(key, field, value, argument);
      if (!parsed.isOk()) return parsed.status();
      tables[table][field] = parsed.value();
    }
  }
  body["reason"] = reason;
  return body;
}

Result<CtlToken> resolveToken(const CtlOptions& options, const config::EnvLookup& env) {
  if (options.token) return CtlToken{*options.token, "--token"};
  if (options.token_file) {
    std::ifstream file(*options.token_file, std::ios::binary);
    if (!file) return Status::error(fmt::format("--token-file {}: cannot read it", *options.token_file));
    std::ostringstream content;
    content << file.rdbuf();
    std::string token = content.str();
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
    if (token.empty()) return Status::error(fmt::format("--token-file {}: the file is empty", *options.token_file));
    return CtlToken{token, "--token-file " + *options.token_file};
  }
  if (auto value = env(kCtlTokenEnv); value && !value->empty()) {
    return CtlToken{*value, std::string("$") + kCtlTokenEnv};
  }
  return CtlToken{};
}

std::string resolveReason(const CtlOptions& options, const config::EnvLookup& env) {
  if (options.reason) return *options.reason;
  return "cutover ctl by " + envOr(env, "USER", envOr(env, "LOGNAME", "an unknown user"));
}

int runCtl(const std::vector<std::string>& args, const CtlEnvironment& environment) {
  std::ostream& out = environment.out;
  std::ostream& err = environment.err;
  config::EnvLookup env = environment.env;
  if (!env) {
    env = [](const std::string& name) -> std::optional<std::string> {
      if (const char* value = std::getenv(name.c_str())) return std::string(value);
      // No $USER (containers, cron, sudo -i): the default reason still names the account.
      if (const passwd* account = name == "USER" ? ::getpwuid(::getuid()) : nullptr; account && account->pw_name) {
        return std::string(account->pw_name);
      }
      return std::nullopt;
    };
  }
  auto usageError = [&](const std::string& message) {
    err << "cutover ctl: " << message << "\n(cutover ctl --help lists commands and options)\n";
    return kCtlExitUsage;
  };

  auto parsed = parseCtlArgs(args);
  if (!parsed.isOk()) return usageError(parsed.status().message());
  const CtlOptions& options = parsed.value();
  if (options.help) {
    out << kCtlUsage;
    return kCtlExitOk;
  }
  auto address = parseAdminUrl(options.admin);
  if (!address.isOk()) return usageError(address.status().message());
  if (!address->tls && (options.cacert || options.insecure)) {
    return usageError(fmt::format("{} only applies to an https:// --admin URL (got '{}')",
                                  options.cacert ? "--cacert" : "--insecure", options.admin));
  }

  HttpRequest request;
  request.host = address->host;
  request.port = address->port;
  request.tls = address->tls;
  request.ca_file = options.cacert.value_or("");
  request.verify = !options.insecure;
  CtlToken token;
  const bool mutating = options.command == CtlCommand::Set || options.command == CtlCommand::Rollback;
  if (mutating) {
    auto resolved = resolveToken(options, env);
    if (!resolved.isOk()) return usageError(resolved.status().message());
    token = resolved.value();
    request.bearer_token = token.value;
  }
  const std::string reason = resolveReason(options, env);
  json body;
  switch (options.command) {
    case CtlCommand::Flags:
      request.method = "GET";
      request.target = "/flags";
      break;
    case CtlCommand::Status:
      request.method = "GET";
      request.target = "/status";
      break;
    case CtlCommand::Set: {
      auto built = buildSetBody(options.assignments, reason);
      if (!built.isOk()) return usageError(built.status().message());
      body = std::move(built.value());
      if (options.force) body["force"] = true;
      request.method = "PUT";
      request.target = "/flags";
      break;
    }
    case CtlCommand::Rollback:
      request.method = "POST";
      request.target = "/rollback";
      body = json{{"reason", reason}, {"force", options.force}};
      break;
  }
  if (!body.is_null()) {
    auto text = bodyText(body);
    if (!text.isOk()) return usageError(text.status().message());
    request.body = std::move(text.value());
  }

  if (options.insecure) {
    err << "cutover ctl: warning: --insecure: the admin API's certificate is not verified; anyone on the "
           "path could read the token and change the flags\n";
  }
  HttpFailure failure = HttpFailure::None;
  auto reply = sendHttpRequest(request, environment.timeout, &failure);
  if (!reply.isOk()) {
    if (failure == HttpFailure::Setup) {
      if (options.cacert) return usageError(fmt::format("--cacert {}: {}", *options.cacert, reply.status().message()));
      return usageError(reply.status().message());
    }
    err << unreachableText(failure, options, *address, reply.status().message());
    return kCtlExitUnreachable;
  }
  const std::string what = request.method + " " + request.target;
  if (reply->status < 200 || reply->status > 299) {
    err << fmt::format("cutover ctl: {} refused ({}): {}\n", what, reply->status, refusalText(*reply));
    if (auto hint = refusalHint(reply->status, token, request.method, request.target); !hint.empty()) {
      err << "cutover ctl: " << hint << "\n";
    }
    return kCtlExitRefused;
  }
  json answer = json::parse(reply->body, nullptr, false);
  if (answer.is_discarded()) {
    err << fmt::format("cutover ctl: {} answered {} with a body that is not JSON: {}\n", what, reply->status,
                       refusalText(*reply));
    return kCtlExitRefused;
  }
  if (options.json) {
    out << reply->body;
    if (!reply->body.ends_with('\n')) out << '\n';
    return kCtlExitOk;
  }
  switch (options.command) {
    case CtlCommand::Flags:
    case CtlCommand::Set:
      out << renderFlags(answer);
      break;
    case CtlCommand::Status:
      out << renderStatus(answer);
      break;
    case CtlCommand::Rollback:
      out << renderRollback(answer);
      break;
  }
  return kCtlExitOk;
}

}  // namespace cutover::admin
