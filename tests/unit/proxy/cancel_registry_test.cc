#include "proxy/cancel_registry.h"

#include <gtest/gtest.h>

#include <set>

namespace cutover::proxy {
namespace {

CancelTarget targetFor(int32_t pid, int32_t secret) {
  CancelTarget t;
  t.backend_process_id = pid;
  t.backend_secret_key = secret;
  return t;
}

TEST(CancelRegistryTest, MatchingKeyFindsItsOwnBackend) {
  CancelRegistry registry;
  auto a = registry.mint();
  auto b = registry.mint();
  registry.bind(a.process_id, 0, targetFor(101, 1));
  registry.bind(b.process_id, 0, targetFor(202, 2));
  auto found = registry.lookup(a.process_id, a.secret_key);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].backend_process_id, 101);
  EXPECT_EQ(found[0].backend_secret_key, 1);
  found = registry.lookup(b.process_id, b.secret_key);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].backend_process_id, 202);
}

TEST(CancelRegistryTest, OneTargetPerStoreReplacedOnReconnect) {
  CancelRegistry registry;
  auto a = registry.mint();
  registry.bind(a.process_id, 0, targetFor(101, 1));
  registry.bind(a.process_id, 1, targetFor(301, 3));
  auto found = registry.lookup(a.process_id, a.secret_key);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].backend_process_id, 101);
  EXPECT_EQ(found[1].backend_process_id, 301);
  registry.bind(a.process_id, 1, targetFor(302, 4));   // the new store's connection was reopened
  found = registry.lookup(a.process_id, a.secret_key);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[1].backend_process_id, 302);
  registry.bind(a.process_id, 2, targetFor(999, 9));   // no such slot: ignored
  EXPECT_EQ(registry.lookup(a.process_id, a.secret_key).size(), 2u);
}

TEST(CancelRegistryTest, WrongSecretOrUnknownPidFindsNothing) {
  CancelRegistry registry;
  auto a = registry.mint();
  registry.bind(a.process_id, 0, targetFor(101, 1));
  EXPECT_TRUE(registry.lookup(a.process_id, a.secret_key ^ 1).empty());
  EXPECT_TRUE(registry.lookup(a.process_id ^ 0x10, a.secret_key).empty());
}

TEST(CancelRegistryTest, KeyBeforeBindOrAfterReleaseFindsNothing) {
  CancelRegistry registry;
  auto a = registry.mint();
  EXPECT_TRUE(registry.lookup(a.process_id, a.secret_key).empty());   // login not finished
  registry.bind(a.process_id, 0, targetFor(101, 1));
  registry.release(a.process_id);
  EXPECT_TRUE(registry.lookup(a.process_id, a.secret_key).empty());
}

TEST(CancelRegistryTest, MintedProcessIdsArePositiveAndUnique) {
  CancelRegistry registry;
  std::set<int32_t> seen;
  for (int i = 0; i < 10000; ++i) {
    auto k = registry.mint();
    EXPECT_GT(k.process_id, 0);
    EXPECT_TRUE(seen.insert(k.process_id).second);
  }
}

}  // namespace
}  // namespace cutover::proxy
