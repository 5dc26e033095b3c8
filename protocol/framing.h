#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace cutover::protocol {

// Framing of the PostgreSQL v3 protocol (PostgreSQL 15 docs, "Message Flow" / "Message Formats").
// These functions only look at headers: they never consume bytes, so the caller drains
// Frame::totalSize() bytes once status is Ready and the whole message is buffered.

enum class DecodeStatus { NeedMoreData, Ready, Invalid };
enum class Direction { Frontend, Backend };  // Frontend = messages sent by the client

inline constexpr uint32_t kStartupPacketLimit = 10000;         // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
inline constexpr uint32_t kDefaultMaxMessageLength = 1u << 30;  // PostgreSQL's 1 GB message ceiling

struct Frame {
  DecodeStatus status = DecodeStatus::NeedMoreData;
  char type = 0;        // message type byte; 0 for the untyped startup family
  uint32_t length = 0;  // the Int32 length field (counts itself, not the type byte)
  std::string reason;   // set when status == Invalid
  size_t headerSize() const { return type != 0 ? 5 : 4; }
  size_t totalSize() const { return (type != 0 ? 1 : 0) + length; }  // whole message incl. type byte
  size_t bodySize() const { return length - 4; }  // bytes after the length field; valid once Ready
};

// Header of the next typed message in `data` (needs 5 bytes, else NeedMoreData). Invalid when the
// length is < 4, > max_length, or the type byte is not a known message type for that direction.
// Ready means the whole message (frame.totalSize() bytes) is in `data`; while it is not, the status
// is NeedMoreData, with type and length already set once the 5 header bytes are there. An unknown
// type byte is reported as Invalid as soon as that first byte is seen.
Frame peekMessage(std::span<const uint8_t> data, Direction direction, uint32_t max_length);

// Header of the next untyped startup-family packet (Int32 length then Int32 code; needs 8 bytes).
// Invalid when length < 8 or > max_length (use kStartupPacketLimit before authentication).
// Ready once the whole packet is in `data`; a bad length is Invalid once its 4 bytes are there.
// Note: PostgreSQL compares length - 4 with MAX_STARTUP_PACKET_LENGTH, so with
// kStartupPacketLimit this check is 4 bytes stricter than the server's.
Frame peekStartup(std::span<const uint8_t> data, uint32_t max_length);

bool isKnownMessageType(char type, Direction direction);

// "'Q'" for printable bytes, "0x01" otherwise; used in reasons.
std::string describeType(char type);

}  // namespace cutover::protocol
