#include "proxy/message_io.h"

#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

protocol::Frame headerOnly(protocol::Frame frame) {
  if (frame.status == protocol::DecodeStatus::NeedMoreData && frame.length != 0) {
    frame.status = protocol::DecodeStatus::Ready;
  }
  return frame;
}

}  // namespace

protocol::Frame peekMessage(evbuffer* buffer, protocol::Direction direction, uint32_t max_length) {
  uint8_t header[5];
  ev_ssize_t n = evbuffer_copyout(buffer, header, sizeof header);
  return headerOnly(protocol::peekMessage(std::span<const uint8_t>(header, n < 0 ? 0 : static_cast<size_t>(n)), direction,
                               max_length));
}

protocol::Frame peekMessageAt(evbuffer* buffer, size_t offset, protocol::Direction direction, uint32_t max_length) {
  if (offset == 0) return peekMessage(buffer, direction, max_length);
  evbuffer_ptr at;
  if (evbuffer_ptr_set(buffer, &at, offset, EVBUFFER_PTR_SET) != 0) {
    return protocol::peekMessage({}, direction, max_length);
  }
  uint8_t header[5];
  ev_ssize_t n = evbuffer_copyout_from(buffer, &at, header, sizeof header);
  return headerOnly(protocol::peekMessage(std::span<const uint8_t>(header, n < 0 ? 0 : static_cast<size_t>(n)), direction,
                               max_length));
}

int byteAt(evbuffer* buffer, size_t offset) {
  evbuffer_ptr at;
  if (evbuffer_ptr_set(buffer, &at, offset, EVBUFFER_PTR_SET) != 0) return -1;
  uint8_t byte;
  return evbuffer_copyout_from(buffer, &at, &byte, 1) == 1 ? byte : -1;
}

protocol::Frame peekStartup(evbuffer* buffer, uint32_t max_length) {
  uint8_t header[8];
  ev_ssize_t n = evbuffer_copyout(buffer, header, sizeof header);
  return headerOnly(protocol::peekStartup(std::span<const uint8_t>(header, n < 0 ? 0 : static_cast<size_t>(n)), max_length));
}

std::span<const uint8_t> pullBody(evbuffer* buffer, const protocol::Frame& frame) {
  const size_t total = frame.totalSize();
  const uint8_t* data = evbuffer_pullup(buffer, static_cast<ev_ssize_t>(total));
  return std::span<const uint8_t>(data + frame.headerSize(), total - frame.headerSize());
}

std::string sqlLiteral(std::string_view text) {
  std::string out = "E'";
  for (char c : text) {
    if (c == '\\' || c == '\'') out += c;
    out += c;
  }
  return out + "'";
}

std::string queryMessage(std::string_view sql) { return protocol::encode(protocol::Query{std::string(sql)}); }

std::string injectedQuery(std::string_view sql) {
  static constexpr std::string_view kName = "cutover:inject";
  // An error in its Execute (a COMMIT failing on a deferred constraint) skips the rest up to the
  // Sync, its Close included (protocol 55.2.3), and would leave the statement for the next
  // injection's Parse to fail on (42P05): a Close first drops what a failed one left (closing a
  // statement that does not exist is not an error).
  std::string out = protocol::encode(protocol::Close{'S', std::string(kName)});
  out += protocol::encode(protocol::Parse{std::string(kName), std::string(sql), {}});
  protocol::Bind bind;
  bind.statement = std::string(kName);
  out += protocol::encode(bind);
  out += protocol::encode(protocol::Execute{});
  out += protocol::encode(protocol::Close{'S', std::string(kName)});
  out += protocol::encode(protocol::Sync{});
  return out;
}

const std::string& injectedStatement(Injected which) {
  static const std::string kEncoded[] = {injectedQuery("BEGIN"), injectedQuery("BEGIN READ ONLY"),
                                         injectedQuery("COMMIT"), injectedQuery("ROLLBACK")};
  return kEncoded[static_cast<size_t>(which)];
}

std::string sqlIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += c;
    out += c;
  }
  return out + "\"";
}

}  // namespace cutover::proxy
