#include "config/build_support.h"

#include <fmt/format.h>

namespace cutover::config {

namespace {

constexpr std::string_view kPassThrough = "is not available in this build yet (pass-through only)";

std::optional<BuildRefusal> checkStore(const StoreConfig& store) {
  switch (store.sslmode) {
    case SslMode::Disable:
    case SslMode::Prefer:  // accepted: connects in plaintext until store TLS lands
      return std::nullopt;
    case SslMode::Require:
    case SslMode::VerifyCa:
    case SslMode::VerifyFull:
      break;
  }
  return BuildRefusal{
      fmt::format("stores.{}.sslmode", store.name),
      fmt::format("'{}' is not available in this build yet (TLS to stores is not implemented); "
                  "use 'prefer' (plaintext for now) or 'disable'",
                  toString(store.sslmode))};
}

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
  if (config.auth.method != AuthMethod::Trust) {
    return BuildRefusal{"auth.method",
                        "only 'trust' is available in this build; client SCRAM/md5 "
                        "authentication comes with the front-door work (the default is "
                        "scram-sha-256, so set 'method: trust' explicitly)"};
  }
  if (config.tls.mode != TlsMode::Disable) {
    return BuildRefusal{
        "tls.mode", fmt::format("'{}' is not available in this build yet; client TLS comes with "
                                "the front-door work; use 'disable'",
                                toString(config.tls.mode))};
  }
  if (auto refusal = checkStore(config.old_store)) return refusal;
  if (config.new_store) {
    if (auto refusal = checkStore(*config.new_store)) return refusal;
  }
  return std::nullopt;
}

}  // namespace cutover::config
