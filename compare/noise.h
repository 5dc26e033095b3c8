#pragma once

// Whether a shadowed read's results may differ between the stores with neither store wrong.

#include <string_view>

#include "router/statement_info.h"

namespace cutover::compare {

// Why the statement is not repeatable, judged by its parse tree, or "" when nothing says so:
// StatementInfo::unrepeatable (random(), clock reads in the result, TABLESAMPLE, a subquery's
// LIMIT without ORDER BY, SHOW, EXPLAIN — router/repeatability.h), else a top-level LIMIT /
// OFFSET / FETCH without ORDER BY. A mismatch of such a read is recorded with result "noisy".
// Not caught: ORDER BY a non-unique key (ties may come back in either order: kind "order"),
// window functions without ORDER BY, volatile user functions.
// The view refers to `statement` or to a literal.
std::string_view noiseOf(const router::StatementInfo& statement);

}  // namespace cutover::compare
