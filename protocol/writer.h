#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cutover::protocol {

// Appends one wire message to `out` (which must outlive the writer): beginMessage() writes the
// type byte (none for the startup family, type 0) and a placeholder length, endMessage()
// back-patches the length, which counts itself but not the type byte.
class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void beginMessage(char type);
  void endMessage();

  void putUint8(uint8_t value) { out_.push_back(static_cast<char>(value)); }
  void putChar(char value) { out_.push_back(value); }
  void putUint16(uint16_t value);
  void putInt16(int16_t value) { putUint16(static_cast<uint16_t>(value)); }
  void putUint32(uint32_t value);
  void putInt32(int32_t value) { putUint32(static_cast<uint32_t>(value)); }
  // Appends the bytes and the NUL terminator. A NUL inside `value` would end the string early on
  // the wire; encoding it is the caller's mistake, the protocol cannot carry it.
  void putString(std::string_view value);
  void putBytes(std::string_view value) { out_.append(value); }
  // Int32 length then the bytes, or length -1 for NULL (Bind parameters, DataRow columns).
  void putNullable(const std::optional<std::string>& value);
  // Int16 count fields: the protocol cannot carry more than 65535 entries.
  void putCount16(size_t count) { putUint16(static_cast<uint16_t>(count)); }

 private:
  std::string& out_;
  size_t length_at_ = 0;
};

}  // namespace cutover::protocol
