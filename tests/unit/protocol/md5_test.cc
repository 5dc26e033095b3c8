#include "protocol/md5.h"

#include <gtest/gtest.h>

namespace cutover::protocol {
namespace {

TEST(Md5Test, HexOfKnownInput) {
  // RFC 1321 test suite.
  EXPECT_EQ(md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Md5Test, PasswordResponse) {
  // Computed independently with Python's hashlib:
  //   m = lambda b: hashlib.md5(b).hexdigest()
  //   "md5" + m(m(b"secretpostgres").encode() + bytes([1, 2, 3, 4]))
  EXPECT_EQ(md5PasswordResponse("postgres", "secret", {1, 2, 3, 4}),
            "md5bb41a296aab6baccb36ff243a562abff");
}

TEST(Md5Test, SaltChangesTheResponse) {
  EXPECT_NE(md5PasswordResponse("postgres", "secret", {1, 2, 3, 4}),
            md5PasswordResponse("postgres", "secret", {1, 2, 3, 5}));
}

}  // namespace
}  // namespace cutover::protocol
