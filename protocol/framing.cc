#include "protocol/framing.h"

#include <fmt/format.h>

#include <string_view>

namespace cutover::protocol {
namespace {

// PostgreSQL 15 docs, "Message Formats". Shared letters (e.g. 'D' = Describe / DataRow) mean
// different messages in each direction.
constexpr std::string_view kFrontendTypes = "QPBDECSHXdcfFp";
constexpr std::string_view kBackendTypes = "RKSZENTDCI123nstGHWdcAVv";

uint32_t readUint32(std::span<const uint8_t> data, size_t at) {
  return (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) | (uint32_t{data[at + 2]} << 8) |
         uint32_t{data[at + 3]};
}

}  // namespace

std::string describeType(char type) {
  auto byte = static_cast<unsigned char>(type);
  if (byte >= 0x20 && byte < 0x7f) return fmt::format("'{}'", type);
  return fmt::format("0x{:02x}", byte);
}

bool isKnownMessageType(char type, Direction direction) {
  if (type == 0) return false;
  std::string_view known = direction == Direction::Frontend ? kFrontendTypes : kBackendTypes;
  return known.find(type) != std::string_view::npos;
}

Frame peekMessage(std::span<const uint8_t> data, Direction direction, uint32_t max_length) {
  Frame frame;
  if (data.empty()) return frame;
  // The type byte alone is enough to reject garbage early.
  char type = static_cast<char>(data[0]);
  if (!isKnownMessageType(type, direction)) {
    frame.status = DecodeStatus::Invalid;
    frame.type = type;
    frame.reason = fmt::format("unknown {} message type {}",
                               direction == Direction::Frontend ? "frontend" : "backend",
                               describeType(type));
    return frame;
  }
  if (data.size() < 5) return frame;
  frame.type = type;
  frame.length = readUint32(data, 1);
  if (frame.length < 4) {
    frame.status = DecodeStatus::Invalid;
    frame.reason = fmt::format("invalid length {} in message of type {} (minimum is 4)", frame.length,
                               describeType(type));
  } else if (frame.length > max_length) {
    frame.status = DecodeStatus::Invalid;
    frame.reason = fmt::format("invalid length {} in message of type {} (maximum is {})",
                               frame.length, describeType(type), max_length);
  } else if (data.size() >= frame.totalSize()) {
    frame.status = DecodeStatus::Ready;
  }
  return frame;
}

Frame peekStartup(std::span<const uint8_t> data, uint32_t max_length) {
  Frame frame;
  if (data.size() < 4) return frame;
  frame.length = readUint32(data, 0);
  if (frame.length < 8) {
    frame.status = DecodeStatus::Invalid;
    frame.reason = fmt::format("invalid length {} in startup packet (minimum is 8)", frame.length);
  } else if (frame.length > max_length) {
    frame.status = DecodeStatus::Invalid;
    frame.reason = fmt::format("invalid length {} in startup packet (maximum is {})", frame.length,
                               max_length);
  } else if (data.size() >= 8 && data.size() >= frame.totalSize()) {
    frame.status = DecodeStatus::Ready;
  }
  return frame;
}

}  // namespace cutover::protocol
