#include "proxy/ramp_hold.h"

#include "protocol/messages.h"

namespace cutover::proxy {

evbuffer* RampHold::buffer() {
  if (!hold_) hold_.reset(evbuffer_new());
  return hold_.get();
}

bool RampHold::release(evbuffer* client, bool complete) {
  if (!holding()) return false;
  if (!complete && evbuffer_get_length(hold_.get()) <= limit_) return false;
  evbuffer_add_buffer(client, hold_.get());
  return !complete;
}

bool RampHold::releaseFlushed(evbuffer* client) {
  if (!holding()) return false;
  evbuffer_add_buffer(client, hold_.get());
  return true;
}

void RampHold::discard() {
  if (hold_) evbuffer_drain(hold_.get(), evbuffer_get_length(hold_.get()));
}

bool RampHold::endsFlushedAnswer(char type, bool more_buffered) {
  switch (type) {
    case protocol::PortalSuspended::kType:
    case protocol::CommandComplete::kType:
    case protocol::EmptyQueryResponse::kType:
    case protocol::ErrorResponse::kType:
      return true;
    case protocol::ParseComplete::kType:
    case protocol::BindComplete::kType:
    case protocol::CloseComplete::kType:
    case protocol::ParameterDescription::kType:
    case protocol::RowDescription::kType:
    case protocol::NoData::kType:
      return !more_buffered;   // else the rest of the answer is already here
    default:
      return false;
  }
}

}  // namespace cutover::proxy
