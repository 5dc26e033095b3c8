#pragma once

// libpq connection parameters built from a store's or the control database's configuration: the
// one place that turns config::StoreConfig / config::ControlConfig into keyword/value pairs.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace cutover::pgclient {

class ConnectParams {
 public:
  ConnectParams() = default;

  // Sets (or replaces) one libpq keyword.
  ConnectParams& set(std::string_view key, std::string value);
  // Appends "-c name=value" to the `options` keyword (server settings for the session).
  ConnectParams& setting(std::string_view name, std::string_view value);
  // The value of a keyword; empty when unset.
  const std::string& get(std::string_view key) const;

  // "host:port/dbname" for messages.
  std::string describe() const;
  // "host=... port=..." (password left out): for logs and tests.
  std::string toString() const;

  // Null-terminated arrays for PQconnectStartParams; valid while this object is unchanged.
  std::vector<const char*> keywords() const;
  std::vector<const char*> values() const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

// One store's host, port, user, password, sslmode and sslrootcert. `database` overrides the
// store's database; when both are empty "postgres" is used. An unset user stays unset (libpq's
// default, the OS user).
ConnectParams paramsFor(const config::StoreConfig& store, std::string_view application_name,
                        const std::string& database = {});
// The control database (flags.control), complete as the loader resolved it.
ConnectParams paramsFor(const config::ControlConfig& control, std::string_view application_name);

// The control database a job uses: flags.control when configured, else the old store's
// database (DESIGN.md "Jobs around the proxy").
config::ControlConfig controlFor(const config::Config& config);

}  // namespace cutover::pgclient
