#pragma once

// A blocking HTTP/1.1 client for `cutover ctl`: one request per connection, plain HTTP or HTTPS
// (TLS 1.2+, OpenSSL). Beast and Asio stay inside http_client.cc; their exceptions never leave it.

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
  // HTTPS: the server's certificate must chain to `ca_file` (PEM; "" = the system's trust store,
  // OpenSSL's default paths) and name `host` (a DNS name or an IP address in subjectAltName),
  // unless `verify` is false.
  bool tls = false;
  std::string ca_file;
  bool verify = true;
};

struct HttpReply {
  int status = 0;
  std::string body;
};

// Why no answer was read, for the caller's advice.
enum class HttpFailure {
  None,
  Setup,              // the request or the TLS settings themselves (an unreadable ca_file)
  Connect,            // resolving, connecting, or a timeout
  CertificateUntrusted,  // the certificate does not chain to a trusted CA, or has expired, ...
  HostNameMismatch,   // the certificate is valid but does not name `host`
  NotTls,             // TLS asked, the server answered something else (a plain-HTTP port)
  TlsHandshake,       // any other TLS failure
  NoHttpAnswer,       // connected and sent, but what came back is not HTTP (a TLS port?)
};

// Resolves, connects, (for TLS) handshakes, sends `request` and reads the whole answer (bodies up
// to 16 MiB); connecting, handshaking, sending and reading together take at most `timeout`
// (resolving a name is left to the system resolver's own timeouts; a literal address needs
// none). Any answer, 4xx and 5xx included, is a reply; the error Status means no answer was read
// and says at which step it failed ("connecting: Connection refused", "timed out after 10 s while
// connecting", "TLS handshake: certificate verify failed: self-signed certificate in certificate
// chain"), and `failure` (when given) says what kind of failure it was.
Result<HttpReply> sendHttpRequest(const HttpRequest& request, std::chrono::milliseconds timeout,
                                  HttpFailure* failure = nullptr);

}  // namespace cutover::admin
