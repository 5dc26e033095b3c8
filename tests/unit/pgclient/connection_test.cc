// Connection without a PostgreSQL server: refused, silent, interrupted, not connected. The
// statement paths run against real servers in integration.verify.
#include "pgclient/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace cutover::pgclient {
namespace {

// A TCP listener on a free loopback port that accepts into its backlog and never speaks.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

ConnectParams paramsTo(uint16_t port) {
  ConnectParams p;
  p.set("host", "127.0.0.1").set("port", std::to_string(port)).set("dbname", "app");
  p.set("user", "u").set("sslmode", "disable");
  return p;
}

uint16_t closedPort() {
  SilentListener listener;  // bound, then closed: nothing listens there afterwards
  return listener.port();
}

TEST(Connection, RefusedNamesTheServer) {
  const uint16_t port = closedPort();
  auto conn = Connection::connect(paramsTo(port), deadlineIn(2000));
  ASSERT_FALSE(conn.isOk());
  const std::string prefix = "cannot connect to 127.0.0.1:" + std::to_string(port) + "/app: ";
  EXPECT_EQ(conn.status().message().substr(0, prefix.size()), prefix) << conn.status().message();
  EXPECT_NE(conn.status().message().find("refused"), std::string::npos) << conn.status().message();
}

TEST(Connection, SilentServerCostsTheDeadline) {
  SilentListener listener;
  const auto start = std::chrono::steady_clock::now();
  auto conn = Connection::connect(paramsTo(listener.port()), deadlineIn(300));
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(conn.isOk());
  EXPECT_EQ(conn.status().message(), "cannot connect to 127.0.0.1:" +
                                         std::to_string(listener.port()) +
                                         "/app: no answer in time");
  EXPECT_GE(took, std::chrono::milliseconds(290));
  EXPECT_LT(took, std::chrono::milliseconds(2000));
}

TEST(Connection, ReadableInterruptFdEndsTheWait) {
  SilentListener listener;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_EQ(::write(pipe_fds[1], "x", 1), 1);
  auto conn = Connection::connect(paramsTo(listener.port()), deadlineIn(5000), pipe_fds[0]);
  ASSERT_FALSE(conn.isOk());
  EXPECT_EQ(conn.status().message(), "connecting to 127.0.0.1:" +
                                         std::to_string(listener.port()) +
                                         "/app interrupted (stopping)");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(Connection, NotConnected) {
  Connection conn;
  EXPECT_FALSE(conn.isOpen());
  const Reply reply = conn.exec("SELECT 1", {}, deadlineIn(100));
  EXPECT_EQ(reply.error, "not connected");
  EXPECT_FALSE(reply.ok());
  EXPECT_EQ(conn.send("SELECT 1", {}).message(), "not connected");
  EXPECT_EQ(conn.finish(deadlineIn(100)).error, "not connected");
  EXPECT_EQ(conn.quoteIdentifier("x"), "");
}

}  // namespace
}  // namespace cutover::pgclient
