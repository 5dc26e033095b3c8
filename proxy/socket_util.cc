#include "proxy/socket_util.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace cutover::proxy {

void setNoDelay(int fd) {
  // Fails harmlessly (EOPNOTSUPP) on a Unix socket, which has no Nagle to turn off.
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace cutover::proxy
