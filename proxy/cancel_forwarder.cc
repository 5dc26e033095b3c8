#include "proxy/cancel_forwarder.h"

#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/message_io.h"

namespace cutover::proxy {

CancelForwarder::CancelForwarder(event_base* base, int timeout_ms) : connection_(base, -1, *this) {
  timer_.reset(evtimer_new(base, &CancelForwarder::onTimeout, this));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(timer_.get(), &tv);
}

void CancelForwarder::send(event_base* base, const CancelTarget& target, int timeout_ms) {
  auto* self = new CancelForwarder(base, timeout_ms);
  append(self->connection_.output(),
         protocol::encode(protocol::CancelRequest{target.backend_process_id, target.backend_secret_key}));
  if (!self->connection_.connect(reinterpret_cast<const sockaddr*>(&target.address), target.address_length)) {
    log::warn("cancel request could not be forwarded: connecting to the store failed");
    delete self;
  }
}

void CancelForwarder::onDrained(Connection&) { delete this; }

void CancelForwarder::onClosed(Connection&, const std::string& reason) {
  log::warn("cancel request could not be forwarded: {}", reason);
  delete this;
}

void CancelForwarder::onTimeout(evutil_socket_t, short, void* arg) {
  log::warn("cancel request could not be forwarded: the store did not accept the connection in time");
  delete static_cast<CancelForwarder*>(arg);
}

}  // namespace cutover::proxy
