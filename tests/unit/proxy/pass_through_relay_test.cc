#include "proxy/pass_through_relay.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

class PassThroughRelayTest : public ::testing::Test {
 protected:
  static void add(evbuffer* b, const std::string& bytes) { evbuffer_add(b, bytes.data(), bytes.size()); }
  static std::string contents(evbuffer* b) {
    std::string out(evbuffer_get_length(b), '\0');
    evbuffer_copyout(b, out.data(), out.size());
    return out;
  }
  PassThroughRelay relay{1u << 20};
  UniqueHandle<evbuffer, evbuffer_free> client_in{evbuffer_new()}, store_out{evbuffer_new()};
  UniqueHandle<evbuffer, evbuffer_free> store_in{evbuffer_new()}, client_out{evbuffer_new()};
};

TEST_F(PassThroughRelayTest, ARequestIsInFlightUntilItsReadyForQuery) {
  const std::string query = protocol::encode(protocol::Query{"SELECT 1"});
  add(client_in.get(), query);
  auto c = relay.clientToStore(client_in.get(), store_out.get());
  EXPECT_EQ(c.forwarded, query.size());
  EXPECT_EQ(contents(store_out.get()), query);   // byte for byte
  EXPECT_FALSE(relay.clientIdle());
  const std::string answer = protocol::encode(protocol::CommandComplete{"SELECT 1"}) +
                             protocol::encode(protocol::ReadyForQuery{'T'});
  add(store_in.get(), answer);
  auto s = relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_TRUE(s.saw_ready);
  EXPECT_EQ(relay.transactionStatus(), 'T');
  EXPECT_EQ(contents(client_out.get()), answer);
  EXPECT_TRUE(relay.atBoundary());
}

TEST_F(PassThroughRelayTest, AnExtendedBatchIsOpenUntilItsSync) {
  add(client_in.get(), protocol::encode(protocol::Parse{}) + protocol::encode(protocol::Flush{}));
  relay.clientToStore(client_in.get(), store_out.get());
  EXPECT_FALSE(relay.clientIdle());   // flushed, not synced: no boundary
  add(client_in.get(), protocol::encode(protocol::Sync{}));
  relay.clientToStore(client_in.get(), store_out.get());
  add(store_in.get(), protocol::encode(protocol::ReadyForQuery{'I'}));
  relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_TRUE(relay.clientIdle());
}

TEST_F(PassThroughRelayTest, AReadyForQuerySplitBeforeItsStatusWaitsForIt) {
  const std::string ready = protocol::encode(protocol::ReadyForQuery{'E'});
  add(client_in.get(), protocol::encode(protocol::Sync{}));
  relay.clientToStore(client_in.get(), store_out.get());
  add(store_in.get(), ready.substr(0, 5));
  auto s = relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_FALSE(s.saw_ready);
  EXPECT_EQ(s.forwarded, 0u);
  add(store_in.get(), ready.substr(5));
  s = relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_TRUE(s.saw_ready);
  EXPECT_EQ(relay.transactionStatus(), 'E');
}

TEST_F(PassThroughRelayTest, AMessageStreamsInPiecesAndTheBoundaryWaitsForItsEnd) {
  const std::string row = protocol::encode(protocol::DataRow{{std::string(1000, 'x')}});
  add(store_in.get(), row.substr(0, 100));
  auto s = relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_EQ(s.forwarded, 100u);   // not gathered whole
  EXPECT_FALSE(relay.atBoundary());
  add(store_in.get(), row.substr(100));
  relay.storeToClient(store_in.get(), client_out.get());
  EXPECT_EQ(contents(client_out.get()), row);
  EXPECT_TRUE(relay.atBoundary());
}

TEST_F(PassThroughRelayTest, TerminateIsNotRelayed) {
  const std::string query = protocol::encode(protocol::Query{"SELECT 1"});
  add(client_in.get(), query + protocol::encode(protocol::Terminate{}));
  auto c = relay.clientToStore(client_in.get(), store_out.get());
  EXPECT_TRUE(c.terminate);
  EXPECT_EQ(contents(store_out.get()), query);
}

TEST_F(PassThroughRelayTest, AMalformedHeaderStopsAfterWhatCameBefore) {
  const std::string query = protocol::encode(protocol::Query{"SELECT 1"});
  add(client_in.get(), query + std::string("\x01\x00\x00\x00\x04", 5));
  auto c = relay.clientToStore(client_in.get(), store_out.get());
  EXPECT_TRUE(c.invalid);
  EXPECT_FALSE(c.reason.empty());
  EXPECT_EQ(c.forwarded, query.size());
}

}  // namespace
}  // namespace cutover::proxy
