#include "protocol/value_lists.h"

#include <fmt/format.h>

namespace cutover::protocol {

bool failDeclared(Reader& reader, size_t count, std::string_view noun, size_t done) {
  return reader.fail(fmt::format("{} declares {} {} but the message ends after {}", reader.message(),
                                 count, noun, done));
}

bool readInt16List(Reader& reader, std::string_view noun, std::vector<int16_t>& out) {
  uint16_t count = 0;
  if (!reader.readUint16(count, fmt::format("the {} count", noun))) return false;
  out.clear();
  if (reader.remaining() / 2 < count) return failDeclared(reader, count, noun, reader.remaining() / 2);
  for (size_t i = 0; i < count; ++i) {
    int16_t value = 0;
    reader.readInt16(value, noun);
    out.push_back(value);
  }
  return !reader.failed();
}

void putInt16List(Writer& writer, const std::vector<int16_t>& values) {
  writer.putCount16(values.size());
  for (int16_t value : values) writer.putInt16(value);
}

bool readOidList(Reader& reader, std::string_view noun, std::vector<uint32_t>& out) {
  uint16_t count = 0;
  if (!reader.readUint16(count, fmt::format("the {} count", noun))) return false;
  out.clear();
  if (reader.remaining() / 4 < count) return failDeclared(reader, count, noun, reader.remaining() / 4);
  for (size_t i = 0; i < count; ++i) {
    uint32_t value = 0;
    reader.readUint32(value, noun);
    out.push_back(value);
  }
  return !reader.failed();
}

void putOidList(Writer& writer, const std::vector<uint32_t>& values) {
  writer.putCount16(values.size());
  for (uint32_t value : values) writer.putUint32(value);
}

bool readNullable(Reader& reader, std::string_view what, std::optional<std::string>& out) {
  int32_t length = 0;
  if (!reader.readInt32(length, fmt::format("the length of {}", what))) return false;
  if (length == -1) {
    out.reset();
    return true;
  }
  if (length < 0) {
    return reader.fail(fmt::format("invalid length {} for {} in {}", length, what, reader.message()));
  }
  if (static_cast<size_t>(length) > reader.remaining()) {
    return reader.fail(fmt::format("{} in {} declares {} bytes but only {} remain", what,
                                   reader.message(), length, reader.remaining()));
  }
  std::string value;
  reader.readBytes(static_cast<size_t>(length), value, what);
  out = std::move(value);
  return true;
}

bool readNullableList(Reader& reader, std::string_view noun, std::vector<std::optional<std::string>>& out) {
  uint16_t count = 0;
  if (!reader.readUint16(count, fmt::format("the {} count", noun))) return false;
  out.clear();
  // Each value needs at least its 4-byte length.
  for (size_t i = 0; i < count; ++i) {
    if (reader.remaining() < 4) return failDeclared(reader, count, noun, i);
    std::optional<std::string> value;
    // Names the value "parameter 2" from the plural noun "parameters".
    std::string_view singular = noun.ends_with('s') ? noun.substr(0, noun.size() - 1) : noun;
    if (!readNullable(reader, fmt::format("{} {}", singular, i + 1), value)) return false;
    out.push_back(std::move(value));
  }
  return true;
}

void putNullableList(Writer& writer, const std::vector<std::optional<std::string>>& values) {
  writer.putCount16(values.size());
  for (const auto& value : values) writer.putNullable(value);
}

}  // namespace cutover::protocol
