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

std::string withParameters(std::string_view text, const std::vector<std::optional<std::string>>& parameters) {
  if (parameters.empty()) return std::string(text);
  // Before the statement's own closing semicolon, if it has one: they belong to the statement.
  std::string_view body = text;
  while (!body.empty() && (body.back() == ' ' || body.back() == '\n' || body.back() == '\t')) body.remove_suffix(1);
  const bool semicolon = !body.empty() && body.back() == ';';
  if (semicolon) body.remove_suffix(1);
  std::string out(body);
  constexpr size_t kMaxValue = 1024;
  out += " [parameters: ";
  for (size_t i = 0; i < parameters.size(); ++i) {
    if (i > 0) out += ", ";
    out += "$" + std::to_string(i + 1) + " = ";
    if (!parameters[i]) {
      out += "NULL";
      continue;
    }
    const std::string_view value = std::string_view(*parameters[i]).substr(0, kMaxValue);
    out += '\'';
    for (char c : value) {
      out += c;
      if (c == '\'') out += '\'';
    }
    out += '\'';
    if (parameters[i]->size() > kMaxValue) out += "…";
  }
  out += ']';
  if (semicolon) out += ';';
  return out;
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
