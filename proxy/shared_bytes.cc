#include "proxy/shared_bytes.h"

#include <malloc.h>

#include <algorithm>

namespace cutover::proxy {
namespace {

// Below this a reference (a chain and a holder allocated per evbuffer) costs more than a copy.
constexpr size_t kReferenceMin = 64 * 1024;
// A buffer's chains are small heap blocks that glibc keeps in the thread's arena once freed: while
// taking a message this large, every kTrimEvery bytes the freed ones go back to the system, so
// the copy does not double the process's memory.
constexpr size_t kTrimFrom = 16 << 20;
constexpr size_t kTrimEvery = 8 << 20;

void releaseHolder(const void*, size_t, void* holder) { delete static_cast<std::shared_ptr<std::string>*>(holder); }

}  // namespace

void SharedBytes::takeFrom(evbuffer* buffer, size_t count) {
  auto bytes = std::make_shared<std::string>();
  // reserve, not resize: pages of the string become resident only as they are filled, while the
  // buffer's chains are drained (and freed) behind them.
  bytes->reserve(count);
  size_t since_trim = 0;
  while (bytes->size() < count) {
    evbuffer_iovec extents[16];
    const int n = evbuffer_peek(buffer, static_cast<ev_ssize_t>(count - bytes->size()), nullptr, extents, 16);
    if (n <= 0) break;
    size_t taken = 0;
    for (int i = 0; i < std::min(n, 16); ++i) {
      const size_t length = std::min(extents[i].iov_len, count - bytes->size());
      bytes->append(static_cast<const char*>(extents[i].iov_base), length);
      taken += length;
    }
    evbuffer_drain(buffer, taken);
    since_trim += taken;
    if (count >= kTrimFrom && since_trim >= kTrimEvery) {
      malloc_trim(0);
      since_trim = 0;
    }
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
