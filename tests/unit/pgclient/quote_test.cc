#include "pgclient/quote.h"

#include <gtest/gtest.h>

namespace cutover::pgclient {
namespace {

TEST(Quote, Identifier) {
  EXPECT_EQ(quoteIdentifier("orders"), "\"orders\"");
  EXPECT_EQ(quoteIdentifier("Order"), "\"Order\"");
  EXPECT_EQ(quoteIdentifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(quoteIdentifier(""), "\"\"");
}

TEST(Quote, Qualified) {
  EXPECT_EQ(quoteQualified("public", "t"), "\"public\".\"t\"");
  EXPECT_EQ(quoteQualified("", "t"), "\"t\"");
  EXPECT_EQ(quoteQualified("my schema", "x.y"), "\"my schema\".\"x.y\"");
}

TEST(Quote, Literal) {
  EXPECT_EQ(quoteLiteral("abc"), "'abc'");
  EXPECT_EQ(quoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(quoteLiteral("a\\b'"), "E'a\\\\b'''");
  EXPECT_EQ(quoteLiteral(""), "''");
}

}  // namespace
}  // namespace cutover::pgclient
