#pragma once

#include <optional>
#include <string>

#include "config/config.h"

namespace cutover::config {

// A setting this build parses but cannot honour yet.
struct BuildRefusal {
  std::string key_path;  // "flags.writes", "flags.tables.orders", "stores.new.sslmode"
  std::string message;   // what is missing and what to set instead
};

// THE ONE PLACE that lists what this build refuses (pass-through only: no dual writes, reads
// ramp, shadow reads, per-table rules, two-phase commit, client authentication, client TLS,
// TLS to stores). Settings it cannot honour are refused here rather than silently ignored;
// each feature's work removes its own check from this function.
// The loader adds the file and line of `key_path` to the message.
std::optional<BuildRefusal> checkSupportedByThisBuild(const Config& config);

}  // namespace cutover::config
