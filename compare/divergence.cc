#include "compare/divergence.h"

#include <sys/time.h>
#include <time.h>

#include <fmt/format.h>

namespace cutover::compare {

nlohmann::json toJson(const Divergence& d) {
  nlohmann::json parameters = nlohmann::json::array();
  for (const auto& p : d.parameters) {
    if (p) {
      parameters.push_back(*p);
    } else {
      parameters.push_back(nullptr);
    }
  }
  nlohmann::json out{
      {"time", d.time},
      {"session_id", d.session_id},
      {"transaction_id", d.transaction_id},
      {"kind", d.kind},
      {"statement", d.statement},
      {"parameters", std::move(parameters)},
      {"authoritative_store", d.authoritative_store},
      {"secondary_store", d.secondary_store},
      {"authoritative_outcome", d.authoritative_outcome},
      {"secondary_outcome", d.secondary_outcome},
  };
  if (!d.table.empty()) out["table"] = d.table;
  if (!d.reason.empty()) out["reason"] = d.reason;
  return out;
}

metrics::DivergenceKindLabel kindLabel(std::string_view kind) {
  const auto& values = metrics::LabelValues<metrics::DivergenceKindLabel>::kValues;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] == kind) return static_cast<metrics::DivergenceKindLabel>(i);
  }
  return metrics::DivergenceKindLabel::ErrorOneSide;   // unreachable: every kind is listed
}

std::string hexParameter(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}


}  // namespace cutover::compare
