#pragma once

// libpg_query's statement fingerprint and normalised text, for mismatch records: statements that
// differ only in their literals share both, so records group by query shape, and the normalised
// text carries no values.

#include <string>
#include <string_view>

namespace cutover::router {

struct StatementFingerprint {
  // pg_query_fingerprint's 16 lowercase hex digits; empty when the text was not parsed.
  std::string fingerprint;
  // pg_query_normalize's text: each literal replaced by $n ("SELECT * FROM t WHERE id = $1").
  // Empty when the text was not parsed.
  std::string normalized;
  // Why the text was not parsed ("syntax error at or near …"); empty on success.
  std::string error;
};

// Parses `sql` (tens of µs): for the mismatch path, not for every statement. Texts with a NUL
// byte or nesting too deep to parse safely (statement_rules.h) are refused, not parsed.
StatementFingerprint fingerprintStatement(std::string_view sql);

}  // namespace cutover::router
