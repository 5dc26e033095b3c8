#pragma once

// What a database defines that can make a read write (issue 14): a function of its own that is
// VOLATILE (PostgreSQL runs STABLE and IMMUTABLE functions read-only, so only those may write)
// reached from a statement the classifier takes for a read — by a name it knows as a read-only
// built-in (a public.lower(int), an app.now() found first by search_path), through a view (its
// rule calls one, or reads another such view), a row-level security policy, an operator, a cast
// to a type (the cast's function, a domain's CHECK), or attribute notation (t.f calling f(t)).
// Read from the authoritative store's catalog (readHazardsQuery), per database, and matched by
// name: any schema, any argument types. That is conservative — a read naming `lower` in a
// database with its own volatile lower(int) is mirrored as a write wherever it is served — and
// never the other way round. The read-only transaction of a ramped read is what guarantees it;
// this is what keeps a read the authoritative store serves (not ramped) from writing there alone.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "router/statement_info.h"

namespace cutover::router {

struct ReadHazards {
  // "f:" function, "c:" function of one row-typed argument (attribute notation), "r:" view or
  // table with a row-level security policy, "o:" operator, "t:" type, then the name → what it is
  // ("function", "view", …), for the reason.
  std::unordered_map<std::string, std::string> names;
  bool overflow = false;   // more than kMaxReadHazards rows: every read counts as a write
  // Set when the catalog could not be read (why): unknown stays a write, every read counts as one.
  std::string unreadable;
  static constexpr size_t kMaxReadHazards = 100000;
};

// The catalog query (one round trip): rows of (kind, name), at most kMaxReadHazards + 1.
std::string readHazardsQuery();

// Its rows, as captured from the store (each row: kind, name).
ReadHazards readHazardsFrom(const std::vector<std::vector<std::optional<std::string>>>& rows);

// Why `info` (a read) may write in this database, or "" when nothing it names is a hazard.
std::string hazardOf(const StatementInfo& info, const ReadHazards& hazards);

}  // namespace cutover::router
