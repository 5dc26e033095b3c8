#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <string>

#include "admin/bearer_auth.h"

namespace cutover::admin {
namespace {

// A blocking HTTP/1.1 client over a plain socket: enough to send exact bytes and read one
// Content-Length-framed response.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += n;
    }
    return true;
  }

  struct HttpResponse {
    int status = 0;
    std::string head;        // status line and headers, as received
    std::string lower_head;  // the same, lower-cased, to find header names
    std::string body;
    // The value of header `name` (lower-case), as received.
    std::string header(const std::string& name) const {
      auto at = lower_head.find("\r\n" + name + ": ");
      if (at == std::string::npos) return "";
      at += name.size() + 4;
      return head.substr(at, head.find("\r\n", at) - at);
    }
  };

  // Reads one response; status 0 when the connection closed or 5 s passed first.
  HttpResponse read() {
    HttpResponse response;
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return response;
    }
    std::string head = buffer_.substr(0, header_end + 2);
    std::string lower_head = head;
    for (char& c : lower_head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t length = 0;
    if (auto at = lower_head.find("\r\ncontent-length: "); at != std::string::npos) {
      length = std::stoul(head.substr(at + 18));
    }
    while (buffer_.size() < header_end + 4 + length) {
      if (!fill()) return response;
    }
    response.status = std::stoi(head.substr(9, 3));
    response.head = head;
    response.lower_head = lower_head;
    response.body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return response;
  }

  // True when the server closed the connection within `timeout`.
  bool closedWithin(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

 private:
  bool fill() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    char chunk[65536];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string request(const std::string& method, const std::string& target,
                    const std::string& extra_headers = "", const std::string& body = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

Client::HttpResponse roundTrip(uint16_t port, const std::string& bytes) {
  Client client(port);
  EXPECT_TRUE(client.connected());
  EXPECT_TRUE(client.send(bytes));
  return client.read();
}

std::string errorOf(const Client::HttpResponse& response) {
  auto json = nlohmann::json::parse(response.body, nullptr, false);
  return json.is_object() && json.contains("error") ? json["error"].get<std::string>() : "<none>";
}

class AdminServerTest : public ::testing::Test {
 protected:
  void startWith(std::optional<std::string> token) {
    config::AdminConfig config;
    config.listen = {"127.0.0.1", 0};
    config.token = std::move(token);
    auto started = AdminServer::start(config);
    ASSERT_TRUE(started.isOk()) << started.status().message();
    server_ = std::move(*started);
    ASSERT_NE(server_->port(), 0);
    server_->route("PUT", "/flags", [](const Request& r) {
      return Response{200, "application/json", nlohmann::json{{"echo", r.body}}.dump()};
    });
  }
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTest, HealthzAnswersOk) {
  startWith("s3cret");
  auto response = roundTrip(server_->port(), request("GET", "/healthz"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(response.body), nlohmann::json({{"status", "ok"}}));
}

TEST_F(AdminServerTest, MetricsServesTheSourceAsPrometheusText) {
  startWith("s3cret");
  EXPECT_EQ(roundTrip(server_->port(), request("GET", "/metrics")).status, 503);
  server_->setMetricsSource([] { return std::string("# TYPE cutover_x counter\ncutover_x 1\n"); });
  auto response = roundTrip(server_->port(), request("GET", "/metrics"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.header("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(response.body, "# TYPE cutover_x counter\ncutover_x 1\n");
}

TEST_F(AdminServerTest, UnknownPathIs404AndWrongMethodIs405) {
  startWith("s3cret");
  auto missing = roundTrip(server_->port(), request("GET", "/nope?x=1"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(errorOf(missing), "no such endpoint: /nope");
  auto wrong = roundTrip(server_->port(), request("GET", "/flags"));
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("allow"), "PUT");
  EXPECT_EQ(errorOf(wrong), "GET not allowed on /flags");
}

TEST_F(AdminServerTest, MutatingCallWithoutTokenIs401) {
  startWith("s3cret");
  auto response = roundTrip(server_->port(), request("PUT", "/flags", "", "{}"));
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.header("www-authenticate"), "Bearer");
  EXPECT_EQ(errorOf(response), "missing or wrong bearer token (Authorization: Bearer <token>)");
}

TEST_F(AdminServerTest, MutatingCallWithWrongTokenIs401) {
  startWith("s3cret");
  for (const char* header : {"Authorization: Bearer s3cre\r\n", "Authorization: Bearer s3cret2\r\n",
                             "Authorization: Basic s3cret\r\n", "Authorization: s3cret\r\n"}) {
    EXPECT_EQ(roundTrip(server_->port(), request("PUT", "/flags", header, "{}")).status, 401)
        << header;
  }
  // Unknown paths too: an unauthenticated caller does not learn which routes exist.
  EXPECT_EQ(roundTrip(server_->port(), request("POST", "/nope")).status, 401);
}

TEST_F(AdminServerTest, MutatingCallWithRightTokenReachesTheHandler) {
  startWith("s3cret");
  Request seen;
  server_->route("POST", "/rollback", [&seen](const Request& r) {
    seen = r;
    return Response{202, "application/json", "{}"};
  });
  auto response = roundTrip(server_->port(), request("PUT", "/flags?x=1", "Authorization: Bearer s3cret\r\n",
                                                     R"({"reads_new_percent":5})"));
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(nlohmann::json::parse(response.body)["echo"], R"({"reads_new_percent":5})");

  auto posted = roundTrip(server_->port(),
                          request("POST", "/rollback", "authorization: bearer s3cret\r\n", "x"));
  EXPECT_EQ(posted.status, 202);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.target, "/rollback");
  EXPECT_EQ(seen.body, "x");
  EXPECT_EQ(seen.authorization, "bearer s3cret");
  EXPECT_EQ(seen.remote_address.rfind("127.0.0.1:", 0), 0u) << seen.remote_address;
}

TEST_F(AdminServerTest, NoTokenConfiguredRefusesMutatingCallsWith403) {
  startWith(std::nullopt);
  auto response =
      roundTrip(server_->port(), request("PUT", "/flags", "Authorization: Bearer anything\r\n", "{}"));
  EXPECT_EQ(response.status, 403);
  EXPECT_EQ(errorOf(response), "admin token not configured (set admin.token_env or admin.token_file)");
  EXPECT_EQ(roundTrip(server_->port(), request("GET", "/healthz")).status, 200);
}

TEST_F(AdminServerTest, BodyOver1MiBIs413) {
  startWith("s3cret");
  Client client(server_->port());
  ASSERT_TRUE(client.send("PUT /flags HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                          "Content-Length: 1048577\r\n\r\n"));
  auto response = client.read();
  EXPECT_EQ(response.status, 413);
  EXPECT_EQ(errorOf(response), "request body over 1 MiB");

  // Exactly 1 MiB is accepted.
  auto ok = roundTrip(server_->port(), request("PUT", "/flags", "Authorization: Bearer s3cret\r\n",
                                               std::string(1 << 20, 'a')));
  EXPECT_EQ(ok.status, 200);
}

TEST_F(AdminServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  startWith("s3cret");
  Client client(server_->port());
  ASSERT_TRUE(client.send(request("GET", "/healthz") + request("GET", "/nope")));
  EXPECT_EQ(client.read().status, 200);
  EXPECT_EQ(client.read().status, 404);
  ASSERT_TRUE(client.send(request("GET", "/healthz")));
  EXPECT_EQ(client.read().status, 200);
}

TEST_F(AdminServerTest, MalformedRequestIs400) {
  startWith("s3cret");
  auto response = roundTrip(server_->port(), "GARBAGE\r\n\r\n");
  EXPECT_EQ(response.status, 400);
}

TEST_F(AdminServerTest, ThrowingHandlerIs500) {
  startWith("s3cret");
  server_->route("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("kaput"); });
  auto response = roundTrip(server_->port(), request("GET", "/boom"));
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(errorOf(response), "internal error: kaput");
}

TEST_F(AdminServerTest, StopJoinsPromptlyWithAnIdleKeepAliveConnection) {
  startWith("s3cret");
  Client idle(server_->port());
  ASSERT_TRUE(idle.send(request("GET", "/healthz")));
  ASSERT_EQ(idle.read().status, 200);  // the connection now waits for its next request
  auto began = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1));
  EXPECT_TRUE(idle.closedWithin(std::chrono::milliseconds(1000)));
  server_->stop();  // idempotent
  Client refused(server_->port());
  EXPECT_FALSE(refused.connected());
}

TEST(AdminServerStartTest, PortInUseIsAnError) {
  config::AdminConfig config;
  config.listen = {"127.0.0.1", 0};
  auto first = AdminServer::start(config);
  ASSERT_TRUE(first.isOk());
  config.listen.port = (*first)->port();
  auto second = AdminServer::start(config);
  ASSERT_FALSE(second.isOk());
  EXPECT_NE(second.status().message().find("admin: cannot listen on 127.0.0.1:"), std::string::npos)
      << second.status().message();
}

TEST(BearerAuthTest, MatchesOnlyTheExactToken) {
  EXPECT_TRUE(bearerTokenMatches("Bearer abc", "abc"));
  EXPECT_TRUE(bearerTokenMatches("BEARER abc", "abc"));
  EXPECT_TRUE(bearerTokenMatches("Bearer  abc ", "abc"));
  EXPECT_FALSE(bearerTokenMatches("Bearer abd", "abc"));
  EXPECT_FALSE(bearerTokenMatches("Bearer ab", "abc"));
  EXPECT_FALSE(bearerTokenMatches("Bearer abcd", "abc"));
  EXPECT_FALSE(bearerTokenMatches("Bearer ", "abc"));
  EXPECT_FALSE(bearerTokenMatches("abc", "abc"));
  EXPECT_FALSE(bearerTokenMatches("Bearer ", ""));  // an empty configured token never matches
}

}  // namespace
}  // namespace cutover::admin
