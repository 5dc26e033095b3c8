#include "pgclient/conninfo.h"

#include <fmt/format.h>

namespace cutover::pgclient {

ConnectParams& ConnectParams::set(std::string_view key, std::string value) {
  for (auto& [k, v] : params_) {
    if (k == key) {
      v = std::move(value);
      return *this;
    }
  }
  params_.emplace_back(std::string(key), std::move(value));
  return *this;
}

ConnectParams& ConnectParams::setting(std::string_view name, std::string_view value) {
  std::string options = get("options");
  if (!options.empty()) options += ' ';
  // libpq splits options on spaces; a backslash keeps one in a value.
  std::string escaped;
  for (char c : value) {
    if (c == ' ' || c == '\\') escaped += '\\';
    escaped += c;
  }
  options += fmt::format("-c {}={}", name, escaped);
  return set("options", std::move(options));
}

const std::string& ConnectParams::get(std::string_view key) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : params_) {
    if (k == key) return v;
  }
  return kEmpty;
}

std::string ConnectParams::describe() const {
  return fmt::format("{}:{}/{}", get("host"), get("port"), get("dbname"));
}

std::string ConnectParams::toString() const {
  std::string out;
  for (const auto& [k, v] : params_) {
    if (k == "password") continue;
    if (!out.empty()) out += ' ';
    out += fmt::format("{}={}", k, v);
  }
  return out;
}

std::vector<const char*> ConnectParams::keywords() const {
  std::vector<const char*> out;
  out.reserve(params_.size() + 1);
  for (const auto& [k, v] : params_) out.push_back(k.c_str());
  out.push_back(nullptr);
  return out;
}

std::vector<const char*> ConnectParams::values() const {
  std::vector<const char*> out;
  out.reserve(params_.size() + 1);
  for (const auto& [k, v] : params_) out.push_back(v.c_str());
  out.push_back(nullptr);
  return out;
}

ConnectParams paramsFor(const config::StoreConfig& store, std::string_view application_name,
                        const std::string& database) {
  ConnectParams params;
  params.set("host", store.host);
  params.set("port", std::to_string(store.port));
  params.set("dbname", !database.empty() ? database : store.database.value_or("postgres"));
  if (store.user) params.set("user", *store.user);
  if (store.password) params.set("password", *store.password);
  params.set("sslmode", std::string(config::toString(store.sslmode)));
  if (!store.sslrootcert.empty()) params.set("sslrootcert", store.sslrootcert);
  params.set("application_name", std::string(application_name));
  return params;
}

ConnectParams paramsFor(const config::ControlConfig& control, std::string_view application_name) {
  ConnectParams params;
  params.set("host", control.host);
  params.set("port", std::to_string(control.port));
  params.set("dbname", control.database);
  if (control.user) params.set("user", *control.user);
  if (control.password) params.set("password", *control.password);
  params.set("sslmode", std::string(config::toString(control.sslmode)));
  if (!control.sslrootcert.empty()) params.set("sslrootcert", control.sslrootcert);
  params.set("application_name", std::string(application_name));
  return params;
}

config::ControlConfig controlFor(const config::Config& config) {
  return config.flags.control ? *config.flags.control : config::controlFromOldStore(config.old_store);
}

}  // namespace cutover::pgclient
