#pragma once

// The untyped startup family (PostgreSQL 15 docs, "Message Formats"): Int32 length, Int32 code,
// then the body. kType is 0; decode() takes the bytes after the length, starting at the code.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace cutover::protocol {

inline constexpr uint32_t kProtocolVersion3 = 196608;  // 3.0: major << 16 | minor
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;

struct StartupMessage {
  static constexpr char kType = 0;
  static constexpr std::string_view kName = "StartupMessage";
  uint32_t protocol_version = kProtocolVersion3;
  std::vector<std::pair<std::string, std::string>> parameters;  // in wire order

  // The value of the first parameter named `key`, if any.
  std::optional<std::string> get(std::string_view key) const;

  // Accepts any 3.x version (the server answers a newer minor with NegotiateProtocolVersion).
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const StartupMessage&) const = default;
};

struct SslRequest {
  static constexpr char kType = 0;
  static constexpr std::string_view kName = "SSLRequest";
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const { writer.putUint32(kSslRequestCode); }
  bool operator==(const SslRequest&) const = default;
};

struct GssEncRequest {
  static constexpr char kType = 0;
  static constexpr std::string_view kName = "GSSENCRequest";
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const { writer.putUint32(kGssEncRequestCode); }
  bool operator==(const GssEncRequest&) const = default;
};

struct CancelRequest {
  static constexpr char kType = 0;
  static constexpr std::string_view kName = "CancelRequest";
  int32_t process_id = 0;
  int32_t secret_key = 0;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const CancelRequest&) const = default;
};

}  // namespace cutover::protocol
