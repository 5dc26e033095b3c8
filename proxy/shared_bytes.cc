#include "proxy/shared_bytes.h"

#include <algorithm>

namespace cutover::proxy {
namespace {

// Below this a reference (a chain and a holder allocated per evbuffer) costs more than a copy.
constexpr size_t kReferenceMin = 64 * 1024;
// takeFrom copies this much per step, so at most this much is held twice.
constexpr size_t kTakePiece = 1 << 20;

void releaseHolder(const void*, size_t, void* holder) { delete static_cast<std::shared_ptr<std::string>*>(holder); }

}  // namespace

void SharedBytes::takeFrom(evbuffer* buffer, size_t count) {
  auto bytes = std::make_shared<std::string>();
  bytes->resize(count);
  for (size_t at = 0; at < count;) {
    const size_t piece = std::min(kTakePiece, count - at);
    evbuffer_remove(buffer, bytes->data() + at, piece);
    at += piece;
  }
  bytes_ = std::move(bytes);
}

void SharedBytes::append(std::string_view more) {
  if (!bytes_) {
    bytes_ = std::make_shared<std::string>(more);
    return;
  }
  if (bytes_.use_count() > 1) {
    auto copy = std::make_shared<std::string>();
    copy->reserve(bytes_->size() + more.size());
    copy->assign(*bytes_);
    bytes_ = std::move(copy);
  }
  bytes_->append(more);
}

std::string SharedBytes::release() {
  if (!bytes_) return {};
  std::string out = bytes_.use_count() == 1 ? std::move(*bytes_) : *bytes_;
  bytes_.reset();
  return out;
}

void SharedBytes::appendTo(evbuffer* out) const {
  if (empty()) return;
  if (size() < kReferenceMin) {
    evbuffer_add(out, bytes_->data(), bytes_->size());
    return;
  }
  auto* holder = new std::shared_ptr<std::string>(bytes_);
  if (evbuffer_add_reference(out, bytes_->data(), bytes_->size(), &releaseHolder, holder) != 0) {
    delete holder;
    evbuffer_add(out, bytes_->data(), bytes_->size());
  }
}

}  // namespace cutover::proxy
