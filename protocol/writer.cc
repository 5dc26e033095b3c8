#include "protocol/writer.h"

namespace cutover::protocol {

void Writer::beginMessage(char type) {
  if (type != 0) out_.push_back(type);
  length_at_ = out_.size();
  putUint32(0);
}

void Writer::endMessage() {
  uint32_t length = static_cast<uint32_t>(out_.size() - length_at_);
  out_[length_at_] = static_cast<char>(length >> 24);
  out_[length_at_ + 1] = static_cast<char>(length >> 16);
  out_[length_at_ + 2] = static_cast<char>(length >> 8);
  out_[length_at_ + 3] = static_cast<char>(length);
}

void Writer::putUint16(uint16_t value) {
  out_.push_back(static_cast<char>(value >> 8));
  out_.push_back(static_cast<char>(value));
}

void Writer::putUint32(uint32_t value) {
  out_.push_back(static_cast<char>(value >> 24));
  out_.push_back(static_cast<char>(value >> 16));
  out_.push_back(static_cast<char>(value >> 8));
  out_.push_back(static_cast<char>(value));
}

void Writer::putString(std::string_view value) {
  out_.append(value);
  out_.push_back('\0');
}

void Writer::putNullable(const std::optional<std::string>& value) {
  if (!value) {
    putInt32(-1);
    return;
  }
  putUint32(static_cast<uint32_t>(value->size()));
  out_.append(*value);
}

}  // namespace cutover::protocol
