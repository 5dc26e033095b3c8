#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "protocol/framing.h"
#include "proxy/libevent_handles.h"
#include "proxy/message_io.h"

namespace cutover::proxy {

// Turns one store's bytes into message events for a routed session. The handler sees each
// message's header once (Handler::onMessage) and says what becomes of it: streamed (forwarded to
// a buffer, or dropped) in pieces as its bytes arrive, never gathered whole; taken by the handler
// (it drained the message itself); or left until more bytes are in. A handler that needs a
// message whole (a control message, a digested row) asks MessageView::body() and waits when it
// is not all in yet. What is left of a streamed message is kept across calls.
//
// The handler (a template parameter, as FrameScanner's visitor):
//   bool reading();                         // false: stop (checked before each piece or message)
//   Action onMessage(const protocol::Frame&, MessageView&);
//   evbuffer* streamTarget();               // where the next piece of a forwarded message goes
//   void pieceStreamed();                   // a piece of a forwarded message went there
//   void messageStreamed(char type, bool more_buffered);   // a forwarded message ended
//   void invalid(const std::string& reason);                // the store sent a malformed header
class LaneReader {
 public:
  enum class Action {
    Forward,    // stream it to the handler's streamTarget()
    Drop,       // stream it nowhere
    Consumed,   // the handler drained it from the buffer itself
    Wait,       // leave it: more bytes are needed (the next call sees it again)
    Stop,       // leave it and stop reading this lane (the session moved on)
  };

  // The message at the front of the buffer, as the handler sees it.
  class MessageView {
   public:
    MessageView(evbuffer* buffer, const protocol::Frame& frame) : buffer_(buffer), frame_(frame) {}
    // Whether every byte of the message is in the buffer.
    bool whole() const { return evbuffer_get_length(buffer_) >= frame_.totalSize(); }
    // Its body made contiguous, or nothing when it is not all in yet. Valid until the buffer
    // changes; the message stays in the buffer.
    std::optional<std::span<const uint8_t>> body() const {
      if (!whole()) return std::nullopt;
      return pullBody(buffer_, frame_);
    }
    evbuffer* buffer() const { return buffer_; }

   private:
    evbuffer* buffer_;
    const protocol::Frame& frame_;
  };

  explicit LaneReader(uint32_t max_length = protocol::kDefaultMaxMessageLength) : max_length_(max_length) {}

  // Reads what `in` holds. Returns false when the handler stopped (Stop, or invalid bytes).
  template <typename Handler>
  bool read(evbuffer* in, Handler& handler) {
    for (;;) {
      if (!handler.reading()) return false;
      if (remaining_ > 0) {
        const size_t n = std::min(remaining_, evbuffer_get_length(in));
        if (n == 0) return true;
        if (forwarding_) {
          evbuffer_remove_buffer(in, handler.streamTarget(), n);
          handler.pieceStreamed();
        } else {
          evbuffer_drain(in, n);
        }
        remaining_ -= n;
        if (remaining_ == 0 && forwarding_) handler.messageStreamed(type_, evbuffer_get_length(in) > 0);
        continue;
      }
      protocol::Frame frame = peekMessage(in, protocol::Direction::Backend, max_length_);
      if (frame.status == protocol::DecodeStatus::NeedMoreData) return true;
      if (frame.status == protocol::DecodeStatus::Invalid) {
        handler.invalid(frame.reason);
        return false;
      }
      MessageView view(in, frame);
      const Action action = handler.onMessage(frame, view);
      if (action == Action::Wait) return true;
      if (action == Action::Stop) return false;
      if (action == Action::Forward || action == Action::Drop) {
        remaining_ = frame.totalSize();
        forwarding_ = action == Action::Forward;
        type_ = frame.type;
      }
    }
  }

  // A message being streamed: forwarded from here on (false: its remaining bytes are dropped).
  void forwardRest(bool forward) { forwarding_ = forward; }
  bool streaming() const { return remaining_ > 0; }
  // A new connection: nothing of the old one's stream is left.
  void reset() { remaining_ = 0; forwarding_ = false; type_ = 0; }

 private:
  const uint32_t max_length_;
  size_t remaining_ = 0;
  bool forwarding_ = false;
  char type_ = 0;
};

}  // namespace cutover::proxy
