#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "proxy/frame_scanner.h"
#include "proxy/libevent_handles.h"

namespace cutover::proxy {

// Pass-through: the client's and the store's messages relayed frame by frame, streamed (a
// message is forwarded as its bytes arrive, never gathered whole), keeping only what a boundary
// needs: requests in flight (Query/FunctionCall/Sync not yet answered by ReadyForQuery), an
// extended batch open, the store's transaction status. No sockets: ClientSession moves the bytes
// between its connections' buffers and applies backpressure.
class PassThroughRelay {
 public:
  struct Pass {
    size_t forwarded = 0;     // bytes moved to the other side's output
    bool invalid = false;     // a malformed header follows what was forwarded
    std::string reason;
  };
  struct ClientPass : Pass {
    bool terminate = false;   // the client sent Terminate (not relayed: closing says it)
  };
  struct StorePass : Pass {
    bool saw_ready = false;   // a ReadyForQuery went: transactionStatus() is its status
  };

  explicit PassThroughRelay(uint32_t max_client_message)
      : client_(protocol::Direction::Frontend, max_client_message),
        store_(protocol::Direction::Backend, protocol::kDefaultMaxMessageLength) {}

  // Moves the client's messages at the front of `in` to `out`.
  ClientPass clientToStore(evbuffer* in, evbuffer* out);
  // Moves the store's messages at the front of `in` to `out`; each request's time, from its
  // first message to its last answer, goes to cutover_statement_duration_seconds{store=old}.
  StorePass storeToClient(evbuffer* in, evbuffer* out);

  // Nothing of the client's is in flight: every request answered, no extended batch open, no
  // message half relayed.
  bool clientIdle() const { return pending_ready_ == 0 && !extended_open_ && client_.atBoundary(); }
  // … and nothing of the store's half relayed either: flags may change here.
  bool atBoundary() const { return clientIdle() && store_.atBoundary(); }
  char transactionStatus() const { return transaction_status_; }

 private:
  // Moves what the scan allowed from `in` to `out` and says so in `result`.
  static void move(FrameScanner::Pass& scanned, evbuffer* in, evbuffer* out, Pass& result);

  FrameScanner client_;
  FrameScanner store_;
  int pending_ready_ = 0;
  std::chrono::steady_clock::time_point busy_since_{};   // pending_ready_ went 0 → 1
  bool extended_open_ = false;                           // extended messages since the last Sync
  char transaction_status_ = 'I';
};

}  // namespace cutover::proxy
