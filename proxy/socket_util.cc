#include "proxy/socket_util.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cutover::proxy {

void setNoDelay(int fd) {
  // Fails harmlessly (EOPNOTSUPP) on a Unix socket, which has no Nagle to turn off.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Status claimUnixSocketPath(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::ok();
    return Status::error(fmt::format("cannot inspect '{}': {}", path, std::strerror(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::error(fmt::format("'{}' exists and is not a socket; remove it or choose another listen path", path));
  }
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) {
    return Status::error(fmt::format("Unix socket path '{}' is longer than {} bytes", path, sizeof address.sun_path - 1));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::error(fmt::format("cannot create a socket: {}", std::strerror(errno)));
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int err = errno;
  ::close(fd);
  if (rc == 0) {
    return Status::error(fmt::format("another server is already listening on '{}' (is cutover already running?)", path));
  }
  if (err != ECONNREFUSED) {
    return Status::error(fmt::format("cannot tell whether '{}' is in use ({}); remove it if no server owns it", path,
                                     std::strerror(err)));
  }
  // Nobody accepts on it: left by a process that did not exit cleanly.
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::error(fmt::format("cannot remove the stale socket '{}': {}", path, std::strerror(errno)));
  }
  return Status::ok();
}

}  // namespace cutover::proxy
