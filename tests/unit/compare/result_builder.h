#pragma once

// Builds backend message bodies and feeds them to a ResultDigester, for compare/ tests.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/result_digest.h"
#include "protocol/messages.h"

namespace cutover::compare::testing {

struct Column {
  std::string name;
  uint32_t type_oid = 25;  // text
  int16_t format = 0;
};

using Row = std::vector<std::optional<std::string>>;

// The body of a message: what follows the type byte and the length.
template <typename T>
std::string bodyOf(const T& message) {
  return protocol::encode(message).substr(5);
}

inline std::span<const uint8_t> bytes(const std::string& body) { return protocol::asBytes(body); }

inline std::string rowDescriptionBody(const std::vector<Column>& columns) {
  protocol::RowDescription description;
  for (const Column& column : columns) {
    protocol::RowDescription::Field field;
    field.name = column.name;
    field.type_oid = column.type_oid;
    field.format = column.format;
    description.fields.push_back(field);
  }
  return bodyOf(description);
}

// A DataRow body written into `out` (reused: no allocation once it is large enough).
inline void dataRowBody(const Row& row, std::string& out) {
  out.clear();
  auto put32 = [&out](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  out.push_back(static_cast<char>(row.size() >> 8));
  out.push_back(static_cast<char>(row.size() & 0xff));
  for (const auto& value : row) {
    if (!value) {
      put32(0xffffffffu);
      continue;
    }
    put32(static_cast<uint32_t>(value->size()));
    out += *value;
  }
}

inline std::string dataRowBody(const Row& row) {
  std::string out;
  dataRowBody(row, out);
  return out;
}

inline std::string commandCompleteBody(const std::string& tag) { return bodyOf(protocol::CommandComplete{tag}); }

inline std::string errorBody(const std::string& sqlstate, const std::string& message) {
  return bodyOf(protocol::ErrorResponse::make("ERROR", sqlstate, message));
}

// A whole result: RowDescription, the rows, CommandComplete "SELECT n".
inline ResultDigester digest(const CompareRules& rules, const std::vector<Column>& columns,
                             const std::vector<Row>& rows) {
  ResultDigester digester(rules);
  digester.onRowDescription(bytes(rowDescriptionBody(columns)));
  for (const Row& row : rows) digester.onDataRow(bytes(dataRowBody(row)));
  digester.onCommandComplete(bytes(commandCompleteBody("SELECT " + std::to_string(rows.size()))));
  return digester;
}

inline ResultDigester failed(const CompareRules& rules, const std::string& sqlstate, const std::string& message) {
  ResultDigester digester(rules);
  digester.onError(bytes(errorBody(sqlstate, message)));
  return digester;
}

}  // namespace cutover::compare::testing
