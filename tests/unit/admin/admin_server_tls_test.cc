// AdminServer with admin.tls: the same API over TLS 1.2+, and what a client that does not speak
// TLS (or distrusts the certificate) gets.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "admin/admin_server.h"
#include "tests/unit/admin/test_certs.h"

namespace cutover::admin {
namespace {


int connectTo(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval five{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &five, sizeof five);
  return fd;
}

// A blocking TLS client (OpenSSL on a plain socket) that verifies the server against `ca_file`.
class TlsClient {
 public:
  TlsClient(uint16_t port, const std::string& ca_file, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (max_version != 0) {
      SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");  // this client would take TLS 1.0/1.1
      SSL_CTX_set_min_proto_version(ctx_, max_version);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    }
    fd_ = connectTo(port);
    ssl_ = SSL_new(ctx_);
    SSL_set1_host(ssl_, "localhost");
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set_fd(ssl_, fd_);
    handshake_ok_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
    if (!handshake_ok_) {
      while (unsigned long code = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        handshake_error_ += text + std::string("; ");
      }
    }
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool handshakeOk() const { return handshake_ok_; }
  const std::string& handshakeError() const { return handshake_error_; }
  std::string version() const { return SSL_get_version(ssl_); }

  bool send(const std::string& bytes) { return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) > 0; }

  // One Content-Length-framed response: (status, body); status 0 when none came.
  std::pair<int, std::string> read() {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return {0, ""};
    }
    std::string head = buffer_.substr(0, header_end);
    size_t length = 0;
    if (auto at = head.find("Content-Length: "); at != std::string::npos) length = std::stoul(head.substr(at + 16));
    while (buffer_.size() < header_end + 4 + length) {
      if (!fill()) return {0, ""};
    }
    int status = std::stoi(head.substr(9, 3));
    std::string body = buffer_.substr(header_end + 4, length);
    buffer_.erase(0, header_end + 4 + length);
    return {status, body};
  }

  // True when the server ended the TLS session (close_notify or a closed socket).
  bool closedByServer() {
    char c;
    return SSL_read(ssl_, &c, 1) <= 0;
  }

 private:
  bool fill() {
    char chunk[16384];
    int n = SSL_read(ssl_, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer_.append(chunk, n);
    return true;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool handshake_ok_ = false;
  std::string handshake_error_;
  std::string buffer_;
};

std::string request(const std::string& method, const std::string& target, const std::string& extra_headers = "",
                    const std::string& body = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class AdminServerTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config::AdminConfig config;
    config.listen = {"127.0.0.1", 0};
    config.token = "s3cret";
    config.tls = config::AdminTlsConfig{certs_.certFile(), certs_.keyFile()};
    auto started = AdminServer::start(config);
    ASSERT_TRUE(started.isOk()) << started.status().message();
    server_ = std::move(*started);
    server_->route("PUT", "/flags", [](const Request& r) {
      return Response{200, "application/json", nlohmann::json{{"echo", r.body}}.dump()};
    });
  }

  TestCerts certs_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTlsTest, ServesTheApiOverTlsWithKeepAlive) {
  TlsClient client(server_->port(), certs_.caFile());
  ASSERT_TRUE(client.handshakeOk()) << client.handshakeError();
  ASSERT_TRUE(client.send(request("GET", "/healthz") + request("GET", "/nope")));
  EXPECT_EQ(client.read(), std::make_pair(200, std::string(R"({"status":"ok"})")));
  EXPECT_EQ(client.read().first, 404);
  ASSERT_TRUE(client.send(request("PUT", "/flags", "", "{}")));
  EXPECT_EQ(client.read().first, 401);  // auth as in plain HTTP
  ASSERT_TRUE(client.send(request("PUT", "/flags", "Authorization: Bearer s3cret\r\n", "{\"x\":1}")));
  auto [status, body] = client.read();
  EXPECT_EQ(status, 200);
  EXPECT_EQ(nlohmann::json::parse(body)["echo"], "{\"x\":1}");

  // Connection: close -> the answer, then the server ends the session.
  ASSERT_TRUE(client.send(request("GET", "/healthz", "Connection: close\r\n")));
  EXPECT_EQ(client.read().first, 200);
  EXPECT_TRUE(client.closedByServer());
}

TEST_F(AdminServerTlsTest, Tls12IsAcceptedAndTls11Refused) {
  TlsClient tls12(server_->port(), certs_.caFile(), TLS1_2_VERSION);
  ASSERT_TRUE(tls12.handshakeOk()) << tls12.handshakeError();
  EXPECT_EQ(tls12.version(), "TLSv1.2");
  TlsClient tls11(server_->port(), certs_.caFile(), TLS1_1_VERSION);
  EXPECT_FALSE(tls11.handshakeOk());
}

TEST_F(AdminServerTlsTest, PlainHttpGetsNoHttpAnswerAndTheServerKeepsServing) {
  for (int i = 0; i < 3; ++i) {
    int fd = connectTo(server_->port());
    ASSERT_GE(fd, 0);
    std::string bytes = request("GET", "/healthz");
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    // The server closes the connection (after at most a TLS alert): read to EOF, within the
    // socket's 5 s receive timeout.
    std::string received;
    char chunk[4096];
    ssize_t n;
    auto began = std::chrono::steady_clock::now();
    while ((n = ::recv(fd, chunk, sizeof chunk, 0)) > 0) received.append(chunk, n);
    EXPECT_EQ(n, 0) << "the connection was not closed";
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(4));
    EXPECT_EQ(received.find("HTTP/"), std::string::npos) << received;
    ::close(fd);
  }
  TlsClient client(server_->port(), certs_.caFile());
  ASSERT_TRUE(client.handshakeOk()) << client.handshakeError();
  ASSERT_TRUE(client.send(request("GET", "/healthz")));
  EXPECT_EQ(client.read().first, 200);
}

TEST_F(AdminServerTlsTest, ClientThatDistrustsTheCertificateFailsTheHandshake) {
  TlsClient client(server_->port(), certs_.otherCaFile());
  EXPECT_FALSE(client.handshakeOk());
  EXPECT_NE(client.handshakeError().find("certificate verify failed"), std::string::npos) << client.handshakeError();
  TlsClient good(server_->port(), certs_.caFile());
  EXPECT_TRUE(good.handshakeOk()) << good.handshakeError();
}

TEST_F(AdminServerTlsTest, StopClosesIdleTlsConnectionsPromptly) {
  TlsClient idle(server_->port(), certs_.caFile());
  ASSERT_TRUE(idle.handshakeOk());
  ASSERT_TRUE(idle.send(request("GET", "/healthz")));
  ASSERT_EQ(idle.read().first, 200);
  int half_open = connectTo(server_->port());  // connected, handshake never started
  ASSERT_GE(half_open, 0);
  auto began = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(1));
  EXPECT_TRUE(idle.closedByServer());
  ::close(half_open);
}

TEST(AdminServerTlsStartTest, UnloadableFilesAreErrorsNamingKeyAndFile) {
  TestCerts certs;
  config::AdminConfig config;
  config.listen = {"127.0.0.1", 0};

  std::string garbage = certs.write("garbage.pem", "not a certificate\n");
  config.tls = config::AdminTlsConfig{garbage, certs.keyFile()};
  auto started = AdminServer::start(config);
  ASSERT_FALSE(started.isOk());
  EXPECT_EQ(started.status().message().rfind("admin.tls.cert_file: cannot load the certificate '" + garbage + "': ", 0),
            0u)
      << started.status().message();

  config.tls = config::AdminTlsConfig{certs.certFile(), garbage};
  started = AdminServer::start(config);
  ASSERT_FALSE(started.isOk());
  EXPECT_EQ(started.status().message().rfind("admin.tls.key_file: cannot load the private key '" + garbage + "': ", 0),
            0u)
      << started.status().message();

  config.tls = config::AdminTlsConfig{certs.certFile(), certs.otherKeyFile()};
  started = AdminServer::start(config);
  ASSERT_FALSE(started.isOk());
  EXPECT_EQ(started.status().message(), "admin.tls.key_file: '" + certs.otherKeyFile() +
                                            "' is not the key of admin.tls.cert_file '" + certs.certFile() + "'");
}

}  // namespace
}  // namespace cutover::admin
