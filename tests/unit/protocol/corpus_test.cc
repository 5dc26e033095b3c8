#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "protocol/framing.h"
#include "protocol/messages.h"

namespace cutover::protocol {
namespace {

// Decodes `bytes` as one whole stream in `direction` (frontend streams may open with a startup
// packet); returns an empty string or what stopped it.
std::string decodeWholeStream(std::string_view bytes, Direction direction) {
  std::span<const uint8_t> rest = asBytes(bytes);
  if (direction == Direction::Frontend) {
    Frame startup = peekStartup(rest, kStartupPacketLimit);
    if (startup.status == DecodeStatus::Ready && decodeStartup(rest.subspan(4, startup.bodySize())).isOk()) {
      rest = rest.subspan(startup.totalSize());
    }
  }
  while (!rest.empty()) {
    Frame frame = peekMessage(rest, direction, kDefaultMaxMessageLength);
    if (frame.status != DecodeStatus::Ready) return frame.reason.empty() ? "incomplete" : frame.reason;
    auto body = rest.subspan(frame.headerSize(), frame.bodySize());
    std::string reason = direction == Direction::Frontend ? decodeFrontend(frame.type, body).reason()
                                                          : decodeBackend(frame.type, body).reason();
    if (!reason.empty()) return reason;
    rest = rest.subspan(frame.totalSize());
  }
  return {};
}

// Seeds named bad_* (and crash-* inputs kept from fuzzing) are malformed on purpose; every other
// seed is a well-formed client or server stream.
TEST(CorpusTest, WellFormedSeedsDecodeInOneDirection) {
  size_t seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(CUTOVER_DECODER_CORPUS_DIR)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string as_frontend = decodeWholeStream(bytes, Direction::Frontend);
    std::string as_backend = decodeWholeStream(bytes, Direction::Backend);
    std::string name = entry.path().filename().string();
    if (name == "bad_length") {
      EXPECT_EQ(as_frontend, "invalid length 2 in message of type 'Q' (minimum is 4)");
    } else if (name.starts_with("bad_") || name.starts_with("crash-")) {
      continue;
    } else {
      EXPECT_TRUE(as_frontend.empty() || as_backend.empty())
          << entry.path() << ": frontend: " << as_frontend << "; backend: " << as_backend;
    }
    ++seeds;
  }
  EXPECT_GE(seeds, 12u);
}

}  // namespace
}  // namespace cutover::protocol
