#pragma once

#include <functional>

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
  // As send, then waits for the store to close the connection: PostgreSQL does so once it has
  // signalled the backend, so after `done` a cancel can no longer hit a statement sent later.
  // `done` runs on `base`'s thread in every case (delivered, failed, timed out), exactly once.
  static void sendAndConfirm(event_base* base, const CancelTarget& target, int timeout_ms,
                             std::function<void()> done);

 private:
  CancelForwarder(event_base* base, int timeout_ms, std::function<void()> done);
  ~CancelForwarder() override;
  static void start(CancelForwarder* self, const CancelTarget& target);
  void onReadable(Connection&) override {}
  void onDrained(Connection&) override;   // the request is written: done, or wait for the close
  void onClosed(Connection&, const std::string& reason) override;
  static void onTimeout(evutil_socket_t, short, void* arg);

  Connection connection_;
  EventPtr timer_;
  std::function<void()> done_;
  bool written_ = false;
};

}  // namespace cutover::proxy
