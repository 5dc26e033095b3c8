#pragma once

// The verdict on two digests of one shadowed read: match, or what kind of difference, with the
// first differing rows column by column taken from the samples.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/result_digest.h"

namespace cutover::compare {

enum class MismatchKind {
  None,          // the results match
  Columns,       // column names, types or formats differ (ignored columns left out)
  RowCount,      // as many columns alike, a different number of rows
  Values,        // same row count, different rows
  Order,         // same rows, different order, under a top-level ORDER BY
  ErrorOneSide,  // one store answered with an ErrorResponse, the other with a result
  ErrorDiffers,  // both answered with an ErrorResponse, of different SQLSTATEs
  Incomparable,  // a side's messages were malformed or its result never finished
};

// "match", "columns", "row_count", "values", "order", "error_one_side", "error_differs",
// "incomparable" — the mismatch record's kind.
std::string_view toString(MismatchKind kind);

struct ValueDifference {
  std::string column;  // the column's name, or "column N" (1-based) without a RowDescription
  // As they are recorded: "<redacted N bytes>" unless log_values; binary values as \x hex;
  // long values cut. nullopt = NULL, or no such row on that side.
  std::optional<std::string> old_value, new_value;
};

struct RowDifference {
  // 0-based position of the row in each side's result; nullopt = the row is not on that side.
  std::optional<uint64_t> old_row, new_row;
  // The differing columns; every compared column when the row is on one side only.
  std::vector<ValueDifference> values;
};

struct ResultComparison {
  MismatchKind kind = MismatchKind::None;
  // One line for people: "old 10 rows, new 9", "column 2: old total numeric, new total float8".
  std::string detail;
  // The first differing rows (at most rules.max_row_differences) found in the samples. Empty
  // when the samples cannot show them: an unordered result larger than the sample on either
  // side, or a difference after the sampled prefix of an ordered one.
  std::vector<RowDifference> rows;

  bool match() const { return kind == MismatchKind::None; }
};

// Both digests must have been fed with the same `rules`. Hashes decide, except that when both
// samples hold every row a hash difference is rechecked row by row with the rules themselves
// (float_tolerance's cell boundaries, see normalise.h), so small results compare exactly.
// Both sides failing with the same SQLSTATE is a match.
ResultComparison compareResults(const ResultDigester& old_side, const ResultDigester& new_side,
                                const CompareRules& rules);

}  // namespace cutover::compare
