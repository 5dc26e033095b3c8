#include "proxy/ramp_hold.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

class RampHoldTest : public ::testing::Test {
 protected:
  void add(RampHold& hold, size_t n) {
    const std::string bytes(n, 'r');
    evbuffer_add(hold.buffer(), bytes.data(), bytes.size());
  }
  size_t sent() const { return evbuffer_get_length(client.get()); }
  UniqueHandle<evbuffer, evbuffer_free> client{evbuffer_new()};
};

TEST_F(RampHoldTest, ASmallAnswerWaitsUntilItIsComplete) {
  RampHold hold(100);
  add(hold, 60);
  EXPECT_FALSE(hold.release(client.get(), false));
  EXPECT_EQ(sent(), 0u);   // nothing reached the client: the read can still run elsewhere
  EXPECT_FALSE(hold.release(client.get(), true));   // complete: sent whole, it never streamed
  EXPECT_EQ(sent(), 60u);
  EXPECT_FALSE(hold.holding());
}

TEST_F(RampHoldTest, AnAnswerPastTheLimitStreamsFromThere) {
  RampHold hold(100);
  add(hold, 100);
  EXPECT_FALSE(hold.release(client.get(), false));   // at the limit: still held
  add(hold, 1);
  EXPECT_TRUE(hold.release(client.get(), false));
  EXPECT_EQ(sent(), 101u);
}

TEST_F(RampHoldTest, AGivenUpReadIsDropped) {
  RampHold hold(100);
  add(hold, 50);
  hold.discard();
  EXPECT_FALSE(hold.holding());
  EXPECT_FALSE(hold.release(client.get(), true));
  EXPECT_EQ(sent(), 0u);
}

TEST_F(RampHoldTest, AFlushedAnswerGoesAtItsEnd) {
  RampHold hold;
  EXPECT_FALSE(hold.releaseFlushed(client.get()));   // nothing held
  add(hold, 10);
  EXPECT_TRUE(hold.releaseFlushed(client.get()));
  EXPECT_EQ(sent(), 10u);
}

TEST(RampHold, WhatEndsAFlushedAnswer) {
  EXPECT_TRUE(RampHold::endsFlushedAnswer(protocol::PortalSuspended::kType, true));
  EXPECT_TRUE(RampHold::endsFlushedAnswer(protocol::CommandComplete::kType, true));
  EXPECT_TRUE(RampHold::endsFlushedAnswer(protocol::ErrorResponse::kType, false));
  EXPECT_TRUE(RampHold::endsFlushedAnswer(protocol::ParseComplete::kType, false));
  EXPECT_FALSE(RampHold::endsFlushedAnswer(protocol::ParseComplete::kType, true));   // more already here
  EXPECT_FALSE(RampHold::endsFlushedAnswer(protocol::RowDescription::kType, true));
  EXPECT_FALSE(RampHold::endsFlushedAnswer(protocol::DataRow::kType, false));   // rows go on
  EXPECT_FALSE(RampHold::endsFlushedAnswer(protocol::ReadyForQuery::kType, false));   // not flushed: synced
}

}  // namespace
}  // namespace cutover::proxy
