#include "protocol/startup_messages.h"

#include <fmt/format.h>

namespace cutover::protocol {
namespace {

bool expectCode(Reader& reader, uint32_t expected) {
  uint32_t code = 0;
  if (!reader.readUint32(code, "the request code")) return false;
  if (code == expected) return true;
  return reader.fail(
      fmt::format("unexpected request code {} in {} (expected {})", code, reader.message(), expected));
}

}  // namespace

std::optional<std::string> StartupMessage::get(std::string_view key) const {
  for (const auto& [name, value] : parameters) {
    if (name == key) return value;
  }
  return std::nullopt;
}

bool StartupMessage::decodeBody(Reader& reader) {
  if (!reader.readUint32(protocol_version, "the protocol version")) return false;
  if (protocol_version >> 16 != 3) {
    return reader.fail(fmt::format("unsupported protocol version {}.{} in StartupMessage",
                                   protocol_version >> 16, protocol_version & 0xffff));
  }
  parameters.clear();
  // Name/value pairs, then a single NUL that ends the list.
  while (true) {
    if (reader.remaining() == 0) return reader.fail("missing parameter list terminator in StartupMessage");
    std::string name;
    if (!reader.readString(name, "parameter name")) return false;
    if (name.empty()) return true;
    std::string value;
    if (!reader.readString(value, fmt::format("value of parameter \"{}\"", name))) return false;
    parameters.emplace_back(std::move(name), std::move(value));
  }
}

void StartupMessage::encodeBody(Writer& writer) const {
  writer.putUint32(protocol_version);
  for (const auto& [name, value] : parameters) {
    writer.putString(name);
    writer.putString(value);
  }
  writer.putUint8(0);
}

bool SslRequest::decodeBody(Reader& reader) { return expectCode(reader, kSslRequestCode); }

bool GssEncRequest::decodeBody(Reader& reader) { return expectCode(reader, kGssEncRequestCode); }

bool CancelRequest::decodeBody(Reader& reader) {
  return expectCode(reader, kCancelRequestCode) && reader.readInt32(process_id, "the process id") &&
         reader.readInt32(secret_key, "the secret key");
}

void CancelRequest::encodeBody(Writer& writer) const {
  writer.putUint32(kCancelRequestCode);
  writer.putInt32(process_id);
  writer.putInt32(secret_key);
}

}  // namespace cutover::protocol
