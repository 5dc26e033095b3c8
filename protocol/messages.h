#pragma once

// Every PostgreSQL v3 message (PostgreSQL 15 docs, "Message Formats") with one uniform codec:
//
//   DecodeResult<Query> q = decode<Query>(body);   // body = bytes after the length field
//   std::string bytes = encode(ReadyForQuery{'I'}); // whole message: type byte, length, body
//
// For the startup family (kType == 0) the body starts at the Int32 code. Decoding never throws
// and never reads past `body`; a malformed body gives a DecodeError naming what is wrong.

#include <concepts>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "protocol/backend_messages.h"
#include "protocol/frontend_messages.h"
#include "protocol/reader.h"
#include "protocol/startup_messages.h"
#include "protocol/writer.h"

namespace cutover::protocol {

struct DecodeError {
  std::string reason;
};

// A decoded message or the reason the body is malformed.
template <typename T>
class DecodeResult {
 public:
  DecodeResult(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  DecodeResult(DecodeError error) : v_(std::move(error)) {}  // NOLINT: implicit by design
  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  T& value() { return std::get<T>(v_); }
  const T& value() const { return std::get<T>(v_); }
  // Empty when isOk().
  const std::string& reason() const {
    static const std::string kNone;
    return isOk() ? kNone : std::get<DecodeError>(v_).reason;
  }

 private:
  std::variant<T, DecodeError> v_;
};

template <typename T>
concept WireMessage = requires(T& message, const T& const_message, Reader& reader, Writer& writer) {
  { T::kType } -> std::convertible_to<char>;
  { T::kName } -> std::convertible_to<std::string_view>;
  { message.decodeBody(reader) } -> std::same_as<bool>;
  const_message.encodeBody(writer);
};

inline std::span<const uint8_t> asBytes(std::string_view bytes) {
  return {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
}

template <WireMessage T>
DecodeResult<T> decode(std::span<const uint8_t> body) {
  Reader reader(body, T::kName);
  T message;
  if (!message.decodeBody(reader) || !reader.expectEnd()) return DecodeError{reader.error()};
  return message;
}

template <WireMessage T>
void encode(const T& message, std::string& out) {
  Writer writer(out);
  writer.beginMessage(T::kType);
  message.encodeBody(writer);
  writer.endMessage();
}

template <WireMessage T>
std::string encode(const T& message) {
  std::string out;
  encode(message, out);
  return out;
}

using StartupPacket = std::variant<StartupMessage, SslRequest, GssEncRequest, CancelRequest>;

// What decodeFrontend() can return. The 'p' family decodes as SaslResponse (its raw body): only
// the authentication exchange knows whether it is a PasswordMessage, SASLInitialResponse,
// SASLResponse or GSSResponse — decode<T> that one when it matters.
using FrontendMessage = std::variant<Query, Parse, Bind, Describe, Execute, Close, Sync, Flush, Terminate,
                                     CopyData, CopyDone, CopyFail, FunctionCall, SaslResponse>;

using BackendMessage =
    std::variant<Authentication, BackendKeyData, ParameterStatus, ReadyForQuery, ErrorResponse,
                 NoticeResponse, RowDescription, DataRow, CommandComplete, EmptyQueryResponse,
                 ParseComplete, BindComplete, CloseComplete, NoData, PortalSuspended,
                 ParameterDescription, CopyInResponse, CopyOutResponse, CopyBothResponse,
                 NotificationResponse, FunctionCallResponse, NegotiateProtocolVersion, CopyData,
                 CopyDone>;

// `body` starts at the Int32 code; the code picks the packet.
DecodeResult<StartupPacket> decodeStartup(std::span<const uint8_t> body);
DecodeResult<FrontendMessage> decodeFrontend(char type, std::span<const uint8_t> body);
DecodeResult<BackendMessage> decodeBackend(char type, std::span<const uint8_t> body);

void encode(const StartupPacket& packet, std::string& out);
void encode(const FrontendMessage& message, std::string& out);
void encode(const BackendMessage& message, std::string& out);

// kName of the alternative held, e.g. "Bind".
std::string_view messageName(const FrontendMessage& message);
std::string_view messageName(const BackendMessage& message);

}  // namespace cutover::protocol
