#include "router/error_position.h"

#include <gtest/gtest.h>

namespace cutover::router {
namespace {

// PostgreSQL's regression test uuid.sql: an invalid literal, as the client wrote it and as the
// deparser gives it back with row images' RETURNING appended.
constexpr std::string_view kClient = "INSERT INTO guid1(guid_field) VALUES('11111111-1111-1111-1111-111111111111F')";
constexpr std::string_view kRewritten =
    "INSERT INTO guid1 (guid_field) VALUES ('11111111-1111-1111-1111-111111111111F') RETURNING NULL AS \"cutover:images\", guid1.*";

TEST(ErrorPosition, ALiteralIsFoundWhereTheClientWroteIt) {
  const int in_rewritten = static_cast<int>(kRewritten.find('\'')) + 1;
  const int in_client = static_cast<int>(kClient.find('\'')) + 1;
  EXPECT_EQ(mapErrorPosition(kClient, kRewritten, in_rewritten), in_client);
  // Inside the token: the same distance into it.
  EXPECT_EQ(mapErrorPosition(kClient, kRewritten, in_rewritten + 5), in_client + 5);
}

TEST(ErrorPosition, KeywordsInAnotherCaseAndSpacing) {
  constexpr std::string_view client = "insert   into t(a)\nvalues (1, nosuchfunction(2))";
  constexpr std::string_view rewritten = "INSERT INTO t (a) VALUES (1, nosuchfunction(2)) RETURNING NULL AS \"cutover:images\", t.*";
  EXPECT_EQ(mapErrorPosition(client, rewritten, static_cast<int>(rewritten.find("nosuch")) + 1),
            static_cast<int>(client.find("nosuch")) + 1);
}

TEST(ErrorPosition, CountsCharactersNotBytes) {
  constexpr std::string_view client = "INSERT INTO t(a) VALUES('é', x)";
  constexpr std::string_view rewritten = "INSERT INTO t (a) VALUES ('é', x) RETURNING t.*";
  // 'x' is the 32nd character of the rewritten text (é is one character, two bytes).
  EXPECT_EQ(mapErrorPosition(client, rewritten, 32), 30);
}

TEST(ErrorPosition, WhatCutoverAddedOrADifferentShapeHasNoPlace) {
  EXPECT_EQ(mapErrorPosition(kClient, kRewritten, static_cast<int>(kRewritten.find("RETURNING")) + 1), std::nullopt);
  // The deparser wrote another token sequence (a cast spelled another way): not guessed.
  EXPECT_EQ(mapErrorPosition("SELECT a::int FROM t WHERE b = 1", "SELECT CAST(a AS int) FROM t WHERE b = 1", 34),
            std::nullopt);
  EXPECT_EQ(mapErrorPosition(kClient, kRewritten, 0), std::nullopt);
  EXPECT_EQ(mapErrorPosition(kClient, kRewritten, 100000), std::nullopt);
}

}  // namespace
}  // namespace cutover::router
