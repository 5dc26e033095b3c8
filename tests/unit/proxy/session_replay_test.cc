#include "proxy/session_replay.h"

#include <gtest/gtest.h>

#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

std::string parseOf(const std::string& name, const std::string& query) {
  protocol::Parse parse;
  parse.name = name;
  parse.query = query;
  return protocol::encode(parse);
}

TEST(SessionReplay, CommandsReplayInOrderAndDiscardAllForgetsThem) {
  SessionReplay r;
  r.addCommand("SET search_path = app");
  r.addCommand("LISTEN jobs");
  ASSERT_EQ(r.commands().size(), 2u);
  EXPECT_EQ(r.commands()[0], "SET search_path = app");
  EXPECT_EQ(r.commands()[1], "LISTEN jobs");
  r.clearCommands();
  EXPECT_TRUE(r.commands().empty());
  EXPECT_TRUE(r.complete());
}

TEST(SessionReplay, PastTheCommandBoundTheReplayIsIncomplete) {
  SessionReplay r;
  for (size_t i = 0; i < SessionReplay::kMaxReplayed; ++i) r.addCommand("SET a.b = " + std::to_string(i));
  EXPECT_TRUE(r.complete());
  r.addCommand("SET a.b = 'one too many'");
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.commands().size(), SessionReplay::kMaxReplayed);
}

TEST(SessionReplay, NamedStatementsReplayAsTheirParsesThenOneSync) {
  SessionReplay r;
  EXPECT_EQ(r.parses(), "");   // nothing to send: no segment at all
  const std::string a = parseOf("a", "SELECT 1");
  r.keepStatement("a", a);
  ASSERT_NE(r.statement("a"), nullptr);
  EXPECT_EQ(*r.statement("a"), a);
  EXPECT_EQ(r.parses(), a + protocol::encode(protocol::Sync{}));
  r.dropStatement("a");
  EXPECT_EQ(r.statement("a"), nullptr);
  EXPECT_EQ(r.parses(), "");
}

TEST(SessionReplay, AReplacedStatementKeepsItsPlaceAtTheBound) {
  SessionReplay r;
  for (size_t i = 0; i < SessionReplay::kMaxReplayed; ++i) r.keepStatement("s" + std::to_string(i), parseOf("s", "SELECT 1"));
  EXPECT_TRUE(r.canKeepStatement("s0"));    // known: replaced in place
  EXPECT_FALSE(r.canKeepStatement("new"));  // no room
  r.keepStatement("s0", parseOf("s0", "SELECT 2"));
  EXPECT_TRUE(r.complete());
  r.keepStatement("new", parseOf("new", "SELECT 3"));
  EXPECT_FALSE(r.complete());
  EXPECT_EQ(r.statement("new"), nullptr);
  EXPECT_EQ(r.statementCount(), SessionReplay::kMaxReplayed);
}

TEST(SessionReplay, StartupParametersAreKeptAsGiven) {
  SessionReplay r;
  r.setStartup({{"user", "app"}, {"database", "shop"}});
  ASSERT_EQ(r.startup().size(), 2u);
  EXPECT_EQ(r.startup()[0].first, "user");
  EXPECT_EQ(r.startup()[1].second, "shop");
}

}  // namespace
}  // namespace cutover::proxy
