// Fuzz target for protocol/: walks the input as a client stream (one startup-family packet, then
// typed frontend messages) and as a server stream (typed backend messages), decoding every
// complete frame. Besides "no crash, no out-of-bounds read" it checks one property: whatever
// decodes re-encodes to exactly the bytes it came from.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "protocol/framing.h"
#include "protocol/messages.h"

namespace {

using namespace cutover::protocol;

std::string_view asChars(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz_decoder: %s\n", what);
    std::abort();
  }
}

template <typename Result>
void checkReencodes(const Result& result, std::span<const uint8_t> frame) {
  if (!result.isOk()) {
    check(!result.reason().empty(), "decode failed without a reason");
    return;
  }
  std::string again;
  encode(result.value(), again);
  check(again == asChars(frame), "decoded message does not re-encode to its own bytes");
}

// The 'p' family is ambiguous on the wire; every reading must be safe.
template <typename T>
void decodePasswordFamilyAs(std::span<const uint8_t> body, std::span<const uint8_t> frame) {
  DecodeResult<T> result = decode<T>(body);
  if (!result.isOk()) return;
  check(encode(result.value()) == asChars(frame), "'p' message does not re-encode to its own bytes");
}

void walkFrontend(std::span<const uint8_t> input) {
  Frame startup = peekStartup(input, kStartupPacketLimit);
  if (startup.status == DecodeStatus::Ready) {
    std::span<const uint8_t> frame = input.first(startup.totalSize());
    checkReencodes(decodeStartup(frame.subspan(startup.headerSize())), frame);
    input = input.subspan(startup.totalSize());
  }
  while (!input.empty()) {
    Frame header = peekMessage(input, Direction::Frontend, kDefaultMaxMessageLength);
    if (header.status != DecodeStatus::Ready) {
      check(header.status == DecodeStatus::NeedMoreData || !header.reason.empty(), "Invalid without reason");
      return;
    }
    check(header.totalSize() <= input.size(), "Ready frame larger than the buffer");
    std::span<const uint8_t> frame = input.first(header.totalSize());
    std::span<const uint8_t> body = frame.subspan(header.headerSize());
    checkReencodes(decodeFrontend(header.type, body), frame);
    if (header.type == 'p') {
      decodePasswordFamilyAs<PasswordMessage>(body, frame);
      decodePasswordFamilyAs<SaslInitialResponse>(body, frame);
      decodePasswordFamilyAs<GssResponse>(body, frame);
    }
    input = input.subspan(header.totalSize());
  }
}

void walkBackend(std::span<const uint8_t> input) {
  while (!input.empty()) {
    Frame header = peekMessage(input, Direction::Backend, kDefaultMaxMessageLength);
    if (header.status != DecodeStatus::Ready) {
      check(header.status == DecodeStatus::NeedMoreData || !header.reason.empty(), "Invalid without reason");
      return;
    }
    check(header.totalSize() <= input.size(), "Ready frame larger than the buffer");
    std::span<const uint8_t> frame = input.first(header.totalSize());
    checkReencodes(decodeBackend(header.type, frame.subspan(header.headerSize())), frame);
    input = input.subspan(header.totalSize());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  walkFrontend(input);
  walkBackend(input);
  return 0;
}
