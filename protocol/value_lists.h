#pragma once

// Codecs for the counted lists several messages share (format codes, OIDs, nullable values).
// Internal to protocol/.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace cutover::protocol {

// Int16 count then that many Int16 values. `noun` names the entries in reasons
// ("Bind declares 3 parameter format codes but the message ends after 1").
bool readInt16List(Reader& reader, std::string_view noun, std::vector<int16_t>& out);
void putInt16List(Writer& writer, const std::vector<int16_t>& values);

// Int16 count then that many UInt32 OIDs.
bool readOidList(Reader& reader, std::string_view noun, std::vector<uint32_t>& out);
void putOidList(Writer& writer, const std::vector<uint32_t>& values);

// Int16 count then that many (Int32 length, bytes) values; length -1 is NULL.
bool readNullableList(Reader& reader, std::string_view noun, std::vector<std::optional<std::string>>& out);
void putNullableList(Writer& writer, const std::vector<std::optional<std::string>>& values);

// One (Int32 length, bytes) value; `what` names it in reasons ("parameter 2").
bool readNullable(Reader& reader, std::string_view what, std::optional<std::string>& out);

// Fails with "<message> declares <count> <noun> but the message ends after <done>".
bool failDeclared(Reader& reader, size_t count, std::string_view noun, size_t done);

}  // namespace cutover::protocol
