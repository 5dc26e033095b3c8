#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "proxy/libevent_handles.h"

namespace cutover::proxy {

// A client request's messages, held once and handed to every store connection that runs them
// (the authoritative store, the secondary, a shadow) without a copy each: an evbuffer given
// them references these bytes, which live until the last holder (this, or an evbuffer that has
// not written them yet) lets go. Worker thread only, like the evbuffers.
class SharedBytes {
 public:
  SharedBytes() = default;

  size_t size() const { return bytes_ ? bytes_->size() : 0; }
  bool empty() const { return size() == 0; }
  std::string_view view() const { return bytes_ ? std::string_view(*bytes_) : std::string_view(); }
  std::span<const uint8_t> span() const {
    return {reinterpret_cast<const uint8_t*>(view().data()), view().size()};
  }

  // Replaces the held bytes by the first `count` bytes of `buffer`, drained as they are copied
  // (a piece at a time), so the buffer's memory is given back while the copy grows.
  void takeFrom(evbuffer* buffer, size_t count);
  // Appends `more`; bytes an evbuffer still references are copied first, never changed.
  void append(std::string_view more);
  // Lets go of the bytes (and their memory, once no evbuffer references them).
  void clear() { bytes_.reset(); }
  // The bytes as a string of its own: moved out when nothing else references them.
  std::string release();
  // Adds the bytes to `out`: a large run by reference (no copy), a small one copied.
  void appendTo(evbuffer* out) const;

 private:
  std::shared_ptr<std::string> bytes_;
};

}  // namespace cutover::proxy
