#include "admin/admin_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
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

namespace cutover::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kBodyLimit = 1 << 20;
constexpr std::chrono::seconds kReadTimeout{10};
constexpr std::chrono::seconds kWriteTimeout{10};

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

class Session;

class AdminServer::Impl {
 public:
  explicit Impl(std::optional<std::string> token) : token_(std::move(token)), acceptor_(ioc_) {
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

// One client connection: read a request, answer, repeat while keep-alive. Lives on the admin
// thread; kept alive by the handlers of its pending operation.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, AdminServer::Impl& server)
      : stream_(std::move(socket)), server_(server) {
    boost::system::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_address_ = remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void read() {
    if (server_.stopping()) return close();
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void close() {
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

 private:
  void onRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return answer(errorResponse(413, "request body over 1 MiB"), {}, 11, false);
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      return answer(errorResponse(400, "malformed HTTP request: " + ec.message()), {}, 11, false);
    }
    if (ec) return close();  // peer closed, timeout, stop()

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
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) return self->close();
                        self->read();
                      });
  }

  beast::tcp_stream stream_;
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
      auto session = std::make_shared<Session>(std::move(socket), *this);
      sessions_.push_back(session);
      session->read();
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
  try {
    auto impl = std::make_unique<Impl>(config.token);
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
