#include "flags/flag_snapshot.h"

#include <gtest/gtest.h>

namespace cutover::flags {
namespace {

using config::MirrorMode;
using config::Sticky;
using config::TableFlags;
using config::WritesMode;

FlagSnapshot sample() {
  FlagSnapshot s;
  s.version = 7;
  s.writes = WritesMode::DualNew;
  s.mirror = MirrorMode::Async;
  s.reads_new_percent = 30;
  s.shadow_percent = 10;
  s.sticky = Sticky::Statement;
  s.tables["orders"] = TableFlags{50, std::nullopt, std::nullopt};
  s.tables["users"] = TableFlags{std::nullopt, 5, WritesMode::Dual};
  s.changed_at = "2026-11-21T07:50:01.123Z";
  s.changed_by = "admin 127.0.0.1";
  s.reason = "ramp step";
  return s;
}

void expectSame(const FlagSnapshot& a, const FlagSnapshot& b) { EXPECT_EQ(toJson(a), toJson(b)); }

// The error message of a body applyJson must refuse.
std::string errorOf(std::string_view body, const FlagSnapshot& base = sample()) {
  auto result = applyJson(base, body);
  if (result) return "<applied without error>";
  return result.status().message();
}

TEST(FlagSnapshotTest, ToJsonUsesTheYamlNames) {
  EXPECT_EQ(toJson(sample()), nlohmann::json::parse(R"({
    "version": 7, "writes": "dual-new", "mirror": "async", "reads_new_percent": 30,
    "shadow_percent": 10, "sticky": "statement",
    "tables": {"orders": {"reads_new_percent": 50},
               "users": {"shadow_percent": 5, "writes": "dual"}},
    "changed_at": "2026-11-21T07:50:01.123Z", "changed_by": "admin 127.0.0.1",
    "reason": "ramp step"})"));
}

TEST(FlagSnapshotTest, JsonRoundTrip) {
  auto back = fromJson(toJson(sample()));
  ASSERT_TRUE(back) << back.status().message();
  expectSame(*back, sample());

  FlagSnapshot defaults;
  auto back2 = fromJson(nlohmann::json::parse(toJson(defaults).dump()));
  ASSERT_TRUE(back2) << back2.status().message();
  expectSame(*back2, defaults);
}

TEST(FlagSnapshotTest, FromJsonRequiresEveryFlag) {
  auto result = fromJson(nlohmann::json::parse(R"({"writes": "old", "colour": 1})"));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.status().message(),
            "invalid flags: version: missing; mirror: missing; reads_new_percent: missing; "
            "shadow_percent: missing; sticky: missing; colour: unknown key");
}

TEST(FlagSnapshotTest, FromConfig) {
  config::FlagsConfig c;
  c.writes = WritesMode::Dual;
  c.mirror = MirrorMode::Async;
  c.reads_new_percent = 5;
  c.shadow_percent = 10;
  c.sticky = Sticky::Statement;
  c.tables["orders"].reads_new_percent = 50;
  FlagSnapshot s = fromConfig(c);
  EXPECT_EQ(s.version, 1u);
  EXPECT_EQ(s.writes, WritesMode::Dual);
  EXPECT_EQ(s.mirror, MirrorMode::Async);
  EXPECT_EQ(s.reads_new_percent, 5);
  EXPECT_EQ(s.shadow_percent, 10);
  EXPECT_EQ(s.sticky, Sticky::Statement);
  EXPECT_EQ(s.tables.at("orders").reads_new_percent, 50);
  EXPECT_EQ(s.changed_by, "config");
  EXPECT_EQ(s.changed_at.size(), std::string("2026-11-21T07:50:01.123Z").size());
  EXPECT_EQ(s.changed_at.back(), 'Z');
}

TEST(ApplyJsonTest, EmptyBodyChangesNothing) {
  auto result = applyJson(sample(), "{}");
  ASSERT_TRUE(result) << result.status().message();
  expectSame(*result, sample());
}

TEST(ApplyJsonTest, PartialBodyChangesOnlyItsKeys) {
  auto result = applyJson(sample(), R"({"reads_new_percent": 0, "writes": "dual"})");
  ASSERT_TRUE(result) << result.status().message();
  FlagSnapshot expected = sample();
  expected.reads_new_percent = 0;
  expected.writes = WritesMode::Dual;
  expectSame(*result, expected);
}

TEST(ApplyJsonTest, FullBody) {
  auto result = applyJson(FlagSnapshot{}, R"({
      "writes": "new", "mirror": "async", "reads_new_percent": 100, "shadow_percent": 0,
      "sticky": "statement", "tables": {"orders": {"writes": "dual-new"}}})");
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->writes, WritesMode::New);
  EXPECT_EQ(result->mirror, MirrorMode::Async);
  EXPECT_EQ(result->reads_new_percent, 100);
  EXPECT_EQ(result->shadow_percent, 0);
  EXPECT_EQ(result->sticky, Sticky::Statement);
  ASSERT_EQ(result->tables.size(), 1u);
  EXPECT_EQ(result->tables.at("orders").writes, WritesMode::DualNew);
  EXPECT_FALSE(result->tables.at("orders").reads_new_percent);
}

TEST(ApplyJsonTest, TablesMergePerTableAndNullRemoves) {
  // orders gains writes, users loses shadow_percent, a new table appears.
  auto result = applyJson(sample(), R"({"tables": {
      "orders": {"writes": "dual"}, "users": {"shadow_percent": null},
      "items": {"reads_new_percent": 0}}})");
  ASSERT_TRUE(result) << result.status().message();
  const auto& t = result->tables;
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t.at("orders").reads_new_percent, 50);
  EXPECT_EQ(t.at("orders").writes, WritesMode::Dual);
  EXPECT_FALSE(t.at("users").shadow_percent);
  EXPECT_EQ(t.at("users").writes, WritesMode::Dual);
  EXPECT_EQ(t.at("items").reads_new_percent, 0);

  // A table whose last override is cleared, or that is set to null, disappears.
  auto removed = applyJson(sample(), R"({"tables": {"orders": {"reads_new_percent": null},
                                                    "users": null}})");
  ASSERT_TRUE(removed) << removed.status().message();
  EXPECT_TRUE(removed->tables.empty());
}

TEST(ApplyJsonTest, ReasonVersionAndServerStampedKeys) {
  // A GET /flags answer sent back as is: version matches, changed_* are ignored.
  nlohmann::json body = toJson(sample());
  body["reads_new_percent"] = 40;
  body["changed_by"] = "someone else";
  body["reason"] = "step to 40%";
  auto result = applyJson(sample(), body.dump());
  ASSERT_TRUE(result) << result.status().message();
  EXPECT_EQ(result->reads_new_percent, 40);
  EXPECT_EQ(result->reason, "step to 40%");
  EXPECT_EQ(result->version, 7u);
  EXPECT_EQ(result->changed_by, "admin 127.0.0.1");
}

TEST(ApplyJsonTest, InvalidBodies) {
  EXPECT_EQ(errorOf(R"({"colour": "red"})"), "invalid flags: colour: unknown key");
  EXPECT_EQ(errorOf(R"({"writes": "sideways"})"),
            "invalid flags: writes: \"sideways\" is not one of old, dual, dual-new, new");
  EXPECT_EQ(errorOf(R"({"writes": 1})"),
            "invalid flags: writes: 1 is not one of old, dual, dual-new, new");
  EXPECT_EQ(errorOf(R"({"writes": "OLD"})"),
            "invalid flags: writes: \"OLD\" is not one of old, dual, dual-new, new");
  EXPECT_EQ(errorOf(R"({"mirror": "eventually"})"),
            "invalid flags: mirror: \"eventually\" is not one of sync, async, strict");
  EXPECT_EQ(errorOf(R"({"mirror": "strict"})"),
            "invalid flags: mirror: \"strict\" is refused: two-phase commit is not available "
            "yet (use sync or async)");
  EXPECT_EQ(errorOf(R"({"sticky": null})"),
            "invalid flags: sticky: null is not one of session, statement");
  EXPECT_EQ(errorOf(R"({"reads_new_percent": 101})"),
            "invalid flags: reads_new_percent: 101 is out of range (0-100)");
  EXPECT_EQ(errorOf(R"({"reads_new_percent": -1})"),
            "invalid flags: reads_new_percent: -1 is out of range (0-100)");
  EXPECT_EQ(errorOf(R"({"reads_new_percent": 18446744073709551615})"),
            "invalid flags: reads_new_percent: 18446744073709551615 is out of range (0-100)");
  EXPECT_EQ(errorOf(R"({"reads_new_percent": 50.5})"),
            "invalid flags: reads_new_percent: 50.5 is not an integer 0-100");
  EXPECT_EQ(errorOf(R"({"shadow_percent": "10"})"),
            "invalid flags: shadow_percent: \"10\" is not an integer 0-100");
  EXPECT_EQ(errorOf(R"({"shadow_percent": true})"),
            "invalid flags: shadow_percent: true is not an integer 0-100");
  EXPECT_EQ(errorOf(R"({"tables": ["orders"]})"),
            "invalid flags: tables: [\"orders\"] is not an object mapping table names to "
            "overrides");
  EXPECT_EQ(errorOf(R"({"tables": {"orders": 50}})"),
            "invalid flags: tables.orders: 50 is not an object of overrides (or null)");
  EXPECT_EQ(errorOf(R"({"tables": {"orders": {"mirror": "sync"}}})"),
            "invalid flags: tables.orders.mirror: unknown key");
  EXPECT_EQ(errorOf(R"({"tables": {"orders": {"reads_new_percent": 200}}})"),
            "invalid flags: tables.orders.reads_new_percent: 200 is out of range (0-100)");
  EXPECT_EQ(errorOf(R"({"tables": {"orders": {"writes": "both"}}})"),
            "invalid flags: tables.orders.writes: \"both\" is not one of old, dual, dual-new, "
            "new");
  EXPECT_EQ(errorOf(R"({"tables": {"": {"writes": "old"}}})"),
            "invalid flags: tables: a table name is empty");
  EXPECT_EQ(errorOf(R"({"reason": 5})"), "invalid flags: reason: 5 is not a string");
  EXPECT_EQ(errorOf(R"({"version": 6})"),
            "invalid flags: version: 6 is not the current version 7 (the flags changed "
            "meanwhile: read them again)");
  EXPECT_EQ(errorOf(R"({"version": "7"})"),
            "invalid flags: version: \"7\" is not a non-negative integer");
  EXPECT_EQ(errorOf("[1, 2]"), "invalid flags: the body must be a JSON object, not [1,2]");
  EXPECT_EQ(errorOf(""),
            "invalid flags: the body is not valid JSON ([json.exception.parse_error.101] parse "
            "error at line 1, column 1: syntax error while parsing value - unexpected end of "
            "input; expected '[', '{', or a literal)");
  EXPECT_EQ(errorOf("{\"writes\": "),
            "invalid flags: the body is not valid JSON ([json.exception.parse_error.101] parse "
            "error at line 1, column 12: syntax error while parsing value - unexpected "
            "end of input; expected '[', '{', or a literal)");
}

TEST(ApplyJsonTest, EveryOffendingKeyIsNamedInOneMessage) {
  EXPECT_EQ(errorOf(R"({"writes": "x", "mirror": "strict", "reads_new_percent": 500,
                        "colour": 1, "tables": {"t": {"bogus": 1, "shadow_percent": -5}},
                        "sticky": "session"})"),
            "invalid flags: colour: unknown key; mirror: \"strict\" is refused: two-phase "
            "commit is not available yet (use sync or async); reads_new_percent: 500 is out of "
            "range (0-100); tables.t.bogus: unknown key; tables.t.shadow_percent: -5 is out of "
            "range (0-100); writes: \"x\" is not one of old, dual, dual-new, new");
}

TEST(ApplyJsonTest, LongValuesAreCutShortInMessages) {
  const std::string body = "{\"writes\": \"" + std::string(1000, 'x') + "\"}";
  const std::string message = errorOf(body);
  EXPECT_LT(message.size(), 150u) << message;
  EXPECT_NE(message.find("xxx...") , std::string::npos) << message;
}

TEST(ApplyJsonTest, InvalidUtf8DoesNotThrow) {
  const std::string body = "{\"writes\": \"\xff\xfe\"}";
  EXPECT_EQ(errorOf(body).rfind("invalid flags: ", 0), 0u);
}

TEST(ValidateTest, RefusesWhatPublishMustNotAccept) {
  EXPECT_TRUE(validate(sample()));
  FlagSnapshot s = sample();
  s.mirror = MirrorMode::Strict;
  s.reads_new_percent = 101;
  s.shadow_percent = -1;
  s.tables["orders"].reads_new_percent = 300;
  s.tables[""].writes = WritesMode::Old;
  EXPECT_EQ(validate(s).message(),
            "invalid flags: mirror: \"strict\" is refused: two-phase commit is not available "
            "yet (use sync or async); reads_new_percent: 101 is out of range (0-100); "
            "shadow_percent: -1 is out of range (0-100); tables: a table name is empty; "
            "tables.orders.reads_new_percent: 300 is out of range (0-100)");
}

}  // namespace
}  // namespace cutover::flags
