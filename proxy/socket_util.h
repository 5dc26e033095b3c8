#pragma once

#include <string>

#include "common/status.h"

namespace cutover::proxy {

// Request/response traffic: Nagle would hold back the last segment of every reply.
void setNoDelay(int fd);

// Before binding a Unix socket at `path`: a socket file left behind by a process that died (no
// one accepts on it) is removed, as PostgreSQL does with its own. A socket that still accepts
// connections, or a file that is not a socket, is an error naming the path; nothing is removed.
Status claimUnixSocketPath(const std::string& path);

}  // namespace cutover::proxy
