#include "proxy/connection.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/socket_util.h"

#include <openssl/err.h>

#include <algorithm>

namespace cutover::proxy {
namespace {

// One recv takes up to this much: large enough that a streamed result needs few syscalls,
// and reserved only while reading (an idle connection holds no buffer memory).
constexpr size_t kReadChunk = 64 * 1024;

bool wouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

}  // namespace

Connection::Connection(event_base* base, int fd, ConnectionCallbacks& callbacks)
    : callbacks_(callbacks), base_(base), fd_(fd), state_(fd >= 0 ? State::Open : State::Connecting),
      input_(evbuffer_new()), output_(evbuffer_new()) {
  if (fd_ >= 0) {
    evutil_make_socket_nonblocking(fd_);
    setNoDelay(fd_);
    armEvents();
  }
}

Connection::~Connection() {
  close();
  evbuffer_free(input_);
  evbuffer_free(output_);
}

void Connection::armEvents() {
  read_event_.reset(event_new(base_, fd_, EV_READ | EV_PERSIST, &Connection::onReadEvent, this));
  write_event_.reset(event_new(base_, fd_, EV_WRITE, &Connection::onWriteEvent, this));
  if (reading_ && state_ == State::Open) event_add(read_event_.get(), nullptr);
}

bool Connection::connect(const sockaddr* address, socklen_t length) {
  fd_ = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  setNoDelay(fd_);
  armEvents();
  if (::connect(fd_, address, length) == 0 || errno == EINPROGRESS) {
    write_armed_ = true;
    event_add(write_event_.get(), nullptr);   // writability = the connect finished
    return true;
  }
  const int err = errno;
  close();
  errno = err;
  return false;
}

void Connection::onReadEvent(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ == State::Handshaking) return self->continueHandshake();
  if (self->ssl_) return self->readTls();
  self->readPlain();
}

void Connection::readPlain() {
  evbuffer_iovec vec[2];
  const int n_vec = evbuffer_reserve_space(input_, kReadChunk, vec, 2);
  if (n_vec <= 0) return fail("out of memory reading from the socket");
  ssize_t n = ::readv(fd_, reinterpret_cast<iovec*>(vec), n_vec);
  if (n > 0) {
    size_t left = static_cast<size_t>(n);
    for (int i = 0; i < n_vec; ++i) {
      const size_t used = left < vec[i].iov_len ? left : vec[i].iov_len;
      vec[i].iov_len = used;
      left -= used;
    }
    evbuffer_commit_space(input_, vec, n_vec);
    callbacks_.onReadable(*this);
    return;
  }
  evbuffer_commit_space(input_, vec, 0);
  if (n < 0 && wouldBlock(errno)) return;
  fail(n == 0 ? "connection closed by peer" : std::strerror(errno));
}

void Connection::readTls() {
  // TLS records are at most 16 KiB; read until OpenSSL wants more from the socket, but no more
  // than kReadChunk per event so one busy connection cannot starve the worker's others.
  size_t got = 0;
  while (got < kReadChunk) {
    evbuffer_iovec vec;
    if (evbuffer_reserve_space(input_, 16 * 1024, &vec, 1) <= 0) return fail("out of memory reading from the socket");
    ERR_clear_error();
    const int n = SSL_read(ssl_.get(), vec.iov_base, static_cast<int>(vec.iov_len));
    if (n > 0) {
      vec.iov_len = static_cast<size_t>(n);
      evbuffer_commit_space(input_, &vec, 1);
      got += static_cast<size_t>(n);
      continue;
    }
    evbuffer_commit_space(input_, &vec, 0);
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_WANT_WRITE) {
      tls_read_wants_write_ = true;
      write_armed_ = true;
      event_add(write_event_.get(), nullptr);
      break;
    }
    if (got > 0) break;   // deliver what arrived; the error shows again on the next read
    if (err == SSL_ERROR_ZERO_RETURN) return fail("connection closed by peer");
    if (err == SSL_ERROR_SYSCALL && errno == 0) return fail("connection closed by peer");
    return fail(err == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : "TLS error: " + takeSslErrors());
  }
  // Decrypted bytes OpenSSL still holds do not wake epoll: come back for them from the loop.
  if (got >= kReadChunk && SSL_pending(ssl_.get()) > 0) event_active(read_event_.get(), EV_READ, 1);
  if (got > 0) callbacks_.onReadable(*this);
}

void Connection::startTls(SslPtr ssl, bool server_side) {
  if (state_ != State::Open || !ssl) return fail("cannot start TLS: " + takeSslErrors());
  ssl_ = std::move(ssl);
  SSL_set_fd(ssl_.get(), fd_);
  if (server_side) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
  state_ = State::Handshaking;
  event_add(read_event_.get(), nullptr);   // the handshake reads whatever reading_ says
  continueHandshake();
}

void Connection::continueHandshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_.get());
  if (rc == 1) {
    state_ = State::Open;
    if (!reading_) event_del(read_event_.get());
    callbacks_.onTlsReady(*this);
    return;
  }
  const int err = SSL_get_error(ssl_.get(), rc);
  if (err == SSL_ERROR_WANT_READ) return;
  if (err == SSL_ERROR_WANT_WRITE) {
    write_armed_ = true;
    event_add(write_event_.get(), nullptr);
    return;
  }
  fail("TLS handshake failed: " + (err == SSL_ERROR_SYSCALL && errno != 0 ? std::string(std::strerror(errno))
                                                                           : takeSslErrors()));
}

bool Connection::writeSome() {
  while (evbuffer_get_length(output_) > 0) {
    if (!ssl_) {
      const int n = evbuffer_write(output_, fd_);
      if (n > 0) continue;
      if (n < 0 && wouldBlock(errno)) return true;
      failure_ = n == 0 ? "connection closed by peer" : std::strerror(errno);
      return false;
    }
    evbuffer_iovec first;
    if (evbuffer_peek(output_, -1, nullptr, &first, 1) < 1) return true;
    // OpenSSL requires a write it asked us to retry to be repeated with the same length.
    size_t length = tls_retry_length_ != 0 ? tls_retry_length_ : std::min<size_t>(first.iov_len, 64 * 1024);
    if (length > first.iov_len) {
      // The retried bytes span chains: make them contiguous (rare; at most 64 KiB).
      evbuffer_pullup(output_, static_cast<ev_ssize_t>(length));
      evbuffer_peek(output_, -1, nullptr, &first, 1);
    }
    ERR_clear_error();
    const int n = SSL_write(ssl_.get(), first.iov_base, static_cast<int>(length));
    if (n > 0) {
      tls_retry_length_ = 0;
      evbuffer_drain(output_, static_cast<size_t>(n));
      continue;
    }
    const int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      tls_retry_length_ = length;
      return true;
    }
    failure_ = err == SSL_ERROR_SYSCALL && errno != 0 ? std::string(std::strerror(errno)) : "TLS error: " + takeSslErrors();
    return false;
  }
  return true;
}

void Connection::flush() {
  if (state_ != State::Open || write_armed_) return;   // an armed write event will flush
  if (!writeSome()) {
    // Report the error from the loop, never from inside the caller's flush().
    state_ = State::Failed;
    event_active(write_event_.get(), EV_WRITE, 1);
    return;
  }
  if (evbuffer_get_length(output_) > 0) {
    write_armed_ = true;
    event_add(write_event_.get(), nullptr);
  }
}

void Connection::onWriteEvent(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  self->write_armed_ = false;
  if (self->state_ == State::Failed) return self->fail(self->failure_);
  if (self->state_ == State::Handshaking) return self->continueHandshake();
  if (self->state_ == State::Connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return self->fail(std::strerror(err));
    self->state_ = State::Open;
    if (self->reading_) event_add(self->read_event_.get(), nullptr);
    self->callbacks_.onConnected(*self);
    if (self->state_ != State::Open) return;
    const bool had_output = evbuffer_get_length(self->output_) > 0;
    self->flush();
    // Last action: the callback may destroy us.
    if (had_output && self->state_ == State::Open && !self->write_armed_ &&
        evbuffer_get_length(self->output_) == 0) {
      self->callbacks_.onDrained(*self);
    }
    return;
  }
  if (self->state_ != State::Open) return;
  if (self->tls_read_wants_write_) {
    self->tls_read_wants_write_ = false;
    self->readTls();
    if (self->state_ != State::Open) return;
  }
  self->flush();
  if (self->state_ == State::Open && !self->write_armed_ && evbuffer_get_length(self->output_) == 0) {
    self->callbacks_.onDrained(*self);
  }
}

void Connection::setReading(bool on) {
  if (reading_ == on) return;
  reading_ = on;
  if (state_ != State::Open || !read_event_) return;
  if (on) {
    event_add(read_event_.get(), nullptr);
    // Bytes OpenSSL decrypted before reading paused do not wake epoll.
    if (ssl_ && SSL_pending(ssl_.get()) > 0) event_active(read_event_.get(), EV_READ, 1);
  } else {
    event_del(read_event_.get());
  }
}

void Connection::fail(const std::string& reason) {
  close();
  callbacks_.onClosed(*this, reason);
}

void Connection::close() {
  if (fd_ < 0) return;
  if (ssl_ && state_ == State::Open) {
    SSL_shutdown(ssl_.get());   // best effort close_notify; never waits
  }
  ssl_.reset();
  read_event_.reset();
  write_event_.reset();
  ::close(fd_);
  fd_ = -1;
  state_ = State::Closed;
  write_armed_ = false;
}

}  // namespace cutover::proxy
