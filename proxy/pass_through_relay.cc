#include "proxy/pass_through_relay.h"

#include "common/metrics.h"
#include "protocol/messages.h"

namespace cutover::proxy {

void PassThroughRelay::move(FrameScanner::Pass& scanned, evbuffer* in, evbuffer* out, Pass& result) {
  if (scanned.forwardable > 0) evbuffer_remove_buffer(in, out, scanned.forwardable);
  result.forwarded = scanned.forwardable;
  result.invalid = scanned.invalid;
  result.reason = std::move(scanned.reason);
}

PassThroughRelay::ClientPass PassThroughRelay::clientToStore(evbuffer* in, evbuffer* out) {
  ClientPass result;
  FrameScanner::Pass pass = client_.scan(in, [&](const protocol::Frame& frame, size_t) {
    switch (frame.type) {
      case protocol::Terminate::kType:
        result.terminate = true;   // not relayed: closing the store connection sends its own Terminate
        return FrameScanner::Verdict::StopBefore;
      case protocol::Query::kType:
      case protocol::FunctionCall::kType:
        if (pending_ready_++ == 0) busy_since_ = std::chrono::steady_clock::now();
        break;
      case protocol::Sync::kType:
        if (pending_ready_++ == 0) busy_since_ = std::chrono::steady_clock::now();
        extended_open_ = false;
        break;
      case protocol::Parse::kType:
      case protocol::Bind::kType:
      case protocol::Execute::kType:
      case protocol::Describe::kType:
      case protocol::Close::kType:
      case protocol::Flush::kType:
        extended_open_ = true;
        break;
      default:
        break;   // COPY data and the rest carry no state the pass-through needs
    }
    return FrameScanner::Verdict::Forward;
  });
  move(pass, in, out, result);
  return result;
}

PassThroughRelay::StorePass PassThroughRelay::storeToClient(evbuffer* in, evbuffer* out) {
  StorePass result;
  FrameScanner::Pass pass = store_.scan(in, [&](const protocol::Frame& frame, size_t offset) {
    if (frame.type == protocol::ReadyForQuery::kType) {
      const int status = byteAt(in, offset + 5);
      // Wait for the status byte, so the transaction state is known when the message is relayed.
      if (status < 0) return FrameScanner::Verdict::StopBefore;
      transaction_status_ = static_cast<char>(status);
      if (pending_ready_ > 0 && --pending_ready_ == 0) {
        // Pass-through serves the old store. Pipelined requests count as one, from the first
        // request to the last answer.
        metrics::global().statementDuration(metrics::StoreLabel::Old).observe(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - busy_since_).count());
      }
      result.saw_ready = true;
    }
    return FrameScanner::Verdict::Forward;
  });
  move(pass, in, out, result);
  return result;
}

}  // namespace cutover::proxy
