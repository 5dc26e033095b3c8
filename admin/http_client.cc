#include "admin/http_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <exception>
#include <optional>

#include "common/ssl_errors.h"

namespace cutover::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr uint64_t kBodyLimit = 16u << 20;

std::string describeTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 == 0) return fmt::format("{} s", timeout.count() / 1000);
  return fmt::format("{} ms", timeout.count());
}

// Runs the one pending operation on `ioc` to completion. The tcp_stream's expiry (set once for
// the whole exchange) bounds it: a late operation fails with beast::error::timeout. The
// synchronous Beast calls would ignore that expiry, hence the async call driven in place.
template <typename Start>
beast::error_code runOne(asio::io_context& ioc, Start start) {
  std::optional<beast::error_code> result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result.value_or(asio::error::operation_aborted);
}

Status failure(const char* step, const beast::error_code& ec, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return Status::error(fmt::format("timed out after {} while {}", describeTimeout(timeout), step));
  }
  return Status::error(fmt::format("{}: {}", step, ec.message()));
}

// Records the kind of failure for the caller and passes the Status on.
struct Failed {
  HttpFailure* out;
  Status operator()(HttpFailure kind, Status status) const {
    if (out) *out = kind;
    return status;
  }
};

bool isIpAddress(const std::string& host) {
  unsigned char address[16];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// TLS 1.2+; the peer is verified against ca_file or the system's trust store unless !verify.
Result<std::unique_ptr<ssl::context>> clientContext(const HttpRequest& request) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* ctx = context->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (!request.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return context;
  }
  if (!request.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, request.ca_file.c_str(), nullptr) != 1) {
      return Status::error(fmt::format("cannot load the CA certificates in '{}': {}", request.ca_file,
                                       takeSslErrors()));
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return Status::error("cannot load the system's trusted CA certificates: " + takeSslErrors());
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return context;
}

// SNI, and the name the certificate must carry: a DNS name, or an IP address literal.
void setPeerName(SSL* ssl, const HttpRequest& request) {
  const bool ip = isIpAddress(request.host);
  if (!ip) SSL_set_tlsext_host_name(ssl, request.host.c_str());
  if (!request.verify) return;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  if (ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, request.host.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, request.host.c_str());
  }
}

// A failed handshake, told apart by what OpenSSL knows: the verification result (the reason in
// OpenSSL's words) or the TLS error (a plain-HTTP answer reads as a "wrong version number").
Status handshakeFailure(SSL* ssl, const beast::error_code& ec, std::chrono::milliseconds timeout,
                        const Failed& failed) {
  if (ec == beast::error::timeout) return failed(HttpFailure::Connect, failure("the TLS handshake", ec, timeout));
  long verify = SSL_get_verify_result(ssl);
  if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return failed(HttpFailure::HostNameMismatch,
                  Status::error(fmt::format("TLS handshake: certificate verify failed: {}",
                                            X509_verify_cert_error_string(verify))));
  }
  if (verify != X509_V_OK) {
    return failed(HttpFailure::CertificateUntrusted,
                  Status::error(fmt::format("TLS handshake: certificate verify failed: {}",
                                            X509_verify_cert_error_string(verify))));
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_HTTP_REQUEST ||
        reason == SSL_R_PACKET_LENGTH_TOO_LONG) {
      return failed(HttpFailure::NotTls, Status::error("TLS handshake: the server did not answer in TLS (" +
                                                       ec.message() + ")"));
    }
  }
  return failed(HttpFailure::TlsHandshake, failure("TLS handshake", ec, timeout));
}

// Connects `stream` (plain or TLS), handshakes if TLS, sends the request and reads the answer.
template <typename Stream>
Result<HttpReply> exchange(asio::io_context& ioc, Stream& stream, const tcp::resolver::results_type& endpoints,
                           const HttpRequest& request, std::chrono::milliseconds timeout, const Failed& failed) {
  beast::tcp_stream& lowest = beast::get_lowest_layer(stream);
  lowest.expires_after(timeout);
  beast::error_code ec =
      runOne(ioc, [&](auto handler) { lowest.async_connect(endpoints, std::move(handler)); });
  if (ec) return failed(HttpFailure::Connect, failure("connecting", ec, timeout));
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    setPeerName(stream.native_handle(), request);
    ec = runOne(ioc, [&](auto handler) { stream.async_handshake(ssl::stream_base::client, std::move(handler)); });
    if (ec) return handshakeFailure(stream.native_handle(), ec, timeout, failed);
  }

  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) {
    return failed(HttpFailure::Setup, Status::error("unknown HTTP method " + request.method));
  }
  http::request<http::string_body> message{verb, request.target, 11};
  bool ipv6 = request.host.find(':') != std::string::npos;
  message.set(http::field::host, ipv6 ? fmt::format("[{}]:{}", request.host, request.port)
                                      : fmt::format("{}:{}", request.host, request.port));
  message.set(http::field::user_agent, "cutover-ctl");
  message.set(http::field::accept, "application/json");
  if (!request.bearer_token.empty()) {
    message.set(http::field::authorization, "Bearer " + request.bearer_token);
  }
  if (!request.body.empty()) {
    message.set(http::field::content_type, "application/json");
    message.body() = request.body;
  }
  message.keep_alive(false);
  message.prepare_payload();
  ec = runOne(ioc, [&](auto handler) { http::async_write(stream, message, std::move(handler)); });
  if (ec) return failed(HttpFailure::Connect, failure("sending the request", ec, timeout));

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  ec = runOne(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
  if (ec == beast::error::timeout) return failed(HttpFailure::Connect, failure("reading the answer", ec, timeout));
  if (ec) return failed(HttpFailure::NoHttpAnswer, failure("reading the answer", ec, timeout));

  lowest.socket().shutdown(tcp::socket::shutdown_both, ec);  // the answer is in; errors do not matter
  HttpReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  reply.body = std::move(parser.get().body());
  return reply;
}

}  // namespace

Result<HttpReply> sendHttpRequest(const HttpRequest& request, std::chrono::milliseconds timeout,
                                  HttpFailure* failure_kind) {
  const Failed failed{failure_kind};
  if (failure_kind) *failure_kind = HttpFailure::None;
  try {
    asio::io_context ioc;
    std::unique_ptr<ssl::context> tls;
    if (request.tls) {
      auto context = clientContext(request);
      if (!context.isOk()) return failed(HttpFailure::Setup, context.status());
      tls = std::move(context.value());
    }
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    // Synchronous: a literal address resolves at once; a name waits for the system resolver.
    auto endpoints = resolver.resolve(request.host, std::to_string(request.port), ec);
    if (ec) return failed(HttpFailure::Connect, failure("resolving the host", ec, timeout));
    if (tls) {
      TlsStream stream(ioc, *tls);
      return exchange(ioc, stream, endpoints, request, timeout, failed);
    }
    beast::tcp_stream stream(ioc);
    return exchange(ioc, stream, endpoints, request, timeout, failed);
  } catch (const std::exception& e) {
    return failed(HttpFailure::Setup, Status::error(std::string("HTTP client: ") + e.what()));
  }
}

}  // namespace cutover::admin
