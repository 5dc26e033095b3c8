#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "protocol/framing.h"
#include "proxy/libevent_handles.h"

namespace cutover::proxy {

// These peek only at headers (the caller streams bodies), so unlike protocol::peekMessage their
// Ready means "header complete and valid", whether or not the whole body has arrived yet.

// Header of the next typed message at the front of `buffer` (NeedMoreData under 5 bytes).
protocol::Frame peekMessage(evbuffer* buffer, protocol::Direction direction, uint32_t max_length);
// Header of the typed message that starts `offset` bytes into `buffer`.
protocol::Frame peekMessageAt(evbuffer* buffer, size_t offset, protocol::Direction direction, uint32_t max_length);
// The byte at `offset`, or -1 when the buffer is shorter.
int byteAt(evbuffer* buffer, size_t offset);

// Header of the next untyped startup-family packet at the front of `buffer`.
protocol::Frame peekStartup(evbuffer* buffer, uint32_t max_length);

// The body of the whole message described by `frame`, made contiguous in `buffer`. Valid until
// `buffer` is next modified; the caller drains frame.totalSize() once done with it.
std::span<const uint8_t> pullBody(evbuffer* buffer, const protocol::Frame& frame);

// A statement cutover injects in a client's session (the BEGIN and COMMIT around an autocommit
// write), as extended-protocol messages through a statement of its own — Parse "cutover:inject",
// Bind, Execute, Close, Sync — so the client's unnamed prepared statement survives it: a simple
// Query would drop it, and a driver's Bind of it after the wrap would fail with 26000.
// The statements cutover injects, encoded once per process (they are sent per wrapped unit).
enum class Injected { Begin, BeginReadOnly, Commit, Rollback };
const std::string& injectedStatement(Injected which);
// Any statement injected that way (its rows come as DataRows without a RowDescription).
std::string injectedQuery(std::string_view sql);
// A simple Query message of `sql`.
std::string queryMessage(std::string_view sql);

// A string literal PostgreSQL reads the same whatever standard_conforming_strings says: E'…'.
std::string sqlLiteral(std::string_view text);
// A quoted identifier: "…", inner quotes doubled.
std::string sqlIdentifier(std::string_view name);

// Calls fn(type, body, whole) for each message of `bytes`, a run of whole frontend messages the
// proxy already framed (a unit's bytes): `whole` is the message with its type and length.
template <typename Fn>
void forEachMessage(std::span<const uint8_t> bytes, Fn&& fn) {
  size_t at = 0;
  while (at + 5 <= bytes.size()) {
    const uint32_t length = (uint32_t{bytes[at + 1]} << 24) | (uint32_t{bytes[at + 2]} << 16) |
                            (uint32_t{bytes[at + 3]} << 8) | bytes[at + 4];
    if (length < 4 || at + 1 + length > bytes.size()) return;
    fn(static_cast<char>(bytes[at]), bytes.subspan(at + 5, length - 4), bytes.subspan(at, 1 + length));
    at += 1 + length;
  }
}

inline void append(evbuffer* buffer, const std::string& bytes) { evbuffer_add(buffer, bytes.data(), bytes.size()); }

}  // namespace cutover::proxy
