#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace cutover::protocol {

// Bounds-checked big-endian reader over one message body. Every read checks the remaining size
// first and never touches bytes past the end; the first failure is kept as a precise reason
// ("Execute ends before max_rows (needs 4 bytes, 2 left)") and later reads keep failing.
// `data` and `message` must outlive the reader.
class Reader {
 public:
  Reader(std::span<const uint8_t> data, std::string_view message) : data_(data), message_(message) {}

  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  std::string_view message() const { return message_; }

  // Records `reason` unless an earlier failure is already recorded; always returns false.
  bool fail(std::string reason);

  bool readUint8(uint8_t& out, std::string_view field);
  bool readChar(char& out, std::string_view field);
  bool readInt16(int16_t& out, std::string_view field);
  bool readUint16(uint16_t& out, std::string_view field);
  bool readInt32(int32_t& out, std::string_view field);
  bool readUint32(uint32_t& out, std::string_view field);
  // A NUL-terminated string; `field` may be empty when the message has a single string.
  bool readString(std::string& out, std::string_view field);
  bool readBytes(size_t count, std::string& out, std::string_view field);
  // Everything left (possibly nothing).
  void readRest(std::string& out);
  // Fails with "trailing N bytes after <message>" unless the body is used up.
  bool expectEnd();

 private:
  bool need(size_t count, std::string_view field);

  std::span<const uint8_t> data_;
  std::string_view message_;
  size_t pos_ = 0;
  bool failed_ = false;
  std::string error_;
};

}  // namespace cutover::protocol
