// `cutover ctl` end to end against the real AdminServer (in process, its own port) with stand-in
// handlers for the API routes: what goes on the wire, what is printed, the exit codes.
#include "admin/ctl.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "tests/unit/admin/test_certs.h"

namespace cutover::admin {
namespace {

using nlohmann::json;

const char* const kSnapshot =
    R"({"version":7,"writes":"dual","mirror":"sync","reads_new_percent":10,"shadow_percent":0,)"
    R"("sticky":"session","tables":{"orders":{"reads_new_percent":50}},)"
    R"("changed_at":"2026-11-21T07:50:01.123Z","changed_by":"admin 127.0.0.1:5555","reason":"ramp"})";

const char* const kFlagsText =
    "version: 7\n"
    "writes: dual\n"
    "mirror: sync\n"
    "reads_new_percent: 10\n"
    "shadow_percent: 0\n"
    "sticky: session\n"
    "tables:\n"
    "  orders:\n"
    "    reads_new_percent: 50\n"
    "changed_at: 2026-11-21T07:50:01.123Z\n"
    "changed_by: admin 127.0.0.1:5555\n"
    "reason: ramp\n";

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

class CtlRunTest : public ::testing::Test {
 protected:
  // With `certs`, the server is HTTPS (admin.tls) and admin_ an https:// URL.
  void start(std::optional<std::string> token = "s3cret", const TestCerts* certs = nullptr) {
    config::AdminConfig config;
    config.enabled = true;
    config.listen = {"127.0.0.1", 0};
    config.token = std::move(token);
    if (certs) config.tls = config::AdminTlsConfig{certs->certFile(), certs->keyFile()};
    auto started = AdminServer::start(config);
    ASSERT_TRUE(started.isOk()) << started.status().message();
    server_ = std::move(*started);
    admin_ = (certs ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(server_->port());
  }
  std::string url(const std::string& scheme, const std::string& host) const {
    return scheme + "://" + host + ":" + std::to_string(server_->port());
  }

  // Serves `status` and `body` on (method, path) and records what arrived.
  void serve(const std::string& method, const std::string& path, int status, std::string body) {
    server_->route(method, path, [this, status, body](const Request& request) {
      std::lock_guard lock(mutex_);
      received_.push_back(request);
      return Response{status, "application/json", body};
    });
  }

  std::vector<Request> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

  Outcome run(std::vector<std::string> args, std::map<std::string, std::string> env = {{"USER", "ana"}},
              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::ostringstream out, err;
    CtlEnvironment environment{out, err,
                               [env](const std::string& name) -> std::optional<std::string> {
                                 auto found = env.find(name);
                                 if (found == env.end()) return std::nullopt;
                                 return found->second;
                               },
                               timeout};
    args.insert(args.begin(), {"--admin", admin_});
    Outcome outcome;
    outcome.code = runCtl(args, environment);
    outcome.out = out.str();
    outcome.err = err.str();
    return outcome;
  }

  std::unique_ptr<AdminServer> server_;
  std::string admin_;
  std::mutex mutex_;
  std::vector<Request> received_;
};

TEST_F(CtlRunTest, FlagsReadableAndJson) {
  start();
  serve("GET", "/flags", 200, kSnapshot);
  Outcome outcome = run({"flags"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, kFlagsText);
  EXPECT_EQ(outcome.err, "");

  outcome = run({"flags", "--json"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, std::string(kSnapshot) + "\n");

  auto requests = received();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/flags");
  EXPECT_EQ(requests[0].body, "");
  EXPECT_EQ(requests[0].authorization, "");  // reads send no token
}

TEST_F(CtlRunTest, SetSendsTheBodyWithTheToken) {
  start();
  serve("PUT", "/flags", 200, kSnapshot);
  Outcome outcome = run({"set", "reads_new_percent=10", "tables.orders.reads_new_percent=50", "tables.orders.writes=",
                         "--reason", "ramp to 10%", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, kFlagsText);
  auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PUT");
  EXPECT_EQ(requests[0].target, "/flags");
  EXPECT_EQ(requests[0].authorization, "Bearer s3cret");
  EXPECT_EQ(json::parse(requests[0].body),
            json::parse(R"({"reads_new_percent":10,"tables":{"orders":{"reads_new_percent":50,"writes":null}},
                            "reason":"ramp to 10%"})"));
}

TEST_F(CtlRunTest, TokenFromTheEnvironmentAndTheDefaultReason) {
  start();
  serve("PUT", "/flags", 200, kSnapshot);
  Outcome outcome = run({"set", "writes=dual"}, {{"USER", "ana"}, {"CUTOVER_ADMIN_TOKEN", "s3cret"}});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].authorization, "Bearer s3cret");
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"writes":"dual","reason":"cutover ctl by ana"})"));
}

TEST_F(CtlRunTest, RefusedSetPrintsTheServersErrorAndStatus) {
  start();
  serve("PUT", "/flags", 400, R"({"error":"invalid flags: colour: unknown key; reads_new_percent: must be 0-100"})");
  Outcome outcome = run({"set", "colour=red", "reads_new_percent=250", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err,
            "cutover ctl: PUT /flags refused (400): invalid flags: colour: unknown key; reads_new_percent: must be "
            "0-100\n");
}

TEST_F(CtlRunTest, WrongOrMissingTokenSaysSoAndWhereTokensComeFrom) {
  start();
  serve("PUT", "/flags", 200, kSnapshot);
  Outcome wrong = run({"set", "writes=dual", "--token", "guess"});
  EXPECT_EQ(wrong.code, 1);
  EXPECT_EQ(wrong.err,
            "cutover ctl: PUT /flags refused (401): missing or wrong bearer token (Authorization: Bearer <token>)\n"
            "cutover ctl: the admin token (from --token) is wrong: it must equal the token the proxy reads from "
            "its admin.token_env or admin.token_file\n");
  Outcome missing = run({"rollback"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_EQ(missing.err,
            "cutover ctl: POST /rollback refused (401): missing or wrong bearer token (Authorization: Bearer "
            "<token>)\n"
            "cutover ctl: no admin token given: pass --token T or --token-file F, or set CUTOVER_ADMIN_TOKEN, to "
            "the token the proxy reads from its admin.token_env or admin.token_file\n");
  Outcome from_env = run({"set", "writes=dual"}, {{"CUTOVER_ADMIN_TOKEN", "stale"}});
  EXPECT_EQ(from_env.code, 1);
  EXPECT_NE(from_env.err.find("the admin token (from $CUTOVER_ADMIN_TOKEN) is wrong"), std::string::npos)
      << from_env.err;
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, ServerWithoutTokenRefusesChanges) {
  start(std::nullopt);
  Outcome outcome = run({"rollback", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err,
            "cutover ctl: POST /rollback refused (403): admin token not configured (set admin.token_env or "
            "admin.token_file)\n"
            "cutover ctl: the proxy has no admin token configured, so it refuses every change: set "
            "admin.token_env or admin.token_file in its config and restart it\n");
}

TEST_F(CtlRunTest, RollbackOneLineAndForce) {
  start();
  serve("POST", "/rollback", 200,
        R"({"flags":{"version":8,"writes":"dual","reads_new_percent":0},"workers":2,"applied_ms":0.41})");
  Outcome outcome = run({"rollback", "--force", "--token", "s3cret", "--reason", "p99 doubled"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, "rolled back: flags v8, reads_new_percent 0, writes dual; applied by 2 workers in 0.4 ms\n");
  auto requests = received();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/rollback");
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"reason":"p99 doubled","force":true})"));

  outcome = run({"rollback", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(json::parse(received().back().body), json::parse(R"({"reason":"cutover ctl by ana","force":false})"));
}

TEST_F(CtlRunTest, SetForceSendsForceAndTheReason) {
  start();
  serve("PUT", "/flags", 200, R"({"version":9,"reads_new_percent":5})");
  Outcome outcome =
      run({"set", "reads_new_percent=5", "--force", "--reason", "verify ran on the replica", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(json::parse(received().back().body),
            json::parse(R"({"reads_new_percent":5,"reason":"verify ran on the replica","force":true})"));
  outcome = run({"set", "reads_new_percent=5", "--token", "s3cret", "--reason", "ramp"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(json::parse(received().back().body), json::parse(R"({"reads_new_percent":5,"reason":"ramp"})"));
}

TEST_F(CtlRunTest, RollbackPastThePointOfNoReturn) {
  start();
  serve("POST", "/rollback", 409, R"({"error":"writes is new: past the point of no return; pass force"})");
  Outcome outcome = run({"rollback", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err, "cutover ctl: POST /rollback refused (409): writes is new: past the point of no return; pass force\n");
}

TEST_F(CtlRunTest, StatusWithUnknownAndMissingKeys) {
  start();
  serve("GET", "/status", 200, R"({"sessions":3,"stores":{"old":{"up":true}},"brand_new":{"x":[1,2]}})");
  Outcome outcome = run({"status"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out,
            "stores:\n"
            "  old:\n"
            "    up: true\n"
            "sessions: 3\n"
            "brand_new:\n"
            "  x: [1, 2]\n");
}

TEST_F(CtlRunTest, MissingRouteIs404WithAHint) {
  start();
  Outcome outcome = run({"status"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err,
            "cutover ctl: GET /status refused (404): no such endpoint: /status\n"
            "cutover ctl: this proxy's admin API does not serve GET /status (an older cutover build?)\n");
}

TEST_F(CtlRunTest, MissingMethodIs405WithAHint) {
  start();
  serve("GET", "/flags", 200, kSnapshot);
  Outcome outcome = run({"set", "writes=dual", "--token", "s3cret"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err,
            "cutover ctl: PUT /flags refused (405): PUT not allowed on /flags\n"
            "cutover ctl: this proxy's admin API does not serve PUT /flags (an older cutover build?)\n");
}

TEST_F(CtlRunTest, AnswersThatAreNotJson) {
  start();
  serve("GET", "/flags", 200, "<html>proxy in the way</html>");
  Outcome outcome = run({"flags"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err, "cutover ctl: GET /flags answered 200 with a body that is not JSON: <html>proxy in the way</html>\n");
  serve("GET", "/status", 502, "");
  outcome = run({"status"});
  EXPECT_EQ(outcome.code, 1);
  EXPECT_EQ(outcome.err, "cutover ctl: GET /status refused (502): (no message)\n");
}

TEST_F(CtlRunTest, UsageErrorsSendNothing) {
  start();
  serve("PUT", "/flags", 200, kSnapshot);
  for (const auto& args : std::vector<std::vector<std::string>>{{"set", "reads_new_percent=ten", "--token", "s3cret"},
                                                                {"set", "writes="},
                                                                {"flags", "--colour"},
                                                                {"launch"},
                                                                {"set", "writes=dual", "--token-file", "/nonexistent/t"},
                                                                {"flags", "--admin", "ftp://127.0.0.1:1"},
                                                                {"flags", "--insecure"},
                                                                {"flags", "--cacert", "ca.pem"}}) {
    Outcome outcome = run(args);
    EXPECT_EQ(outcome.code, 2) << args[0];
    EXPECT_TRUE(outcome.err.starts_with("cutover ctl: ")) << outcome.err;
    EXPECT_TRUE(outcome.err.ends_with("\n(cutover ctl --help lists commands and options)\n")) << outcome.err;
  }
  EXPECT_EQ(run({"set", "writes=dual", "--reason", "caf\xe9", "--token", "s3cret"}).err,
            "cutover ctl: the arguments are not valid UTF-8 (check the terminal's locale)\n"
            "(cutover ctl --help lists commands and options)\n");
  EXPECT_EQ(run({"rollback", "--reason", "\xff", "--token", "s3cret"}).code, 2);
  EXPECT_EQ(run({"set", "reads_new_percent=ten"}).err,
            "cutover ctl: set: 'reads_new_percent=ten': reads_new_percent needs an integer, e.g. "
            "reads_new_percent=10\n(cutover ctl --help lists commands and options)\n");
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, HelpPrintsTheUsage) {
  start();
  Outcome outcome = run({"--help"});
  EXPECT_EQ(outcome.code, 0);
  EXPECT_EQ(outcome.out, kCtlUsage);
}

// --- https ---------------------------------------------------------------------------------------

const char* const kInsecureWarning =
    "cutover ctl: warning: --insecure: the admin API's certificate is not verified; anyone on the path could "
    "read the token and change the flags\n";

TEST_F(CtlRunTest, HttpsWithCacertVerifiesCertificateAndHost) {
  TestCerts certs;
  start("s3cret", &certs);
  serve("GET", "/flags", 200, kSnapshot);
  serve("PUT", "/flags", 200, kSnapshot);
  for (const char* host : {"127.0.0.1", "localhost"}) {  // IP and DNS subjectAltName
    admin_ = url("https", host);
    Outcome outcome = run({"flags", "--cacert", certs.caFile()});
    EXPECT_EQ(outcome.code, 0) << outcome.err;
    EXPECT_EQ(outcome.out, kFlagsText);
    EXPECT_EQ(outcome.err, "");
  }
  Outcome outcome = run({"set", "reads_new_percent=10", "--token", "s3cret", "--cacert=" + certs.caFile()});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  auto requests = received();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].authorization, "Bearer s3cret");
}

TEST_F(CtlRunTest, HttpsUntrustedCertificateIsExit3WithTheReason) {
  TestCerts certs;
  start("s3cret", &certs);
  serve("GET", "/flags", 200, kSnapshot);
  // No --cacert: the system's trust store does not know the test CA.
  Outcome outcome = run({"flags"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_EQ(outcome.out, "");
  EXPECT_EQ(outcome.err, "cutover ctl: the admin API at " + admin_ +
                             " is not trusted (TLS handshake: certificate verify failed: unable to get local issuer "
                             "certificate): pass --cacert FILE with the CA that signed the certificate in the proxy's "
                             "admin.tls.cert_file (the system's trust store was used), or pass --insecure to skip the "
                             "check\n");
  // Another CA.
  outcome = run({"flags", "--cacert", certs.otherCaFile()});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_NE(outcome.err.find("is not trusted (TLS handshake: certificate verify failed: "), std::string::npos)
      << outcome.err;
  EXPECT_NE(outcome.err.find("check that --cacert " + certs.otherCaFile() + " holds the CA that signed"),
            std::string::npos)
      << outcome.err;
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, HttpsWrongHostNameIsExit3) {
  TestCerts certs({"DNS:admin.example"});
  start("s3cret", &certs);
  serve("GET", "/flags", 200, kSnapshot);
  Outcome outcome = run({"flags", "--cacert", certs.caFile()});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_EQ(outcome.err, "cutover ctl: the admin API's certificate at " + admin_ +
                             " does not name '127.0.0.1' (TLS handshake: certificate verify failed: IP address "
                             "mismatch): use a host name or address the certificate lists in its subjectAltName, or "
                             "pass --insecure to skip the check\n");
  admin_ = url("https", "localhost");
  outcome = run({"flags", "--cacert", certs.caFile()});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_NE(outcome.err.find("does not name 'localhost' (TLS handshake: certificate verify failed: hostname mismatch)"),
            std::string::npos)
      << outcome.err;
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, HttpsInsecureSkipsVerificationAndWarns) {
  TestCerts certs({"DNS:admin.example"});
  start("s3cret", &certs);
  serve("GET", "/flags", 200, kSnapshot);
  Outcome outcome = run({"flags", "--insecure"});
  EXPECT_EQ(outcome.code, 0) << outcome.err;
  EXPECT_EQ(outcome.out, kFlagsText);
  EXPECT_EQ(outcome.err, kInsecureWarning);
  EXPECT_EQ(received().size(), 1u);
}

TEST_F(CtlRunTest, HttpsToAPlainPortSaysUseHttp) {
  start();
  serve("GET", "/flags", 200, kSnapshot);
  admin_ = url("https", "127.0.0.1");
  Outcome outcome = run({"flags", "--insecure"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_TRUE(outcome.err.starts_with(kInsecureWarning)) << outcome.err;
  EXPECT_NE(outcome.err.find("cutover ctl: the admin API at " + admin_ + " does not speak TLS (TLS handshake: "),
            std::string::npos)
      << outcome.err;
  EXPECT_TRUE(outcome.err.ends_with("): without admin.tls in the proxy's config it serves plain HTTP; use " +
                                    url("http", "127.0.0.1") + "\n"))
      << outcome.err;
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, HttpToATlsPortSaysUseHttps) {
  TestCerts certs;
  start("s3cret", &certs);
  serve("GET", "/flags", 200, kSnapshot);
  admin_ = url("http", "127.0.0.1");
  Outcome outcome = run({"flags"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_TRUE(outcome.err.starts_with("cutover ctl: no HTTP answer from the admin API at " + admin_ +
                                      " (reading the answer: "))
      << outcome.err;
  EXPECT_TRUE(outcome.err.ends_with("): if the proxy's config has admin.tls, use https://\n")) << outcome.err;
  EXPECT_TRUE(received().empty());
}

TEST_F(CtlRunTest, UnreadableCacertIsAUsageError) {
  TestCerts certs;
  start("s3cret", &certs);
  std::string not_pem = certs.write("not-a-ca.pem", "hello\n");
  for (const std::string& file : {std::string("/nonexistent/ca.pem"), not_pem}) {
    Outcome outcome = run({"flags", "--cacert", file});
    EXPECT_EQ(outcome.code, 2);
    EXPECT_TRUE(outcome.err.starts_with("cutover ctl: --cacert " + file + ": cannot load the CA certificates in '" +
                                        file + "': "))
        << outcome.err;
  }
}

// A port nothing listens on: bound, never listened to.
TEST(CtlUnreachableTest, ConnectionRefusedIsExit3NamingTheUrl) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  std::ostringstream out, err;
  CtlEnvironment environment{out, err, [](const std::string&) { return std::optional<std::string>(); }};
  int code = runCtl({"flags", "--admin", url}, environment);
  ::close(fd);
  EXPECT_EQ(code, 3);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "cutover ctl: cannot reach the admin API at " + url +
                           " (connecting: Connection refused): check admin.listen in the proxy's config (the admin "
                           "section must be present) and that the proxy is running, or pass --admin URL\n");
}

// A listener that accepts (the kernel's backlog) but never answers.
TEST(CtlUnreachableTest, NoAnswerTimesOutAsExit3) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t length = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  std::ostringstream out, err;
  CtlEnvironment environment{out, err, [](const std::string&) { return std::optional<std::string>(); },
                             std::chrono::milliseconds(300)};
  int code = runCtl({"status", "--admin", url}, environment);
  ::close(fd);
  EXPECT_EQ(code, 3);
  EXPECT_NE(err.str().find("cannot reach the admin API at " + url + " (timed out after 300 ms while reading the answer)"),
            std::string::npos)
      << err.str();
}

}  // namespace
}  // namespace cutover::admin
