#include "pgclient/quote.h"

namespace cutover::pgclient {

std::string quoteIdentifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string quoteQualified(std::string_view schema, std::string_view name) {
  if (schema.empty()) return quoteIdentifier(name);
  return quoteIdentifier(schema) + "." + quoteIdentifier(name);
}

std::string quoteLiteral(std::string_view value) {
  const bool backslash = value.find('\\') != std::string_view::npos;
  std::string out;
  out.reserve(value.size() + 3);
  if (backslash) out += 'E';
  out += '\'';
  for (char c : value) {
    if (c == '\'') out += '\'';
    if (c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace cutover::pgclient
