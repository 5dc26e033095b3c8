#include "router/fingerprint.h"

#include <gtest/gtest.h>

#include <string>

namespace cutover::router {
namespace {

TEST(Fingerprint, LiteralsBecomeParameters) {
  StatementFingerprint f = fingerprintStatement("SELECT * FROM users WHERE email = 'a@b.c' AND id > 5");
  EXPECT_EQ(f.error, "");
  EXPECT_EQ(f.normalized, "SELECT * FROM users WHERE email = $1 AND id > $2");
  ASSERT_EQ(f.fingerprint.size(), 16u);
  EXPECT_EQ(f.fingerprint.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(Fingerprint, SameShapeSameFingerprint) {
  StatementFingerprint a = fingerprintStatement("SELECT * FROM users WHERE id = 1");
  StatementFingerprint b = fingerprintStatement("select *   from users where id = 42");
  StatementFingerprint c = fingerprintStatement("SELECT * FROM users WHERE id = $1");
  StatementFingerprint other = fingerprintStatement("SELECT * FROM orders WHERE id = 1");
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.fingerprint, c.fingerprint);
  EXPECT_NE(a.fingerprint, other.fingerprint);
  EXPECT_EQ(c.normalized, "SELECT * FROM users WHERE id = $1");
}

TEST(Fingerprint, UnparsableTextGivesTheError) {
  StatementFingerprint f = fingerprintStatement("SELEC 1");
  EXPECT_EQ(f.fingerprint, "");
  EXPECT_EQ(f.normalized, "");
  EXPECT_EQ(f.error, "syntax error at or near \"SELEC\"");
}

TEST(Fingerprint, RefusesNulAndDeepNesting) {
  EXPECT_EQ(fingerprintStatement(std::string_view("SELECT 1\0", 9)).error, "text contains a NUL byte");
  std::string deep = "SELECT 1";
  for (int i = 0; i < 20000; ++i) deep += "+1";
  StatementFingerprint f = fingerprintStatement(deep);
  EXPECT_EQ(f.error, "too many operators to parse safely");
  EXPECT_EQ(f.normalized, "");
}

}  // namespace
}  // namespace cutover::router
