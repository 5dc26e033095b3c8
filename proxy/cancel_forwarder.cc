#include "proxy/cancel_forwarder.h"

#include "common/log.h"
#include "protocol/messages.h"
#include "proxy/message_io.h"

namespace cutover::proxy {

CancelForwarder::CancelForwarder(event_base* base, int timeout_ms) {
  bev_.reset(bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE));
  timer_.reset(evtimer_new(base, &CancelForwarder::onTimeout, this));
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(timer_.get(), &tv);
}

void CancelForwarder::send(event_base* base, const CancelTarget& target, int timeout_ms) {
  auto* self = new CancelForwarder(base, timeout_ms);
  bufferevent_setcb(self->bev_.get(), nullptr, &CancelForwarder::onWrite, &CancelForwarder::onEvent, self);
  append(bufferevent_get_output(self->bev_.get()),
         protocol::encode(protocol::CancelRequest{target.backend_process_id, target.backend_secret_key}));
  if (bufferevent_socket_connect(self->bev_.get(), reinterpret_cast<const sockaddr*>(&target.address),
                                 static_cast<int>(target.address_length)) != 0) {
    log::warn("cancel request could not be forwarded: connecting to the store failed");
    delete self;
    return;
  }
  bufferevent_enable(self->bev_.get(), EV_WRITE);
}

void CancelForwarder::onWrite(bufferevent*, void* arg) {
  // The whole request is written; the store acts on it and closes its side.
  delete static_cast<CancelForwarder*>(arg);
}

void CancelForwarder::onEvent(bufferevent*, short what, void* arg) {
  if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
    log::warn("cancel request could not be forwarded: {}", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    delete static_cast<CancelForwarder*>(arg);
  }
}

void CancelForwarder::onTimeout(evutil_socket_t, short, void* arg) {
  log::warn("cancel request could not be forwarded: the store did not accept the connection in time");
  delete static_cast<CancelForwarder*>(arg);
}

}  // namespace cutover::proxy
