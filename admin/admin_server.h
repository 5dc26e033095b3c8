#pragma once

// The admin HTTP API (DESIGN.md "Admin HTTP API"): HTTP/1.1 on its own thread (Boost.Beast),
// optionally over TLS (admin.tls), JSON bodies, bearer-token auth on every mutating call. Beast
// and Asio stay inside admin_server.cc; their exceptions never leave admin/.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"

namespace cutover::admin {

struct Request {
  std::string method;          // "GET", "PUT", ...
  std::string target;          // as sent, query string included: "/mismatches?limit=5"
  std::string body;
  std::string authorization;   // the Authorization header, verbatim ("" when absent)
  std::string remote_address;  // "127.0.0.1:53122"
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// Runs on the admin thread; one request at a time, so a slow handler delays the others (and
// stop()). A handler that throws answers 500.
using Handler = std::function<Response(const Request&)>;

// {"error": message} with the given status.
Response errorResponse(int status, const std::string& message);

class AdminServer {
 public:
  // Binds config.listen and starts serving: HTTP/1.1 with keep-alive, request bodies up to
  // 1 MiB (413 beyond), 10 s to read a request (an idle keep-alive connection is closed after
  // 10 s). Port 0 picks a free port (tests; the config validator requires >= 1).
  //
  // Mutating methods (PUT, POST, DELETE, PATCH) need `Authorization: Bearer <config.token>`,
  // compared in constant time: 401 otherwise; with no token configured they get 403. The check
  // runs before routing, so an unauthenticated caller learns nothing about the routes.
  // Unknown path: 404; known path, other method: 405 (with Allow).
  //
  // Built in: GET /healthz -> {"status":"ok"}; GET /metrics -> the metrics source's text
  // (503 until setMetricsSource).
  //
  // With config.tls every connection is TLS (1.2 or newer) with the certificate and key loaded
  // here (an unloadable file is an error naming admin.tls.cert_file or key_file); the handshake
  // has the 10 s of a request, and a failed one (a plain-HTTP client) closes the connection with
  // a debug log line. Everything after the handshake is as in plain HTTP.
  static Result<std::unique_ptr<AdminServer>> start(const config::AdminConfig& config);

  ~AdminServer();  // stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Adds or replaces the handler for (method, path); `path` has no query string. Any thread,
  // before or after start.
  void route(std::string method, std::string path, Handler handler);

  // The Prometheus text served at GET /metrics (text/plain; version=0.0.4). Called on the admin
  // thread at each scrape. Any thread.
  void setMetricsSource(std::function<std::string()> source);

  // The bound port.
  uint16_t port() const;

  // Closes the acceptor and every open connection and joins the admin thread. Idempotent. Must
  // not be called from a handler (it would join its own thread).
  void stop();

  class Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cutover::admin
