#include "proxy/cancel_forwarder.h"

#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/message_io.h"

namespace cutover::proxy {

CancelForwarder::CancelForwarder(event_base* base, int timeout_ms, std::function<void()> done)
    : connection_(base, -1, *this), done_(std::move(done)) {
  timer_.reset(evtimer_new(base, &CancelForwarder::onTimeout, this));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(timer_.get(), &tv);
}

CancelForwarder::~CancelForwarder() {
  if (done_) done_();
}

void CancelForwarder::send(event_base* base, const CancelTarget& target, int timeout_ms) {
  start(new CancelForwarder(base, timeout_ms, nullptr), target);
}

void CancelForwarder::sendAndConfirm(event_base* base, const CancelTarget& target, int timeout_ms,
                                     std::function<void()> done) {
  start(new CancelForwarder(base, timeout_ms, std::move(done)), target);
}

void CancelForwarder::start(CancelForwarder* self, const CancelTarget& target) {
  append(self->connection_.output(),
         protocol::encode(protocol::CancelRequest{target.backend_process_id, target.backend_secret_key}));
  if (!self->connection_.connect(reinterpret_cast<const sockaddr*>(&target.address), target.address_length)) {
    log::warn("cancel request could not be forwarded: connecting to the store failed");
    delete self;
  }
}

void CancelForwarder::onDrained(Connection&) {
  written_ = true;
  if (!done_) delete this;   // otherwise the store's close (onClosed) confirms it
}

void CancelForwarder::onClosed(Connection&, const std::string& reason) {
  if (!written_) log::warn("cancel request could not be forwarded: {}", reason);
  delete this;
}

void CancelForwarder::onTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<CancelForwarder*>(arg);
  if (self->written_) {
    log::warn("cancel request sent, but the store did not close the connection in time");
  } else {
    log::warn("cancel request could not be forwarded: the store did not accept the connection in time");
  }
  delete self;
}

}  // namespace cutover::proxy
