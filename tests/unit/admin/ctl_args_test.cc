// `cutover ctl` argument parsing, --admin URLs, set's KEY=VALUE → PUT /flags body, token and
// reason resolution. No network.
#include "admin/ctl.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace cutover::admin {
namespace {

using nlohmann::json;

CtlOptions parsedOk(const std::vector<std::string>& args) {
  auto parsed = parseCtlArgs(args);
  EXPECT_TRUE(parsed.isOk()) << parsed.status().message();
  return parsed.isOk() ? parsed.value() : CtlOptions{};
}

std::string parseError(const std::vector<std::string>& args) {
  auto parsed = parseCtlArgs(args);
  EXPECT_FALSE(parsed.isOk()) << "parsed without error";
  return parsed.isOk() ? "" : parsed.status().message();
}

TEST(CtlArgsTest, DefaultsForACommandAlone) {
  CtlOptions options = parsedOk({"flags"});
  EXPECT_EQ(options.command, CtlCommand::Flags);
  EXPECT_EQ(options.admin, "http://127.0.0.1:9187");
  EXPECT_FALSE(options.token);
  EXPECT_FALSE(options.token_file);
  EXPECT_FALSE(options.reason);
  EXPECT_FALSE(options.json);
  EXPECT_FALSE(options.force);
  EXPECT_FALSE(options.cacert);
  EXPECT_FALSE(options.insecure);
  EXPECT_TRUE(options.assignments.empty());
}

TEST(CtlArgsTest, TlsOptions) {
  CtlOptions options = parsedOk({"--admin", "https://admin.internal:9187", "--cacert", "/etc/cutover/ca.pem", "flags"});
  EXPECT_EQ(options.cacert, "/etc/cutover/ca.pem");
  EXPECT_FALSE(options.insecure);
  EXPECT_EQ(parsedOk({"status", "--cacert=ca.pem"}).cacert, "ca.pem");
  options = parsedOk({"status", "--insecure"});
  EXPECT_TRUE(options.insecure);
  EXPECT_FALSE(options.cacert);

  EXPECT_EQ(parseError({"flags", "--cacert"}), "--cacert needs a value");
  EXPECT_EQ(parseError({"flags", "--cacert="}), "--cacert needs a file name");
  EXPECT_EQ(parseError({"flags", "--insecure=yes"}), "--insecure takes no value");
  EXPECT_EQ(parseError({"flags", "--insecure", "--cacert", "ca.pem"}),
            "give --cacert FILE (verify with that CA) or --insecure (do not verify), not both");
}

TEST(CtlArgsTest, OptionsBeforeAndAfterTheCommandBothForms) {
  CtlOptions options = parsedOk({"--admin", "http://10.0.0.1:9000", "set", "--token=t1", "writes=dual",
                                 "--reason", "ramp to 10%", "reads_new_percent=10", "--json"});
  EXPECT_EQ(options.command, CtlCommand::Set);
  EXPECT_EQ(options.admin, "http://10.0.0.1:9000");
  EXPECT_EQ(options.token, "t1");
  EXPECT_EQ(options.reason, "ramp to 10%");
  EXPECT_TRUE(options.json);
  EXPECT_EQ(options.assignments, (std::vector<std::string>{"writes=dual", "reads_new_percent=10"}));

  options = parsedOk({"rollback", "--force", "--token-file", "/etc/cutover/token", "--admin=127.0.0.1:1"});
  EXPECT_EQ(options.command, CtlCommand::Rollback);
  EXPECT_TRUE(options.force);
  EXPECT_EQ(options.token_file, "/etc/cutover/token");
  EXPECT_EQ(options.admin, "127.0.0.1:1");

  EXPECT_EQ(parsedOk({"status"}).command, CtlCommand::Status);
}

TEST(CtlArgsTest, AValueMayStartWithADashAndDoubleDashEndsOptions) {
  EXPECT_EQ(parsedOk({"rollback", "--reason", "--force was wrong"}).reason, "--force was wrong");
  CtlOptions options = parsedOk({"set", "--", "--json=x", "-"});
  EXPECT_FALSE(options.json);
  EXPECT_EQ(options.assignments, (std::vector<std::string>{"--json=x", "-"}));
}

TEST(CtlArgsTest, HelpNeedsNoCommand) {
  EXPECT_TRUE(parsedOk({"--help"}).help);
  EXPECT_TRUE(parsedOk({"-h", "bogus"}).help);
}

TEST(CtlArgsTest, UsageErrorsNameTheArgument) {
  EXPECT_EQ(parseError({}), "a command is needed: flags, set, rollback or status");
  EXPECT_EQ(parseError({"--json"}), "a command is needed: flags, set, rollback or status");
  EXPECT_EQ(parseError({"flag"}), "unknown command 'flag' (flags, set, rollback or status)");
  EXPECT_EQ(parseError({"flags", "--colour"}), "unknown option '--colour'");
  EXPECT_EQ(parseError({"flags", "-x"}), "unknown option '-x'");
  EXPECT_EQ(parseError({"flags", "--admin"}), "--admin needs a value");
  EXPECT_EQ(parseError({"set", "writes=dual", "--token"}), "--token needs a value");
  EXPECT_EQ(parseError({"flags", "--json=yes"}), "--json takes no value");
  EXPECT_EQ(parseError({"flags", "extra"}), "flags takes no arguments (got 'extra')");
  EXPECT_EQ(parseError({"status", "now"}), "status takes no arguments (got 'now')");
  EXPECT_EQ(parseError({"rollback", "please"}), "rollback takes no arguments (got 'please')");
  EXPECT_EQ(parseError({"set"}), "set needs at least one KEY=VALUE, e.g. set reads_new_percent=10");
  EXPECT_EQ(parseError({"set", "--force", "reads_new_percent=5"}),
            "set --force needs --reason TEXT: why the read-ramp gate is overridden (it is audited)");
  EXPECT_EQ(parseError({"set", "--force", "--reason=", "reads_new_percent=5"}),
            "set --force needs --reason TEXT: why the read-ramp gate is overridden (it is audited)");
  EXPECT_EQ(parseError({"flags", "--force"}), "--force only applies to set (past the read-ramp gate) and rollback");
  EXPECT_EQ(parseError({"status", "--force"}), "--force only applies to set (past the read-ramp gate) and rollback");
}

// --- --admin ------------------------------------------------------------------------------------

AdminAddress addressOk(std::string_view url) {
  auto parsed = parseAdminUrl(url);
  EXPECT_TRUE(parsed.isOk()) << url << ": " << parsed.status().message();
  return parsed.isOk() ? parsed.value() : AdminAddress{};
}

std::string addressError(std::string_view url) {
  auto parsed = parseAdminUrl(url);
  EXPECT_FALSE(parsed.isOk()) << url << " parsed";
  return parsed.isOk() ? "" : parsed.status().message();
}

TEST(CtlAdminUrlTest, HostAndPort) {
  auto address = addressOk("http://127.0.0.1:9187");
  EXPECT_EQ(address.host, "127.0.0.1");
  EXPECT_EQ(address.port, 9187);
  address = addressOk("HTTP://admin.internal:80/");
  EXPECT_EQ(address.host, "admin.internal");
  EXPECT_EQ(address.port, 80);
  address = addressOk("localhost:9000");
  EXPECT_EQ(address.host, "localhost");
  EXPECT_EQ(address.port, 9000);
  address = addressOk("http://[::1]:9187");
  EXPECT_EQ(address.host, "::1");
  EXPECT_EQ(address.port, 9187);
  EXPECT_EQ(addressOk("http://example.org").port, 80);
  EXPECT_EQ(addressOk("http://[::1]").port, 80);
  EXPECT_FALSE(addressOk("http://127.0.0.1:9187").tls);
  EXPECT_FALSE(addressOk("localhost:9000").tls);
}

TEST(CtlAdminUrlTest, Https) {
  auto address = addressOk("https://127.0.0.1:9187");
  EXPECT_EQ(address.host, "127.0.0.1");
  EXPECT_EQ(address.port, 9187);
  EXPECT_TRUE(address.tls);
  address = addressOk("HTTPS://admin.internal/");
  EXPECT_EQ(address.host, "admin.internal");
  EXPECT_EQ(address.port, 443);
  EXPECT_TRUE(address.tls);
  address = addressOk("https://[::1]:9443");
  EXPECT_EQ(address.host, "::1");
  EXPECT_EQ(address.port, 9443);
  EXPECT_TRUE(address.tls);
}

TEST(CtlAdminUrlTest, RefusedWithWhatToDo) {
  EXPECT_EQ(addressError("ftp://x:1"), "--admin 'ftp://x:1': only http://host:port or https://host:port is supported");
  EXPECT_EQ(addressError("https://x:1/admin"), "--admin 'https://x:1/admin': give only https://host:port (no path or user)");
  EXPECT_EQ(addressError("https://x:0"), "--admin 'https://x:0': the port must be a number from 1 to 65535");
  EXPECT_EQ(addressError("https://"), "--admin 'https://': no host");
  EXPECT_EQ(addressError("http://x:1/admin"), "--admin 'http://x:1/admin': give only http://host:port (no path or user)");
  EXPECT_EQ(addressError("http://u@x:1"), "--admin 'http://u@x:1': give only http://host:port (no path or user)");
  EXPECT_EQ(addressError("http://x:0"), "--admin 'http://x:0': the port must be a number from 1 to 65535");
  EXPECT_EQ(addressError("http://x:65536"), "--admin 'http://x:65536': the port must be a number from 1 to 65535");
  EXPECT_EQ(addressError("http://x:91a"), "--admin 'http://x:91a': the port must be a number from 1 to 65535");
  EXPECT_EQ(addressError("http://x:"), "--admin 'http://x:': the port is empty");
  EXPECT_EQ(addressError("http://:9187"), "--admin 'http://:9187': no host");
  EXPECT_EQ(addressError(""), "--admin '': no host");
  EXPECT_EQ(addressError("http://::1:9187"), "--admin 'http://::1:9187': put an IPv6 address in brackets: http://[::1]:9187");
  EXPECT_EQ(addressError("http://[::1:9187"), "--admin 'http://[::1:9187': unclosed '['");
  EXPECT_EQ(addressError("http://[::1]9187"), "--admin 'http://[::1]9187': expected ':port' after ']'");
}

// --- set KEY=VALUE -------------------------------------------------------------------------------

json bodyOk(const std::vector<std::string>& assignments) {
  auto body = buildSetBody(assignments, "ramp");
  EXPECT_TRUE(body.isOk()) << body.status().message();
  return body.isOk() ? body.value() : json();
}

std::string bodyError(const std::vector<std::string>& assignments) {
  auto body = buildSetBody(assignments, "ramp");
  EXPECT_FALSE(body.isOk()) << "built " << (body.isOk() ? body->dump() : "");
  return body.isOk() ? "" : body.status().message();
}

TEST(CtlSetBodyTest, IntegersStringsAndTheReason) {
  EXPECT_EQ(bodyOk({"reads_new_percent=10", "shadow_percent=0", "version=7", "writes=dual", "mirror=sync",
                    "sticky=statement"}),
            json::parse(R"({"reads_new_percent":10,"shadow_percent":0,"version":7,"writes":"dual",
                            "mirror":"sync","sticky":"statement","reason":"ramp"})"));
  // Integers stay integers even when out of range: the server judges ranges.
  EXPECT_EQ(bodyOk({"reads_new_percent=-5"})["reads_new_percent"], json(-5));
  EXPECT_EQ(bodyOk({"reads_new_percent=250"})["reads_new_percent"], json(250));
  // Only the first '=' splits; unknown keys go to the server as strings.
  EXPECT_EQ(bodyOk({"colour=a=b"}), json::parse(R"({"colour":"a=b","reason":"ramp"})"));
}

TEST(CtlSetBodyTest, TableOverridesNestAndEmptyClears) {
  EXPECT_EQ(bodyOk({"reads_new_percent=10", "tables.orders.reads_new_percent=50", "tables.orders.writes=",
                    "tables.users.shadow_percent=5", "tables.legacy="}),
            json::parse(R"({"reads_new_percent":10,
                            "tables":{"orders":{"reads_new_percent":50,"writes":null},
                                      "users":{"shadow_percent":5},"legacy":null},
                            "reason":"ramp"})"));
  // The key is the last segment: a schema-qualified table keeps its dots.
  EXPECT_EQ(bodyOk({"tables.public.orders.writes=dual", "tables.public.orders.reads_new_percent="}),
            json::parse(R"({"tables":{"public.orders":{"writes":"dual","reads_new_percent":null}},
                            "reason":"ramp"})"));
}

TEST(CtlSetBodyTest, BadAssignmentsAreRefusedBeforeAnyRequest) {
  EXPECT_EQ(bodyError({"writes"}), "set: 'writes' is not KEY=VALUE");
  EXPECT_EQ(bodyError({"=dual"}), "set: '=dual': '' is not a key");
  EXPECT_EQ(bodyError({"tables..writes=dual"}), "set: 'tables..writes=dual': 'tables..writes' is not a key");
  EXPECT_EQ(bodyError({"tables.orders.=1"}), "set: 'tables.orders.=1': 'tables.orders.' is not a key");
  EXPECT_EQ(bodyError({"reads_new_percent=ten"}),
            "set: 'reads_new_percent=ten': reads_new_percent needs an integer, e.g. reads_new_percent=10");
  EXPECT_EQ(bodyError({"reads_new_percent=10%"}),
            "set: 'reads_new_percent=10%': reads_new_percent needs an integer, e.g. reads_new_percent=10");
  EXPECT_EQ(bodyError({"shadow_percent=1.5"}),
            "set: 'shadow_percent=1.5': shadow_percent needs an integer, e.g. shadow_percent=10");
  EXPECT_EQ(bodyError({"version= 7"}), "set: 'version= 7': version needs an integer, e.g. version=10");
  EXPECT_EQ(bodyError({"version=99999999999999999999"}),
            "set: 'version=99999999999999999999': version needs an integer, e.g. version=10");
  EXPECT_EQ(bodyError({"tables.orders.reads_new_percent=half"}),
            "set: 'tables.orders.reads_new_percent=half': tables.orders.reads_new_percent needs an integer, "
            "e.g. tables.orders.reads_new_percent=10");
  EXPECT_EQ(bodyError({"writes="}),
            "set: 'writes=' has no value (only a table override can be cleared with an empty value)");
  EXPECT_EQ(bodyError({"reads_new_percent="}),
            "set: 'reads_new_percent=' has no value (only a table override can be cleared with an empty value)");
  EXPECT_EQ(bodyError({"reason=because"}), "set: give the reason with --reason TEXT");
  EXPECT_EQ(bodyError({"writes.x=1"}), "set: 'writes.x=1': only tables.TABLE.KEY keys are nested");
  EXPECT_EQ(bodyError({"tables=x"}),
            "set: 'tables=x': name a table and a key: tables.TABLE.KEY=VALUE (e.g. tables.orders.reads_new_percent=50)");
  EXPECT_EQ(bodyError({"tables.orders=50"}),
            "set: 'tables.orders=50': name a key (tables.orders.reads_new_percent=50), or leave the value empty "
            "to drop every override of orders");
}

TEST(CtlSetBodyTest, TheSameKeyTwiceIsRefused) {
  EXPECT_EQ(bodyError({"writes=dual", "writes=old"}), "set: 'writes=dual' and 'writes=old' set the same key");
  EXPECT_EQ(bodyError({"tables.orders.writes=dual", "tables.orders.writes="}),
            "set: 'tables.orders.writes=dual' and 'tables.orders.writes=' set the same key");
  EXPECT_EQ(bodyError({"tables.orders=", "tables.orders="}),
            "set: 'tables.orders=' and 'tables.orders=' set the same key");
  // Dropping a table and setting one of its keys contradict each other, in either order.
  EXPECT_EQ(bodyError({"tables.orders=", "tables.orders.writes=dual"}),
            "set: 'tables.orders=' drops every override of orders; do not also set one");
  EXPECT_EQ(bodyError({"tables.orders.writes=dual", "tables.orders="}),
            "set: 'tables.orders=' drops every override of orders; do not also set one");
  // Different tables and different keys are fine.
  EXPECT_EQ(bodyOk({"tables.a.writes=dual", "tables.b.writes=dual", "tables.a.reads_new_percent=1"})["tables"],
            json::parse(R"({"a":{"writes":"dual","reads_new_percent":1},"b":{"writes":"dual"}})"));
}

// --- token and reason ----------------------------------------------------------------------------

config::EnvLookup envOf(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto found = vars.find(name);
    return found == vars.end() ? std::nullopt : std::optional<std::string>(found->second);
  };
}

class CtlTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "ctl_token_test_" + std::to_string(::getpid());
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(const std::string& content) { std::ofstream(path_, std::ios::binary) << content; }
  std::string path_;
};

TEST_F(CtlTokenTest, FlagThenFileThenEnvironment) {
  write("from-file\n");
  auto env = envOf({{"CUTOVER_ADMIN_TOKEN", "from-env"}});
  CtlOptions options;
  options.token = "from-flag";
  options.token_file = path_;
  auto token = resolveToken(options, env);
  ASSERT_TRUE(token.isOk());
  EXPECT_EQ(token->value, "from-flag");
  EXPECT_EQ(token->source, "--token");

  options.token.reset();
  token = resolveToken(options, env);
  ASSERT_TRUE(token.isOk());
  EXPECT_EQ(token->value, "from-file");  // the trailing newline is not part of the token
  EXPECT_EQ(token->source, "--token-file " + path_);

  options.token_file.reset();
  token = resolveToken(options, env);
  ASSERT_TRUE(token.isOk());
  EXPECT_EQ(token->value, "from-env");
  EXPECT_EQ(token->source, "$CUTOVER_ADMIN_TOKEN");

  token = resolveToken(options, envOf({}));
  ASSERT_TRUE(token.isOk());
  EXPECT_EQ(token->value, "");
  EXPECT_EQ(token->source, "");
}

TEST_F(CtlTokenTest, UnreadableOrEmptyFileIsAnError) {
  CtlOptions options;
  options.token_file = path_ + ".missing";
  auto token = resolveToken(options, envOf({{"CUTOVER_ADMIN_TOKEN", "from-env"}}));
  ASSERT_FALSE(token.isOk());
  EXPECT_EQ(token.status().message(), "--token-file " + path_ + ".missing: cannot read it");

  write(" \n");
  options.token_file = path_;
  token = resolveToken(options, envOf({}));
  ASSERT_FALSE(token.isOk());
  EXPECT_EQ(token.status().message(), "--token-file " + path_ + ": the file is empty");
}

TEST(CtlReasonTest, FlagElseUser) {
  CtlOptions options;
  EXPECT_EQ(resolveReason(options, envOf({{"USER", "ana"}, {"LOGNAME", "root"}})), "cutover ctl by ana");
  EXPECT_EQ(resolveReason(options, envOf({{"LOGNAME", "root"}})), "cutover ctl by root");
  EXPECT_EQ(resolveReason(options, envOf({})), "cutover ctl by an unknown user");
  options.reason = "ramp to 10%";
  EXPECT_EQ(resolveReason(options, envOf({{"USER", "ana"}})), "ramp to 10%");
}

}  // namespace
}  // namespace cutover::admin
