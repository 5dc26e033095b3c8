#pragma once

#include "proxy/cancel_registry.h"
#include "proxy/connection.h"
#include "proxy/libevent_handles.h"

namespace cutover::proxy {

// Delivers one CancelRequest to a store on a fresh connection, then closes it. Owns itself: it
// outlives the client's cancel connection (closed at once, as PostgreSQL does) and frees itself
// when the request is written, the connection fails, or the timeout passes.
class CancelForwarder : public ConnectionCallbacks {
 public:
  static void send(event_base* base, const CancelTarget& target, int timeout_ms);

 private:
  CancelForwarder(event_base* base, int timeout_ms);
  void onReadable(Connection&) override {}
  void onDrained(Connection&) override;   // the request is written: done
  void onClosed(Connection&, const std::string& reason) override;
  static void onTimeout(evutil_socket_t, short, void* arg);

  Connection connection_;
  EventPtr timer_;
};

}  // namespace cutover::proxy
