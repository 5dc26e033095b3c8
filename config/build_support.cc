#include "config/build_support.h"

#include <fmt/format.h>

namespace cutover::config {

std::optional<BuildRefusal> checkFlagsSupported(const FlagValues& flags, bool new_store_configured) {
  if (flags.mirror == MirrorMode::Strict) {
    return BuildRefusal{"mirror", "'strict' (two-phase commit mode) is not available yet; use sync or async"};
  }
  if (flags.mirror == MirrorMode::Async && flags.writes != WritesMode::Old && flags.writes != WritesMode::New) {
    return BuildRefusal{"mirror", "'async' is not available in this build yet; use sync"};
  }
  constexpr const char* kNoShadow = "is not available in this build yet (shadow reads are not implemented); use 0";
  if (flags.shadow_percent != 0) {
    return BuildRefusal{"shadow_percent", fmt::format("{} {}", flags.shadow_percent, kNoShadow)};
  }
  bool needs_new = flags.writes != WritesMode::Old || flags.reads_new_percent != 0;
  if (flags.tables != nullptr) {
    for (const auto& [table, overrides] : *flags.tables) {
      if (overrides.shadow_percent.value_or(0) != 0) {
        return BuildRefusal{"tables." + table + ".shadow_percent", fmt::format("{} {}", *overrides.shadow_percent, kNoShadow)};
      }
      if (overrides.reads_new_percent.value_or(0) != 0 || overrides.writes.value_or(WritesMode::Old) != WritesMode::Old) {
        needs_new = true;
      }
    }
  }
  if (needs_new && !new_store_configured) {
    return BuildRefusal{"writes", "these flags route statements to the new store, but stores.new is not configured"};
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
