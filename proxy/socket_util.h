#pragma once

namespace cutover::proxy {

// Request/response traffic: Nagle would hold back the last segment of every reply.
void setNoDelay(int fd);

}  // namespace cutover::proxy
