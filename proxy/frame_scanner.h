#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "protocol/framing.h"
#include "proxy/libevent_handles.h"
#include "proxy/message_io.h"

namespace cutover::proxy {

// Walks the messages at the front of one direction's input buffer without copying them, so the
// caller can move a whole run of messages with one evbuffer_remove_buffer. A message may be
// forwarded in pieces as its bytes arrive (streaming); the scanner remembers how much of it is
// still to come across passes. The caller must forward exactly `forwardable` bytes per pass.
class FrameScanner {
 public:
  enum class Verdict { Forward, StopBefore };
  struct Pass {
    size_t forwardable = 0;    // bytes at the front that may be moved now
    bool invalid = false;      // a malformed header follows the forwardable bytes
    bool stopped = false;      // the visitor stopped before a message
    std::string reason;        // why the header is invalid
  };

  FrameScanner(protocol::Direction direction, uint32_t max_length)
      : direction_(direction), max_length_(max_length) {}

  // `visit(const protocol::Frame&, size_t offset)` sees each message header that begins in this
  // pass (offset = where the message starts in `buffer`) and returns Forward or StopBefore.
  template <typename Visit>
  Pass scan(evbuffer* buffer, Visit&& visit) {
    Pass pass;
    const size_t available = evbuffer_get_length(buffer);
    while (pass.forwardable < available) {
      if (remaining_ > 0) {
        const size_t n = remaining_ < available - pass.forwardable ? remaining_ : available - pass.forwardable;
        pass.forwardable += n;
        remaining_ -= n;
        continue;
      }
      protocol::Frame frame = peekMessageAt(buffer, pass.forwardable, direction_, max_length_);
      if (frame.status == protocol::DecodeStatus::NeedMoreData) break;
      if (frame.status == protocol::DecodeStatus::Invalid) {
        pass.invalid = true;
        pass.reason = std::move(frame.reason);
        break;
      }
      if (visit(frame, pass.forwardable) == Verdict::StopBefore) {
        pass.stopped = true;
        break;
      }
      remaining_ = frame.totalSize();
    }
    return pass;
  }

  // True between messages: nothing of a partly forwarded message is still to come.
  bool atBoundary() const { return remaining_ == 0; }

 private:
  const protocol::Direction direction_;
  const uint32_t max_length_;
  size_t remaining_ = 0;
};

}  // namespace cutover::proxy
