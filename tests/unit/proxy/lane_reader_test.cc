#include "proxy/lane_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

using Action = LaneReader::Action;

std::string dataRow(std::string value) { return protocol::encode(protocol::DataRow{{std::move(value)}}); }
std::string complete(std::string tag) { return protocol::encode(protocol::CommandComplete{std::move(tag)}); }

std::string contents(evbuffer* buffer) {
  std::string out(evbuffer_get_length(buffer), '\0');
  evbuffer_copyout(buffer, out.data(), out.size());
  return out;
}

// Streams DataRows to `out`, takes CommandComplete whole (its tag recorded), drops the rest.
struct Recorder {
  UniqueHandle<evbuffer, evbuffer_free> out{evbuffer_new()};
  std::vector<std::string> tags;
  std::vector<char> streamed;   // types of forwarded messages that ended
  int pieces = 0;
  std::string invalid_reason;
  bool stop_reading = false;
  bool reading() const { return !stop_reading; }
  Action onMessage(const protocol::Frame& frame, LaneReader::MessageView& view) {
    if (frame.type == protocol::DataRow::kType) return Action::Forward;
    if (frame.type != protocol::CommandComplete::kType) return Action::Drop;
    auto body = view.body();
    if (!body) return Action::Wait;
    auto tag = protocol::decode<protocol::CommandComplete>(*body);
    EXPECT_TRUE(tag.isOk());
    tags.push_back(tag.value().tag);
    evbuffer_drain(view.buffer(), frame.totalSize());
    return Action::Consumed;
  }
  evbuffer* streamTarget() { return out.get(); }
  void pieceStreamed() { ++pieces; }
  void messageStreamed(char type, bool) { streamed.push_back(type); }
  void invalid(const std::string& reason) { invalid_reason = reason; }
};

class LaneReaderTest : public ::testing::Test {
 protected:
  void feed(const std::string& bytes) { evbuffer_add(in.get(), bytes.data(), bytes.size()); }
  UniqueHandle<evbuffer, evbuffer_free> in{evbuffer_new()};
  LaneReader reader;
  Recorder h;
};

TEST_F(LaneReaderTest, TwoMessagesInOneBufferAStreamedRowThenATagTakenWhole) {
  const std::string row = dataRow("42");
  feed(row + complete("SELECT 1"));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_EQ(contents(h.out.get()), row);
  EXPECT_EQ(h.streamed, std::vector<char>{'D'});
  EXPECT_EQ(h.tags, std::vector<std::string>{"SELECT 1"});
  EXPECT_EQ(evbuffer_get_length(in.get()), 0u);
  EXPECT_FALSE(reader.streaming());
}

TEST_F(LaneReaderTest, AMessageSplitAcrossReadsStreamsInPiecesAndEndsOnce) {
  const std::string row = dataRow(std::string(1000, 'x'));
  feed(row.substr(0, 300));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_TRUE(reader.streaming());
  EXPECT_EQ(evbuffer_get_length(h.out.get()), 300u);   // forwarded as it arrived, not gathered
  EXPECT_TRUE(h.streamed.empty());
  feed(row.substr(300));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_EQ(contents(h.out.get()), row);
  EXPECT_EQ(h.pieces, 2);
  EXPECT_EQ(h.streamed, std::vector<char>{'D'});
}

TEST_F(LaneReaderTest, AMessageTakenWholeWaitsUntilItIsAllIn) {
  const std::string tag = complete("INSERT 0 1");
  feed(tag.substr(0, 7));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_TRUE(h.tags.empty());
  EXPECT_EQ(evbuffer_get_length(in.get()), 7u);   // left in the buffer
  feed(tag.substr(7));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_EQ(h.tags, std::vector<std::string>{"INSERT 0 1"});
}

TEST_F(LaneReaderTest, TheRestOfAMessageCanBeDroppedMidStream) {
  const std::string row = dataRow(std::string(100, 'y'));
  feed(row.substr(0, 40));
  EXPECT_TRUE(reader.read(in.get(), h));
  reader.forwardRest(false);   // e.g. a ramped read given up while its row streams
  feed(row.substr(40) + complete("SELECT 1"));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_EQ(evbuffer_get_length(h.out.get()), 40u);
  EXPECT_TRUE(h.streamed.empty());   // a dropped message does not end as forwarded
  EXPECT_EQ(h.tags, std::vector<std::string>{"SELECT 1"});
}

TEST_F(LaneReaderTest, ACorruptHeaderIsReportedAndReadingStops) {
  feed(std::string("\x01\x00\x00\x00\x08zzzz", 9));
  EXPECT_FALSE(reader.read(in.get(), h));
  EXPECT_FALSE(h.invalid_reason.empty());
}

TEST_F(LaneReaderTest, AHandlerThatStopsReadingLeavesTheBytes) {
  feed(dataRow("1"));
  h.stop_reading = true;
  EXPECT_FALSE(reader.read(in.get(), h));
  EXPECT_EQ(evbuffer_get_length(h.out.get()), 0u);
  EXPECT_GT(evbuffer_get_length(in.get()), 0u);
}

TEST_F(LaneReaderTest, ResetForgetsAPartlyStreamedMessage) {
  const std::string row = dataRow(std::string(100, 'z'));
  feed(row.substr(0, 10));
  EXPECT_TRUE(reader.read(in.get(), h));
  reader.reset();   // a new connection: its first byte is a message header
  EXPECT_FALSE(reader.streaming());
  evbuffer_drain(in.get(), evbuffer_get_length(in.get()));
  feed(complete("SELECT 0"));
  EXPECT_TRUE(reader.read(in.get(), h));
  EXPECT_EQ(h.tags, std::vector<std::string>{"SELECT 0"});
}

}  // namespace
}  // namespace cutover::proxy
