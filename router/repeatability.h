#pragma once

// Whether a read gives the same rows when run twice on identical data — on the old store and on
// the new one for a shadow comparison. Judged from the parse tree alone.

#include <string>

#include "router/tree_walk.h"

namespace cutover::router {

// `select` is a SelectStmt body ({"targetList": …, "fromClause": …}). Returns why two runs may
// differ, or "" when nothing in the tree says so. First reason in document order:
// - a random-family call anywhere (random(), gen_random_uuid()…, in ORDER BY or WHERE too), or a
//   call whose value differs between the two stores (pg_backend_pid(), inet_server_addr()…);
// - a clock read (now(), CURRENT_TIMESTAMP, 'now'::timestamptz…) outside WHERE / HAVING /
//   JOIN … ON: in a qualification it only moves a boundary, a recheck settles it;
// - TABLESAMPLE (even REPEATABLE: the stores lay rows out differently);
// - a LIMIT / OFFSET / FETCH without ORDER BY in a subquery (not in EXISTS, where it cannot
//   change the answer); the top level's own is StatementInfo::has_limit without
//   top_level_order_by;
// - DISTINCT ON without ORDER BY (which row of each group is kept is arbitrary).
std::string unrepeatableReason(const Json& select);

}  // namespace cutover::router
