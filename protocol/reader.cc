#include "protocol/reader.h"

#include <fmt/format.h>

#include <cstring>

namespace cutover::protocol {

bool Reader::fail(std::string reason) {
  if (!failed_) {
    failed_ = true;
    error_ = std::move(reason);
  }
  return false;
}

bool Reader::need(size_t count, std::string_view field) {
  if (failed_) return false;
  if (remaining() >= count) return true;
  return fail(fmt::format("{} ends before {} (needs {} bytes, {} left)", message_, field, count,
                          remaining()));
}

bool Reader::readUint8(uint8_t& out, std::string_view field) {
  if (!need(1, field)) return false;
  out = data_[pos_++];
  return true;
}

bool Reader::readChar(char& out, std::string_view field) {
  uint8_t byte = 0;
  if (!readUint8(byte, field)) return false;
  out = static_cast<char>(byte);
  return true;
}

bool Reader::readUint16(uint16_t& out, std::string_view field) {
  if (!need(2, field)) return false;
  out = static_cast<uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
  pos_ += 2;
  return true;
}

bool Reader::readInt16(int16_t& out, std::string_view field) {
  uint16_t raw = 0;
  if (!readUint16(raw, field)) return false;
  out = static_cast<int16_t>(raw);
  return true;
}

bool Reader::readUint32(uint32_t& out, std::string_view field) {
  if (!need(4, field)) return false;
  out = (uint32_t{data_[pos_]} << 24) | (uint32_t{data_[pos_ + 1]} << 16) |
        (uint32_t{data_[pos_ + 2]} << 8) | uint32_t{data_[pos_ + 3]};
  pos_ += 4;
  return true;
}

bool Reader::readInt32(int32_t& out, std::string_view field) {
  uint32_t raw = 0;
  if (!readUint32(raw, field)) return false;
  out = static_cast<int32_t>(raw);
  return true;
}

bool Reader::readString(std::string& out, std::string_view field) {
  if (failed_) return false;
  const uint8_t* start = data_.data() + pos_;
  const void* nul = remaining() == 0 ? nullptr : std::memchr(start, 0, remaining());
  if (nul == nullptr) {
    return fail(field.empty() ? fmt::format("missing string terminator in {}", message_)
                              : fmt::format("missing string terminator in {} ({})", message_, field));
  }
  size_t length = static_cast<size_t>(static_cast<const uint8_t*>(nul) - start);
  out.assign(reinterpret_cast<const char*>(start), length);
  pos_ += length + 1;
  return true;
}

bool Reader::readBytes(size_t count, std::string& out, std::string_view field) {
  if (!need(count, field)) return false;
  out.assign(reinterpret_cast<const char*>(data_.data() + pos_), count);
  pos_ += count;
  return true;
}

void Reader::readRest(std::string& out) {
  out.assign(reinterpret_cast<const char*>(data_.data() + pos_), remaining());
  pos_ = data_.size();
}

bool Reader::expectEnd() {
  if (failed_) return false;
  if (remaining() == 0) return true;
  return fail(fmt::format("trailing {} byte{} after {}", remaining(), remaining() == 1 ? "" : "s",
                          message_));
}

}  // namespace cutover::protocol
