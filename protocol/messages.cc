#include "protocol/messages.h"

#include <fmt/format.h>

#include "protocol/framing.h"

namespace cutover::protocol {
namespace {

template <typename Variant, typename T>
DecodeResult<Variant> decodeAs(std::span<const uint8_t> body) {
  DecodeResult<T> result = decode<T>(body);
  if (!result.isOk()) return DecodeError{result.reason()};
  return Variant(std::move(result.value()));
}

template <typename Variant>
void encodeVariant(const Variant& message, std::string& out) {
  std::visit([&out](const auto& alternative) { encode(alternative, out); }, message);
}

template <typename Variant>
std::string_view nameOf(const Variant& message) {
  return std::visit([](const auto& alternative) -> std::string_view {
    return std::decay_t<decltype(alternative)>::kName;
  }, message);
}

}  // namespace

DecodeResult<StartupPacket> decodeStartup(std::span<const uint8_t> body) {
  if (body.size() < 4) {
    return DecodeError{fmt::format("startup packet ends before its request code (needs 4 bytes, {} left)",
                                   body.size())};
  }
  uint32_t code = (uint32_t{body[0]} << 24) | (uint32_t{body[1]} << 16) | (uint32_t{body[2]} << 8) |
                  uint32_t{body[3]};
  switch (code) {
    case kSslRequestCode:
      return decodeAs<StartupPacket, SslRequest>(body);
    case kGssEncRequestCode:
      return decodeAs<StartupPacket, GssEncRequest>(body);
    case kCancelRequestCode:
      return decodeAs<StartupPacket, CancelRequest>(body);
    default:
      return decodeAs<StartupPacket, StartupMessage>(body);
  }
}

DecodeResult<FrontendMessage> decodeFrontend(char type, std::span<const uint8_t> body) {
  using M = FrontendMessage;
  switch (type) {
    case Query::kType: return decodeAs<M, Query>(body);
    case Parse::kType: return decodeAs<M, Parse>(body);
    case Bind::kType: return decodeAs<M, Bind>(body);
    case Describe::kType: return decodeAs<M, Describe>(body);
    case Execute::kType: return decodeAs<M, Execute>(body);
    case Close::kType: return decodeAs<M, Close>(body);
    case Sync::kType: return decodeAs<M, Sync>(body);
    case Flush::kType: return decodeAs<M, Flush>(body);
    case Terminate::kType: return decodeAs<M, Terminate>(body);
    case CopyData::kType: return decodeAs<M, CopyData>(body);
    case CopyDone::kType: return decodeAs<M, CopyDone>(body);
    case CopyFail::kType: return decodeAs<M, CopyFail>(body);
    case FunctionCall::kType: return decodeAs<M, FunctionCall>(body);
    case SaslResponse::kType: return decodeAs<M, SaslResponse>(body);
    default: return DecodeError{fmt::format("unknown frontend message type {}", describeType(type))};
  }
}

DecodeResult<BackendMessage> decodeBackend(char type, std::span<const uint8_t> body) {
  using M = BackendMessage;
  switch (type) {
    case Authentication::kType: return decodeAs<M, Authentication>(body);
    case BackendKeyData::kType: return decodeAs<M, BackendKeyData>(body);
    case ParameterStatus::kType: return decodeAs<M, ParameterStatus>(body);
    case ReadyForQuery::kType: return decodeAs<M, ReadyForQuery>(body);
    case ErrorResponse::kType: return decodeAs<M, ErrorResponse>(body);
    case NoticeResponse::kType: return decodeAs<M, NoticeResponse>(body);
    case RowDescription::kType: return decodeAs<M, RowDescription>(body);
    case DataRow::kType: return decodeAs<M, DataRow>(body);
    case CommandComplete::kType: return decodeAs<M, CommandComplete>(body);
    case EmptyQueryResponse::kType: return decodeAs<M, EmptyQueryResponse>(body);
    case ParseComplete::kType: return decodeAs<M, ParseComplete>(body);
    case BindComplete::kType: return decodeAs<M, BindComplete>(body);
    case CloseComplete::kType: return decodeAs<M, CloseComplete>(body);
    case NoData::kType: return decodeAs<M, NoData>(body);
    case PortalSuspended::kType: return decodeAs<M, PortalSuspended>(body);
    case ParameterDescription::kType: return decodeAs<M, ParameterDescription>(body);
    case CopyInResponse::kType: return decodeAs<M, CopyInResponse>(body);
    case CopyOutResponse::kType: return decodeAs<M, CopyOutResponse>(body);
    case CopyBothResponse::kType: return decodeAs<M, CopyBothResponse>(body);
    case NotificationResponse::kType: return decodeAs<M, NotificationResponse>(body);
    case FunctionCallResponse::kType: return decodeAs<M, FunctionCallResponse>(body);
    case NegotiateProtocolVersion::kType: return decodeAs<M, NegotiateProtocolVersion>(body);
    case CopyData::kType: return decodeAs<M, CopyData>(body);
    case CopyDone::kType: return decodeAs<M, CopyDone>(body);
    default: return DecodeError{fmt::format("unknown backend message type {}", describeType(type))};
  }
}

void encode(const StartupPacket& packet, std::string& out) { encodeVariant(packet, out); }
void encode(const FrontendMessage& message, std::string& out) { encodeVariant(message, out); }
void encode(const BackendMessage& message, std::string& out) { encodeVariant(message, out); }

std::string_view messageName(const FrontendMessage& message) { return nameOf(message); }
std::string_view messageName(const BackendMessage& message) { return nameOf(message); }

}  // namespace cutover::protocol
