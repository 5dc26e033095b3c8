#include "config/build_support.h"

#include <fmt/format.h>

namespace cutover::config {

std::optional<BuildRefusal> checkFlagsSupported(const FlagValues& flags, bool new_store_configured) {
  if (flags.mirror == MirrorMode::Strict) {
    return BuildRefusal{"mirror", "'strict' (two-phase commit mode) is not available yet; use sync or async"};
  }
  if (new_store_configured) return std::nullopt;
  // The first key that needs the new store.
  std::string needs_new;
  if (flags.writes != WritesMode::Old) {
    needs_new = "writes";
  } else if (flags.reads_new_percent != 0) {
    needs_new = "reads_new_percent";
  } else if (flags.shadow_percent != 0) {
    needs_new = "shadow_percent";
  } else if (flags.tables != nullptr) {
    for (const auto& [table, overrides] : *flags.tables) {
      if (overrides.reads_new_percent.value_or(0) != 0 || overrides.shadow_percent.value_or(0) != 0 ||
          overrides.writes.value_or(WritesMode::Old) != WritesMode::Old) {
        needs_new = "tables." + table;
        break;
      }
    }
  }
  if (!needs_new.empty()) {
    return BuildRefusal{needs_new, "these flags route statements to the new store, but stores.new is not configured"};
  }
  return std::nullopt;
}

std::optional<BuildRefusal> checkSupportedByThisBuild(const Config& config) {
  const FlagsConfig& f = config.flags;
  auto refusal = checkFlagsSupported(FlagValues{f.writes, f.mirror, f.reads_new_percent, f.shadow_percent, &f.tables},
                                     config.new_store.has_value());
  if (refusal) refusal->key_path = "flags." + refusal->key_path;
  return refusal;
}

}  // namespace cutover::config
