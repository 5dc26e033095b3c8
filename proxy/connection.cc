#include "proxy/connection.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "proxy/socket_util.h"

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
  evbuffer_iovec vec[2];
  const int n_vec = evbuffer_reserve_space(self->input_, kReadChunk, vec, 2);
  if (n_vec <= 0) return self->fail("out of memory reading from the socket");
  ssize_t n = ::readv(self->fd_, reinterpret_cast<iovec*>(vec), n_vec);
  if (n > 0) {
    size_t left = static_cast<size_t>(n);
    for (int i = 0; i < n_vec; ++i) {
      const size_t used = left < vec[i].iov_len ? left : vec[i].iov_len;
      vec[i].iov_len = used;
      left -= used;
    }
    evbuffer_commit_space(self->input_, vec, n_vec);
    self->callbacks_.onReadable(*self);
    return;
  }
  evbuffer_commit_space(self->input_, vec, 0);
  if (n < 0 && wouldBlock(errno)) return;
  self->fail(n == 0 ? "connection closed by peer" : std::strerror(errno));
}

void Connection::flush() {
  if (state_ != State::Open || write_armed_) return;   // an armed write event will flush
  while (evbuffer_get_length(output_) > 0) {
    const int n = evbuffer_write(output_, fd_);
    if (n > 0) continue;
    if (n < 0 && wouldBlock(errno)) break;
    // Report the error from the loop, never from inside the caller's flush().
    state_ = State::Failed;
    failure_ = n == 0 ? "connection closed by peer" : std::strerror(errno);
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
  read_event_.reset();
  write_event_.reset();
  ::close(fd_);
  fd_ = -1;
  state_ = State::Closed;
  write_armed_ = false;
}

}  // namespace cutover::proxy
