#include "compare/noise.h"

namespace cutover::compare {

std::string_view noiseOf(const router::StatementInfo& statement) {
  if (!statement.unrepeatable.empty()) return statement.unrepeatable;
  if (statement.has_limit && !statement.top_level_order_by) {
    return "LIMIT/OFFSET without ORDER BY picks arbitrary rows";
  }
  return {};
}

}  // namespace cutover::compare
