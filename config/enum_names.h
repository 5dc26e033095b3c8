#pragma once

// The YAML spelling of every config enum, in one table per enum. Internal to config/.

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"

namespace cutover::config {

template <typename E>
struct EnumName {
  E value;
  std::string_view name;
};

inline constexpr EnumName<SslMode> kSslModeNames[] = {
    {SslMode::Disable, "disable"},     {SslMode::Prefer, "prefer"},
    {SslMode::Require, "require"},     {SslMode::VerifyCa, "verify-ca"},
    {SslMode::VerifyFull, "verify-full"},
};
inline constexpr EnumName<AuthMethod> kAuthMethodNames[] = {
    {AuthMethod::ScramSha256, "scram-sha-256"},
    {AuthMethod::Md5, "md5"},
    {AuthMethod::Trust, "trust"},
};
inline constexpr EnumName<TlsMode> kTlsModeNames[] = {
    {TlsMode::Disable, "disable"},
    {TlsMode::Allow, "allow"},
    {TlsMode::Require, "require"},
};
inline constexpr EnumName<WritesMode> kWritesModeNames[] = {
    {WritesMode::Old, "old"},
    {WritesMode::Dual, "dual"},
    {WritesMode::DualNew, "dual-new"},
    {WritesMode::New, "new"},
};
inline constexpr EnumName<MirrorMode> kMirrorModeNames[] = {
    {MirrorMode::Sync, "sync"},
    {MirrorMode::Async, "async"},
    {MirrorMode::Strict, "strict"},
};
inline constexpr EnumName<Sticky> kStickyNames[] = {
    {Sticky::Session, "session"},
    {Sticky::Statement, "statement"},
};

inline constexpr EnumName<FlagStoreKind> kFlagStoreKindNames[] = {
    {FlagStoreKind::File, "file"},
    {FlagStoreKind::Postgres, "postgres"},
};

template <typename E>
std::optional<E> parseEnum(std::span<const EnumName<E>> names, std::string_view text) {
  for (const auto& n : names) {
    if (n.name == text) return n.value;
  }
  return std::nullopt;
}

template <typename E>
std::string_view enumName(std::span<const EnumName<E>> names, E value) {
  for (const auto& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// "a, b, c" — for "expected one of" messages.
template <typename E>
std::string enumChoices(std::span<const EnumName<E>> names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n.name;
  }
  return out;
}

}  // namespace cutover::config
