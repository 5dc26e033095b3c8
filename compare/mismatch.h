#pragma once

// One shadowed read whose two results differed. Recorded in journal_dir/mismatches.jsonl (see
// journal.h), like divergence.h's records for writes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/compare_rules.h"
#include "compare/result_compare.h"
#include "compare/result_digest.h"

namespace cutover::compare {

// Values of Mismatch::result.
namespace mismatch_result {
inline constexpr std::string_view kMismatch = "mismatch";    // differed, and still did on every recheck
inline constexpr std::string_view kTransient = "transient";  // differed, then matched on a recheck
inline constexpr std::string_view kNoisy = "noisy";          // differed, but the statement is not repeatable
}  // namespace mismatch_result

struct Mismatch {
  std::string time;  // RFC 3339 UTC with ms (nowRfc3339Ms())
  uint64_t session_id = 0;
  std::string fingerprint;  // pg_query fingerprint, 16 hex digits; "" when the text does not parse
  std::string query;        // the statement with its literals as $n; "" when it does not parse
  // The statement as sent: only with compare.log_values (literals may be personal data).
  std::optional<std::string> statement;
  std::string kind;    // toString(MismatchKind)
  std::string result;  // a mismatch_result value
  std::string noise;   // why the statement is not repeatable (noiseOf), "" if it is
  std::string detail;  // ResultComparison::detail
  uint64_t old_rows = 0, new_rows = 0;
  double old_ms = 0, new_ms = 0;  // each store's time to the end of its result; set by the caller
  // "SQLSTATE message" of a side that answered with an ErrorResponse, "" otherwise.
  std::string old_error, new_error;
  std::vector<RowDifference> rows;  // the first differing rows, values as ResultComparison shows them
};

// Everything the comparison and the statement tell: kind, detail, row counts, errors, differing
// rows, fingerprint and normalised query (the raw text only with rules.log_values), time now.
// The caller sets session_id, result, noise and the timings.
Mismatch mismatchOf(const ResultComparison& comparison, const ResultDigester& old_side,
                    const ResultDigester& new_side, std::string_view statement, const CompareRules& rules);

// Keys are the member names; "rows" items are {"old_row", "new_row", "values": [{"column",
// "old", "new"}]} with null for a missing row or a NULL value; "statement" is present only when
// set. Invalid UTF-8 is the journal's to replace (it dumps with error_handler_t::replace).
nlohmann::json toJson(const Mismatch& mismatch);

}  // namespace cutover::compare
