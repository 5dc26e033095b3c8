#pragma once

// A blocking HTTP/1.1 client for `cutover ctl`: one request per connection, plain HTTP only.
// Beast and Asio stay inside http_client.cc; their exceptions never leave it.

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace cutover::admin {

struct HttpRequest {
  std::string host;          // a name or a literal address ("127.0.0.1", "::1")
  uint16_t port = 0;
  std::string method;        // "GET", "PUT", "POST"
  std::string target;        // "/flags"
  std::string body;          // sent as application/json when not empty
  std::string bearer_token;  // sent as `Authorization: Bearer <token>` when not empty
};

struct HttpReply {
  int status = 0;
  std::string body;
};

// Resolves, connects, sends `request` and reads the whole answer (bodies up to 16 MiB); connecting,
// sending and reading together take at most `timeout` (resolving a name is left to the system
// resolver's own timeouts; a literal address needs none). Any answer, 4xx and 5xx included, is a reply; the error Status means no
// answer was read and says at which step it failed ("connect: Connection refused",
// "timed out after 10 s while connecting").
Result<HttpReply> sendHttpRequest(const HttpRequest& request, std::chrono::milliseconds timeout);

}  // namespace cutover::admin
