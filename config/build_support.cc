#include "config/build_support.h"

#include <fmt/format.h>

namespace cutover::config {
namespace {

constexpr std::string_view kPassThrough = "is not available in this build yet (pass-through only)";

}  // namespace


std::optional<BuildRefusal> checkSupportedByThisBuild(const Config& config) {
  const FlagsConfig& flags = config.flags;
  if (flags.writes != WritesMode::Old) {
    return BuildRefusal{"flags.writes",
                        fmt::format("'{}' {}; use 'old'", toString(flags.writes), kPassThrough)};
  }
  if (flags.mirror == MirrorMode::Strict) {
    return BuildRefusal{"flags.mirror",
                        "'strict' (two-phase commit mode) is not available yet; use sync or "
                        "async"};
  }
  if (flags.reads_new_percent != 0) {
    return BuildRefusal{"flags.reads_new_percent",
                        fmt::format("{} {}; use 0", flags.reads_new_percent, kPassThrough)};
  }
  if (flags.shadow_percent != 0) {
    return BuildRefusal{"flags.shadow_percent",
                        fmt::format("{} {}; use 0", flags.shadow_percent, kPassThrough)};
  }
  if (!flags.tables.empty()) {
    return BuildRefusal{fmt::format("flags.tables.{}", flags.tables.begin()->first),
                        fmt::format("per-table rules are not available in this build yet "
                                    "(pass-through only); remove flags.tables")};
  }
  return std::nullopt;
}

}  // namespace cutover::config
