#include "protocol/framing.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/messages.h"

namespace cutover::protocol {
namespace {

Frame peek(const std::string& bytes, Direction direction = Direction::Frontend,
           uint32_t max_length = kDefaultMaxMessageLength) {
  return peekMessage(asBytes(bytes), direction, max_length);
}

std::string header(char type, uint32_t length) {
  std::string out(1, type);
  out.push_back(static_cast<char>(length >> 24));
  out.push_back(static_cast<char>(length >> 16));
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(length));
  return out;
}

TEST(FramingTest, EmptyBufferNeedsMoreData) {
  EXPECT_EQ(peek("").status, DecodeStatus::NeedMoreData);
  EXPECT_EQ(peekStartup({}, kStartupPacketLimit).status, DecodeStatus::NeedMoreData);
}

TEST(FramingTest, CompleteQueryIsReady) {
  std::string bytes = encode(Query{"SELECT 1"});
  Frame frame = peek(bytes);
  EXPECT_EQ(frame.status, DecodeStatus::Ready);
  EXPECT_EQ(frame.type, 'Q');
  EXPECT_EQ(frame.length, 4u + 9u);
  EXPECT_EQ(frame.headerSize(), 5u);
  EXPECT_EQ(frame.totalSize(), bytes.size());
  EXPECT_EQ(frame.bodySize(), 9u);
}

TEST(FramingTest, SplitAtEveryOffsetNeedsMoreDataUntilComplete) {
  std::string bytes = encode(Parse{"s1", "SELECT $1", {23}});
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Frame frame = peek(bytes.substr(0, cut));
    EXPECT_EQ(frame.status, DecodeStatus::NeedMoreData) << "cut at " << cut;
    if (cut >= 5) {
      EXPECT_EQ(frame.type, 'P');
      EXPECT_EQ(frame.totalSize(), bytes.size());
    }
  }
  Frame frame = peek(bytes);
  EXPECT_EQ(frame.status, DecodeStatus::Ready);
  EXPECT_EQ(frame.totalSize(), bytes.size());
}

TEST(FramingTest, TwoMessagesInOneBuffer) {
  std::string bytes = encode(Query{"BEGIN"}) + encode(Sync{});
  Frame first = peek(bytes);
  ASSERT_EQ(first.status, DecodeStatus::Ready);
  EXPECT_EQ(first.type, 'Q');
  Frame second = peek(bytes.substr(first.totalSize()));
  ASSERT_EQ(second.status, DecodeStatus::Ready);
  EXPECT_EQ(second.type, 'S');
  EXPECT_EQ(first.totalSize() + second.totalSize(), bytes.size());
}

TEST(FramingTest, LengthBelowFourIsInvalid) {
  Frame frame = peek(header('Q', 3));
  EXPECT_EQ(frame.status, DecodeStatus::Invalid);
  EXPECT_EQ(frame.reason, "invalid length 3 in message of type 'Q' (minimum is 4)");
}

TEST(FramingTest, LengthBeyondLimitIsInvalid) {
  Frame frame = peek(header('Q', 1001), Direction::Frontend, 1000);
  EXPECT_EQ(frame.status, DecodeStatus::Invalid);
  EXPECT_EQ(frame.reason, "invalid length 1001 in message of type 'Q' (maximum is 1000)");
  EXPECT_EQ(peek(header('Q', 1000), Direction::Frontend, 1000).status, DecodeStatus::NeedMoreData);
  Frame huge = peek(header('D', 0xffffffffu), Direction::Backend);
  EXPECT_EQ(huge.reason, "invalid length 4294967295 in message of type 'D' (maximum is 1073741824)");
}

TEST(FramingTest, UnknownTypeIsInvalidFromTheFirstByte) {
  Frame frame = peek("z");
  EXPECT_EQ(frame.status, DecodeStatus::Invalid);
  EXPECT_EQ(frame.reason, "unknown frontend message type 'z'");
  EXPECT_EQ(peek(std::string(1, '\x01'), Direction::Backend).reason, "unknown backend message type 0x01");
  // The startup family has no type byte: a startup packet read as a typed message is rejected.
  EXPECT_EQ(peek(encode(SslRequest{})).reason, "unknown frontend message type 0x00");
}

TEST(FramingTest, TypesDependOnDirection) {
  EXPECT_TRUE(isKnownMessageType('Q', Direction::Frontend));
  EXPECT_FALSE(isKnownMessageType('Q', Direction::Backend));
  EXPECT_TRUE(isKnownMessageType('Z', Direction::Backend));
  EXPECT_FALSE(isKnownMessageType('Z', Direction::Frontend));
  EXPECT_TRUE(isKnownMessageType('D', Direction::Frontend));
  EXPECT_TRUE(isKnownMessageType('D', Direction::Backend));
  EXPECT_TRUE(isKnownMessageType('p', Direction::Frontend));
  EXPECT_FALSE(isKnownMessageType('\0', Direction::Frontend));
  for (char type : std::string("QPBDECSHXdcfFp")) EXPECT_TRUE(isKnownMessageType(type, Direction::Frontend));
  for (char type : std::string("RKSZENTDCI123nstGHWdcAVv")) EXPECT_TRUE(isKnownMessageType(type, Direction::Backend));
}

TEST(FramingTest, StartupPacketSplitAtEveryOffset) {
  StartupMessage startup;
  startup.parameters = {{"user", "app"}, {"database", "shop"}};
  std::string bytes = encode(startup);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Frame frame = peekStartup(asBytes(std::string_view(bytes).substr(0, cut)), kStartupPacketLimit);
    EXPECT_EQ(frame.status, DecodeStatus::NeedMoreData) << "cut at " << cut;
  }
  Frame frame = peekStartup(asBytes(bytes), kStartupPacketLimit);
  EXPECT_EQ(frame.status, DecodeStatus::Ready);
  EXPECT_EQ(frame.type, 0);
  EXPECT_EQ(frame.headerSize(), 4u);
  EXPECT_EQ(frame.totalSize(), bytes.size());
}

TEST(FramingTest, StartupLengthBounds) {
  std::string short_packet = header('x', 7).substr(1) + std::string(4, '\0');
  Frame frame = peekStartup(asBytes(short_packet), kStartupPacketLimit);
  EXPECT_EQ(frame.status, DecodeStatus::Invalid);
  EXPECT_EQ(frame.reason, "invalid length 7 in startup packet (minimum is 8)");

  std::string long_packet = header('x', 10001).substr(1);
  frame = peekStartup(asBytes(long_packet), kStartupPacketLimit);
  EXPECT_EQ(frame.status, DecodeStatus::Invalid);
  EXPECT_EQ(frame.reason, "invalid length 10001 in startup packet (maximum is 10000)");

  std::string at_limit = header('x', 10000).substr(1);
  EXPECT_EQ(peekStartup(asBytes(at_limit), kStartupPacketLimit).status, DecodeStatus::NeedMoreData);
}

TEST(FramingTest, StartupThenTypedMessage) {
  std::string bytes = encode(SslRequest{}) + encode(Query{"SELECT 1"});
  Frame startup = peekStartup(asBytes(bytes), kStartupPacketLimit);
  ASSERT_EQ(startup.status, DecodeStatus::Ready);
  EXPECT_EQ(startup.totalSize(), 8u);
  Frame query = peek(bytes.substr(startup.totalSize()));
  ASSERT_EQ(query.status, DecodeStatus::Ready);
  EXPECT_EQ(query.type, 'Q');
  EXPECT_EQ(startup.totalSize() + query.totalSize(), bytes.size());
}

}  // namespace
}  // namespace cutover::protocol
