#include "admin/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <exception>
#include <optional>

namespace cutover::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

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

}  // namespace

Result<HttpReply> sendHttpRequest(const HttpRequest& request, std::chrono::milliseconds timeout) {
  try {
    asio::io_context ioc;
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    // Synchronous: a literal address resolves at once; a name waits for the system resolver.
    auto endpoints = resolver.resolve(request.host, std::to_string(request.port), ec);
    if (ec) return failure("resolving the host", ec, timeout);

    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    ec = runOne(ioc, [&](auto handler) { stream.async_connect(endpoints, std::move(handler)); });
    if (ec) return failure("connecting", ec, timeout);

    http::verb verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) return Status::error("unknown HTTP method " + request.method);
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
    if (ec) return failure("sending the request", ec, timeout);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    ec = runOne(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, std::move(handler)); });
    if (ec) return failure("reading the answer", ec, timeout);

    stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // the answer is in; errors do not matter
    HttpReply reply;
    reply.status = static_cast<int>(parser.get().result_int());
    reply.body = std::move(parser.get().body());
    return reply;
  } catch (const std::exception& e) {
    return Status::error(std::string("HTTP client: ") + e.what());
  }
}

}  // namespace cutover::admin
