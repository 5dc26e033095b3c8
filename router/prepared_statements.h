#pragma once

// A session's SQL-level prepared statements (PREPARE name AS …): what EXECUTE name runs.
// The Classifier is per worker and caches by text, so it cannot know which PREPARE an EXECUTE
// refers to; the session owns one of these and resolves EXECUTEs through it.

#include <string>
#include <unordered_map>

#include "router/statement_info.h"

namespace cutover::router {

class PreparedStatements {
 public:
  // Call with every classified statement the session sends: records PREPARE, forgets on
  // DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL; other statements are ignored.
  void apply(const StatementInfo& statement);

  // For an EXECUTE: the classification recorded at PREPARE (kind raised to Write when the
  // arguments call a function not known to be read-only), session = Execute. An unknown name or
  // any other statement is returned unchanged (an unresolved EXECUTE is a Write: the safe default).
  StatementInfo resolve(const StatementInfo& statement) const;

  size_t size() const { return statements_.size(); }
  void clear() { statements_.clear(); }

 private:
  std::unordered_map<std::string, StatementInfo> statements_;
};

}  // namespace cutover::router
