#pragma once

// Uncached classification of one simple-Query text with libpg_query (PostgreSQL's own parser).
// The Classifier caches what this returns; call this directly only in tests and benchmarks.

#include <string_view>

#include "router/statement_info.h"

namespace cutover::router {

StatementInfo classifySql(std::string_view sql);

// True when libpg_query could recurse deep enough on `sql` to overflow a worker's stack (an
// estimate that errs on the side of true for texts over 10 kB): such texts are not parsed.
bool mayNestTooDeep(std::string_view sql);

}  // namespace cutover::router
