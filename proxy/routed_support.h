#pragma once

// What the files of ClientSession's routed mode share (client_session_routed.cc, _classify,
// _units, _lanes, _loss, _async, _copy, _images, _shadow): limits and small conversions.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "flags/flag_snapshot.h"
#include "router/decide.h"

namespace cutover::proxy {

// Past this many bytes waiting for a slow peer, the other side is no longer read (backpressure).
inline constexpr size_t kHighWatermark = 512 * 1024;
// Statement text kept for the journal; beyond it cut short, with a note of its size.
inline constexpr size_t kJournalTextBytes = 64 * 1024;

// Sets `out` to `sql`, or for a huge statement to its first kJournalTextBytes (at a character
// boundary) and a note of its size: a unit keeps its text only for the journal. True if cut.
bool journalText(std::string_view sql, std::string& out);

inline metrics::StoreLabel label(router::Store store) {
  return store == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New;
}

metrics::StatementKindLabel kindLabel(router::StatementKind kind);

// What router::decide needs of a flags snapshot.
router::FlagView viewOf(const flags::FlagSnapshot& f);

}  // namespace cutover::proxy
