#include "config/build_support.h"

#include <fmt/format.h>

namespace cutover::config {


std::optional<BuildRefusal> checkSupportedByThisBuild(const Config& config) {
  const FlagsConfig& flags = config.flags;
  if (flags.mirror == MirrorMode::Strict) {
    return BuildRefusal{"flags.mirror",
                        "'strict' (two-phase commit mode) is not available yet; use sync or "
                        "async"};
  }
  if (flags.mirror == MirrorMode::Async && flags.writes != WritesMode::Old && flags.writes != WritesMode::New) {
    return BuildRefusal{"flags.mirror", "'async' is not available in this build yet; use sync"};
  }
  if (flags.shadow_percent != 0) {
    return BuildRefusal{"flags.shadow_percent",
                        fmt::format("{} {}; use 0", flags.shadow_percent,
                                    "is not available in this build yet (shadow reads are not implemented)")};
  }
  const bool needs_new = flags.writes != WritesMode::Old || flags.reads_new_percent != 0 || !flags.tables.empty();
  if (needs_new && !config.new_store) {
    return BuildRefusal{"flags.writes", "these flags route statements to the new store, but stores.new is not configured"};
  }
  return std::nullopt;
}

}  // namespace cutover::config
