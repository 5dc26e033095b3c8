#pragma once

#include <cstddef>

#include "proxy/libevent_handles.h"

namespace cutover::proxy {

// A ramped read's answer (served by the store that is not authoritative), held back from the
// client until it is complete or larger than the limit: until then nothing has reached the
// client, so if that store dies, stalls (ramp_read_timeout_ms) or refuses the read as a write
// (25006), the read simply runs again on the authoritative store and the held bytes are dropped.
// Past the limit, or at the end of each flushed answer of an open batch (a cursor reading in
// pieces), the answer streams from then on. No sockets: the caller moves bytes between buffers.
class RampHold {
 public:
  static constexpr size_t kDefaultLimit = 256 * 1024;
  explicit RampHold(size_t limit = kDefaultLimit) : limit_(limit) {}

  // The buffer a ramped answer's next bytes go to while it is held.
  evbuffer* buffer();
  bool holding() const { return hold_ && evbuffer_get_length(hold_.get()) > 0; }

  // After bytes were added: a complete answer, or one past the limit, goes to `client`. True
  // when an incomplete one went (it streams from here on).
  bool release(evbuffer* client, bool complete);
  // An open batch's flushed answer ended: what is held goes to `client`. True if anything went.
  bool releaseFlushed(evbuffer* client);
  // The read is given up here: what is held is dropped.
  void discard();

  // Whether a message of `type` ends what an open batch flushed (the store's answer to an
  // Execute, an error, or the last answer to a Parse/Bind/Describe/Close when nothing more of
  // it is already buffered): then its held answer goes to the client, as pass-through would.
  static bool endsFlushedAnswer(char type, bool more_buffered);

 private:
  size_t limit_;
  UniqueHandle<evbuffer, evbuffer_free> hold_;
};

}  // namespace cutover::proxy
