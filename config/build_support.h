#pragma once

#include <map>
#include <optional>
#include <string>

#include "config/config.h"

namespace cutover::config {

// A setting this build parses but cannot honour yet.
struct BuildRefusal {
  std::string key_path;  // "flags.writes", "flags.tables.orders", "stores.new.sslmode"
  std::string message;   // what is missing and what to set instead
};

// The flag values a snapshot carries (the config's initial flags, or a PUT /flags body).
struct FlagValues {
  WritesMode writes = WritesMode::Old;
  MirrorMode mirror = MirrorMode::Sync;
  int reads_new_percent = 0;
  int shadow_percent = 0;
  const std::map<std::string, TableFlags>* tables = nullptr;
};

// THE ONE PLACE that lists what this build refuses of the flags (two-phase commit, async mirror
// of dual writes), and routing (or shadowing) to a new store that is not configured. Settings it
// cannot honour are refused rather than silently ignored; each feature's work removes its own
// check. `key_path` is relative to the flags ("mirror", "tables.orders.shadow_percent").
std::optional<BuildRefusal> checkFlagsSupported(const FlagValues& flags, bool new_store_configured);

// checkFlagsSupported for the config's flags, key paths under "flags.". The loader adds the file
// and line of `key_path` to the message.
std::optional<BuildRefusal> checkSupportedByThisBuild(const Config& config);

}  // namespace cutover::config
