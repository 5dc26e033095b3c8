#include "admin/admin_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "admin/bearer_auth.h"
#include "common/log.h"
#include "common/ssl_errors.h"

namespace cutover::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kBodyLimit = 1 << 20;
constexpr std::chrono::seconds kReadTimeout{10};  // also bounds the TLS handshake
constexpr std::chrono::seconds kWriteTimeout{10};
// A TLS close_notify exchange; a peer that does not answer is simply disconnected.
constexpr std::chrono::seconds kTlsShutdownTimeout{1};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// admin.tls: the server certificate (chain) and key, TLS 1.2 or newer.
Result<std::unique_ptr<ssl::context>> loadTlsContext(const config::AdminTlsConfig& tls) {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    return Status::error(fmt::format("admin.tls.cert_file: cannot load the certificate '{}': {}", tls.cert_file,
                                     takeSslErrors()));
  }
  // OpenSSL 3 checks the key against the certificate while loading it; older ones do not.
  const bool loaded = SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) == 1;
  const unsigned long last = ERR_peek_last_error();
  const bool mismatch = ERR_GET_LIB(last) == ERR_LIB_X509 && ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH;
  if (!loaded && !mismatch) {
    return Status::error(fmt::format("admin.tls.key_file: cannot load the private key '{}': {}", tls.key_file,
                                     takeSslErrors()));
  }
  if (mismatch || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return Status::error(fmt::format("admin.tls.key_file: '{}' is not the key of admin.tls.cert_file '{}'",
                                     tls.key_file, tls.cert_file));
  }
  return context;
}

bool isMutating(std::string_view method) {
  return method == "PUT" || method == "POST" || method == "DELETE" || method == "PATCH";
}

// A response plus the headers the server itself adds.
struct Reply {
  Response response;
  std::string allow;  // for 405
};

}  // namespace

Response errorResponse(int status, const std::string& message) {
  return Response{status, "application/json", nlohmann::json{{"error", message}}.dump()};
}

// What the server keeps of a connection, plain or TLS alike (so stop() can close it).
class Session {
 public:
  virtual ~Session() = default;
  virtual void close() = 0;
};

class AdminServer::Impl {
 public:
  Impl(std::optional<std::string> token, std::unique_ptr<ssl::context> tls)
      : token_(std::move(token)), tls_(std::move(tls)), acceptor_(ioc_) {
    route("GET", "/healthz",
          [](const Request&) { return Response{200, "application/json", R"({"status":"ok"})"}; });
    route("GET", "/metrics", [this](const Request&) {
      std::function<std::string()> source;
      {
        std::lock_guard lock(mutex_);
        source = metrics_source_;
      }
      if (!source) return errorResponse(503, "metrics source not set");
      return Response{200, "text/plain; version=0.0.4", source()};
    });
  }

  ~Impl() { stop(); }

  void listen(const config::HostPort& where) {
    boost::system::error_code ec;
    asio::ip::address address = asio::ip::make_address(where.host, ec);
    tcp::endpoint endpoint;
    if (!ec) {
      endpoint = tcp::endpoint(address, where.port);
    } else {
      // A host name ("localhost"): the first address it resolves to.
      tcp::resolver resolver(ioc_);
      auto results = resolver.resolve(where.host, std::to_string(where.port));  // throws
      endpoint = results.begin()->endpoint();
    }
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
  }

  void run() {
    accept();
    thread_ = std::thread([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& e) {
          log::error("admin: unexpected exception, serving on: {}", e.what());
        }
      }
    });
  }

  void stop() {
    if (stopping_.exchange(true)) {
      if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
      return;
    }
    // Runs on the admin thread: the acceptor and the sessions are only touched there. Closing
    // them fails their pending operations, nothing re-arms (stopping_), and run() returns.
    asio::post(ioc_, [this] { closeAll(); });
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  void route(std::string method, std::string path, Handler handler) {
    std::lock_guard lock(mutex_);
    routes_[std::move(path)][std::move(method)] = std::move(handler);
  }

  void setMetricsSource(std::function<std::string()> source) {
    std::lock_guard lock(mutex_);
    metrics_source_ = std::move(source);
  }

  uint16_t port() const { return port_; }
  bool stopping() const { return stopping_.load(); }

  Reply dispatch(const Request& request) {
    if (isMutating(request.method)) {
      if (!token_) {
        return {errorResponse(403, "admin token not configured (set admin.token_env or admin.token_file)"), {}};
      }
      if (!bearerTokenMatches(request.authorization, *token_)) {
        return {errorResponse(401, "missing or wrong bearer token (Authorization: Bearer <token>)"), {}};
      }
    }
    std::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    Handler handler;
    std::string allow;
    {
      std::lock_guard lock(mutex_);
      auto methods = routes_.find(std::string(path));
      if (methods == routes_.end()) {
        return {errorResponse(404, "no such endpoint: " + std::string(path)), {}};
      }
      auto found = methods->second.find(request.method);
      if (found == methods->second.end()) {
        for (const auto& [method, unused] : methods->second) allow += (allow.empty() ? "" : ", ") + method;
        return {errorResponse(405, request.method + " not allowed on " + std::string(path)), allow};
      }
      handler = found->second;  // a copy: the handler runs without the lock
    }
    try {
      return {handler(request), {}};
    } catch (const std::exception& e) {
      log::error("admin: {} {} failed: {}", request.method, std::string(path), e.what());
      return {errorResponse(500, std::string("internal error: ") + e.what()), {}};
    } catch (...) {
      return {errorResponse(500, "internal error"), {}};
    }
  }

 private:
  void accept();
  void closeAll();

  const std::optional<std::string> token_;
  const std::unique_ptr<ssl::context> tls_;  // null: plain HTTP
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;  // guards routes_ and metrics_source_ (route() may be called from any thread)
  std::map<std::string, std::map<std::string, Handler>> routes_;  // path -> method -> handler
  std::function<std::string()> metrics_source_;

  std::vector<std::weak_ptr<Session>> sessions_;  // admin thread only
};

// One client connection: (TLS handshake,) read a request, answer, repeat while keep-alive.
// `Stream` is beast::tcp_stream or TlsStream; everything past the handshake is the same code.
// Lives on the admin thread; kept alive by the handlers of its pending operation.
template <typename Stream>
class HttpSession : public Session, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  template <typename... TlsContext>
  HttpSession(tcp::socket socket, AdminServer::Impl& server, TlsContext&... tls)
      : stream_(std::move(socket), tls...), server_(server) {
    boost::system::error_code ec;
    auto remote = lowest().socket().remote_endpoint(ec);
    if (!ec) remote_address_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(kReadTimeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  // A plain-HTTP client, a scanner, a client that distrusts the
                                  // certificate: nothing to answer in HTTP.
                                  log::debug("admin: TLS handshake with {} failed: {}", self->remote_address_,
                                             ec.message());
                                  return self->close();
                                }
                                self->read();
                              });
    } else {
      read();
    }
  }

  void close() override {
    boost::system::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().socket().close(ec);
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void read() {
    if (server_.stopping()) return close();
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    lowest().expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return answer(errorResponse(413, "request body over 1 MiB"), {}, 11, false);
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return answer(errorResponse(400, "malformed HTTP request: " + ec.message()), {}, 11, false);
    }
    if (ec == http::error::end_of_stream) return finish();  // the client is done
    if (ec) return close();  // peer gone, timeout, stop(), TLS error

    const auto& message = parser_->get();
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.body = message.body();
    request.authorization = std::string(message[http::field::authorization]);
    request.remote_address = remote_address_;
    Reply reply = server_.dispatch(request);
    answer(std::move(reply.response), std::move(reply.allow), message.version(), message.keep_alive());
  }

  void answer(Response response, std::string allow, unsigned version, bool keep_alive) {
    response_.emplace(static_cast<http::status>(response.status), version);
    response_->set(http::field::content_type, response.content_type);
    response_->set(http::field::cache_control, "no-store");
    if (response.status == 401) response_->set(http::field::www_authenticate, "Bearer");
    if (!allow.empty()) response_->set(http::field::allow, allow);
    response_->body() = std::move(response.body);
    response_->keep_alive(keep_alive);
    response_->prepare_payload();
    lowest().expires_after(kWriteTimeout);
    http::async_write(stream_, *response_,
                      [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec) return self->close();
                        if (!keep_alive) return self->finish();
                        self->read();
                      });
  }

  // The last answer is out (or the client closed its side): TLS says close_notify first, so the
  // client can tell the end from a truncation.
  void finish() {
    if constexpr (kTls) {
      if (!server_.stopping()) {
        lowest().expires_after(kTlsShutdownTimeout);
        return stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->close(); });
      }
    }
    close();
  }

  Stream stream_;
  AdminServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::string remote_address_;
};

void AdminServer::Impl::accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (stopping()) return;
    if (!ec) {
      std::erase_if(sessions_, [](const std::weak_ptr<Session>& s) { return s.expired(); });
      if (tls_) {
        auto session = std::make_shared<HttpSession<TlsStream>>(std::move(socket), *this, *tls_);
        sessions_.push_back(session);
        session->start();
      } else {
        auto session = std::make_shared<HttpSession<beast::tcp_stream>>(std::move(socket), *this);
        sessions_.push_back(session);
        session->start();
      }
    } else {
      log::warn("admin: accept failed: {}", ec.message());
    }
    accept();
  });
}

void AdminServer::Impl::closeAll() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  for (auto& weak : sessions_) {
    if (auto session = weak.lock()) session->close();
  }
  sessions_.clear();
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AdminServer::~AdminServer() { stop(); }

Result<std::unique_ptr<AdminServer>> AdminServer::start(const config::AdminConfig& config) {
  std::unique_ptr<ssl::context> tls;
  if (config.tls) {
    try {
      auto loaded = loadTlsContext(*config.tls);
      if (!loaded.isOk()) return loaded.status();
      tls = std::move(loaded.value());
    } catch (const std::exception& e) {  // asio's context constructor throws
      return Status::error(std::string("admin.tls: cannot create a TLS context: ") + e.what());
    }
  }
  try {
    auto impl = std::make_unique<Impl>(config.token, std::move(tls));
    impl->listen(config.listen);
    impl->run();
    return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
  } catch (const std::exception& e) {
    return Status::error("admin: cannot listen on " + config.listen.toString() + ": " + e.what());
  }
}

void AdminServer::route(std::string method, std::string path, Handler handler) {
  impl_->route(std::move(method), std::move(path), std::move(handler));
}

void AdminServer::setMetricsSource(std::function<std::string()> source) {
  impl_->setMetricsSource(std::move(source));
}

uint16_t AdminServer::port() const { return impl_->port(); }

void AdminServer::stop() {
  if (impl_) impl_->stop();
}

}  // namespace cutover::admin
