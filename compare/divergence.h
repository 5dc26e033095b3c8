#pragma once

#include "common/clock.h"

// One mirrored statement whose outcome differed between the stores, or a mirror write that never
// reached the secondary. Recorded in journal_dir/divergences.jsonl (see journal.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/metrics.h"

namespace cutover::compare {

// Values of Divergence::kind.
namespace divergence_kind {
inline constexpr std::string_view kTagMismatch = "tag_mismatch";          // UPDATE 3 vs UPDATE 2
inline constexpr std::string_view kErrorOneSide = "error_one_side";
inline constexpr std::string_view kReturningMismatch = "returning_mismatch";
inline constexpr std::string_view kSecondaryUnavailable = "secondary_unavailable";
inline constexpr std::string_view kSecondaryTimeout = "secondary_timeout";
inline constexpr std::string_view kQueueFull = "queue_full";              // async mirror queue
inline constexpr std::string_view kNondeterministic = "nondeterministic"; // now(), random(), ...
// mirror: async: acknowledged before the proxy stopped uncleanly, never confirmed applied on the
// secondary (found at start-up in the write-ahead record, compare/async_wal.h).
inline constexpr std::string_view kUncleanStop = "unclean_stop";
}  // namespace divergence_kind

// cutover_divergences_total{kind} of a divergence_kind value.
metrics::DivergenceKindLabel kindLabel(std::string_view kind);

struct Divergence {
  std::string time;  // RFC 3339 UTC with ms (nowRfc3339Ms())
  uint64_t session_id = 0;
  uint64_t transaction_id = 0;
  std::string kind;       // a divergence_kind value
  std::string statement;  // SQL text as sent
  // As sent: text-format values as they are, binary ones through hexParameter(); nullopt = NULL.
  std::vector<std::optional<std::string>> parameters;
  std::string authoritative_store, secondary_store;  // "old" / "new"
  // "UPDATE 3", "ERROR 23505 duplicate key ...", "not sent: new store down".
  std::string authoritative_outcome, secondary_outcome;
  // nondeterministic: the table whose values the stores may have picked differently, and why
  // (written only when set).
  std::string table, reason;
};

// Keys are the member names; NULL parameters are JSON null. Strings that are not valid UTF-8
// (a client_encoding other than UTF8) are written with U+FFFD in place of the bad bytes.
nlohmann::json toJson(const Divergence& divergence);

// A binary-format parameter as text: "\x" followed by lowercase hex, bytea's output format.
std::string hexParameter(std::string_view bytes);

// One statement of a transaction's journal text with the values it was bound to, as PostgreSQL
// logs them: `UPDATE t SET n = $1 WHERE id = $2 [parameters: $1 = '5', $2 = NULL]` (each value
// at most 1 KiB, quotes doubled; before the statement's closing semicolon when it has one).
// Without parameters: the text as it is.
std::string withParameters(std::string_view text, const std::vector<std::optional<std::string>>& parameters);

// Now as RFC 3339 UTC with milliseconds: "2026-11-21T07:50:01.123Z".
using cutover::nowRfc3339Ms;   // common/clock.h

}  // namespace cutover::compare
