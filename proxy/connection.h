#pragma once

#include <sys/socket.h>

#include <string>

#include "proxy/libevent_handles.h"
#include "proxy/tls.h"

namespace cutover::proxy {

class Connection;

// Event sink of a Connection. Called from the worker's loop, never from inside flush().
// onConnected must not destroy the Connection; the others may, as their last action.
class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  virtual void onConnected(Connection&) {}
  // startTls() finished its handshake; traffic from here on is encrypted.
  virtual void onTlsReady(Connection&) {}
  // New bytes were appended to input().
  virtual void onReadable(Connection& connection) = 0;
  // output() was fully written after a write had to wait for the socket (or for the connect).
  virtual void onDrained(Connection& connection) = 0;
  // End of stream or a socket error; the connection is closed and no further callback comes.
  virtual void onClosed(Connection& connection, const std::string& reason) = 0;
};

// A non-blocking TCP socket with an input and an output evbuffer, for the data path.
// Unlike a bufferevent it writes at once when asked (flush) and only waits for EV_WRITE when the
// socket is full, and it reads straight into reserved buffer space without asking the kernel how
// much is pending first: per relayed message that is one recv and one writev, no epoll_ctl.
class Connection {
 public:
  // Adopts `fd` (already connected, e.g. accepted), or, with fd = -1, waits for connect().
  Connection(event_base* base, int fd, ConnectionCallbacks& callbacks);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts a non-blocking connect; onConnected or onClosed follows. Output appended before the
  // connection completes is sent once it does. Returns false (errno set) when it fails at once.
  bool connect(const sockaddr* address, socklen_t length);
  // Switches the open socket to TLS (after the plaintext SSLRequest answer): onTlsReady or
  // onClosed follows. Nothing may be in input() or output() at that moment.
  void startTls(SslPtr ssl, bool server_side);
  bool tls() const { return ssl_ != nullptr; }
  SSL* ssl() const { return ssl_.get(); }
  // Writes what output() holds now, as far as the socket takes it; the rest goes when it can.
  void flush();
  void setReading(bool on);
  // Closes the socket without further callbacks. Unwritten output is dropped.
  void close();

  evbuffer* input() const { return input_; }
  evbuffer* output() const { return output_; }
  bool open() const { return fd_ >= 0; }
  bool connected() const { return state_ == State::Open; }
  int fd() const { return fd_; }

 private:
  enum class State { Connecting, Handshaking, Open, Failed, Closed };
  static void onReadEvent(evutil_socket_t, short, void* arg);
  static void onWriteEvent(evutil_socket_t, short, void* arg);
  void fail(const std::string& reason);
  void armEvents();
  void readPlain();
  void readTls();
  void continueHandshake();
  // Writes as much as the socket takes; false when the connection failed (failure_ set).
  bool writeSome();

  ConnectionCallbacks& callbacks_;
  event_base* base_;
  int fd_;
  State state_;
  bool reading_ = true;
  bool write_armed_ = false;
  std::string failure_;
  SslPtr ssl_;
  size_t tls_retry_length_ = 0;     // an SSL_write that must be repeated with the same length
  bool tls_read_wants_write_ = false;
  evbuffer* input_;
  evbuffer* output_;
  EventPtr read_event_;
  EventPtr write_event_;
};

}  // namespace cutover::proxy
