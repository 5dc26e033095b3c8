#pragma once

#include "common/clock.h"

// The flag set of DESIGN.md "Flags" as one immutable value. A session reads one snapshot per
// transaction (or per statement outside one); nothing in it changes after publication.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/config.h"

namespace cutover::flags {

struct FlagSnapshot {
  uint64_t version = 0;  // 1 for the config's flags; +1 on every publish
  config::WritesMode writes = config::WritesMode::Old;
  config::MirrorMode mirror = config::MirrorMode::Sync;
  int reads_new_percent = 0;
  int shadow_percent = 0;
  config::Sticky sticky = config::Sticky::Session;
  std::map<std::string, config::TableFlags> tables;  // table → overrides (unset = global value)
  std::string changed_at;  // RFC 3339 UTC with ms, "2026-11-21T07:50:01.123Z"
  std::string changed_by;  // "config", "state-file", "admin 127.0.0.1", "auto-rollback", ...
  std::string reason;
};
using FlagSnapshotPtr = std::shared_ptr<const FlagSnapshot>;

// Keys exactly as the YAML names them; table overrides list only the fields they set.
nlohmann::json toJson(const FlagSnapshot& snapshot);

// The inverse of toJson (used for the state file): every flag key is required, unknown keys and
// bad values are errors naming each key. Does not reject values validate() refuses.
Result<FlagSnapshot> fromJson(const nlohmann::json& json);

// Applies a PUT /flags body on top of `base`. Every key is optional:
//   writes, mirror, reads_new_percent, shadow_percent, sticky — replace the global value;
//   tables — merged per table (JSON Merge Patch, RFC 7396): {"orders": {"writes": "dual"}} sets
//            one override, {"orders": {"writes": null}} clears it, {"orders": null} drops the
//            table's overrides; a table left with no override is removed;
//   reason — copied into the result's `reason` (the caller passes it on to publish());
//   version — optimistic concurrency: when present it must equal base.version;
//   changed_at, changed_by — set by the server, ignored (so a GET /flags body can be PUT back).
// Unknown keys, wrong types, out-of-range values and 'strict' are errors; the message names
// every offending key: "invalid flags: colour: unknown key; reads_new_percent: ...".
// The result keeps base's version/changed_at/changed_by; publish() stamps new ones.
Result<FlagSnapshot> applyJson(const FlagSnapshot& base, std::string_view json_body);

// The config's initial flags: version 1, changed_by "config", changed_at now.
FlagSnapshot fromConfig(const config::FlagsConfig& config);

// What publish() accepts: percents 0–100 (tables too), non-empty table names, no 'strict'.
Status validate(const FlagSnapshot& snapshot);

// Now as RFC 3339 UTC with milliseconds.
inline std::string nowRfc3339() { return nowRfc3339Ms(); }   // common/clock.h

}  // namespace cutover::flags
