#include "compare/mismatch.h"

#include "common/clock.h"
#include "router/fingerprint.h"

namespace cutover::compare {
namespace {

std::string errorText(const ResultDigester& side) {
  if (!side.error()) return {};
  return side.error()->sqlstate + " " + side.error()->message;
}

nlohmann::json nullable(const std::optional<std::string>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json nullable(const std::optional<uint64_t>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

Mismatch mismatchOf(const ResultComparison& comparison, const ResultDigester& old_side,
                    const ResultDigester& new_side, std::string_view statement, const CompareRules& rules) {
  Mismatch m;
  m.time = nowRfc3339Ms();
  router::StatementFingerprint fingerprint = router::fingerprintStatement(statement);
  m.fingerprint = std::move(fingerprint.fingerprint);
  m.query = std::move(fingerprint.normalized);
  if (rules.log_values) m.statement = std::string(statement);
  m.kind = std::string(toString(comparison.kind));
  m.result = std::string(mismatch_result::kMismatch);
  m.detail = comparison.detail;
  m.old_rows = old_side.rows();
  m.new_rows = new_side.rows();
  m.old_error = errorText(old_side);
  m.new_error = errorText(new_side);
  m.rows = comparison.rows;
  return m;
}

nlohmann::json toJson(const Mismatch& m) {
  nlohmann::json rows = nlohmann::json::array();
  for (const RowDifference& row : m.rows) {
    nlohmann::json values = nlohmann::json::array();
    for (const ValueDifference& value : row.values) {
      values.push_back({{"column", value.column}, {"old", nullable(value.old_value)}, {"new", nullable(value.new_value)}});
    }
    rows.push_back({{"old_row", nullable(row.old_row)}, {"new_row", nullable(row.new_row)}, {"values", std::move(values)}});
  }
  nlohmann::json out{
      {"time", m.time},
      {"session_id", m.session_id},
      {"fingerprint", m.fingerprint},
      {"query", m.query},
      {"kind", m.kind},
      {"result", m.result},
      {"noise", m.noise},
      {"detail", m.detail},
      {"old_rows", m.old_rows},
      {"new_rows", m.new_rows},
      {"old_ms", m.old_ms},
      {"new_ms", m.new_ms},
      {"old_error", m.old_error},
      {"new_error", m.new_error},
      {"rows", std::move(rows)},
  };
  if (m.statement) out["statement"] = *m.statement;
  return out;
}

}  // namespace cutover::compare
