#pragma once

// SQL quoting without a connection, for statements built from catalog names. Output is valid
// with standard_conforming_strings on (PostgreSQL's default since 9.1).

#include <string>
#include <string_view>

namespace cutover::pgclient {

// "Order" -> "\"Order\"", a"b -> "\"a\"\"b\"": always quoted, so case and keywords survive.
std::string quoteIdentifier(std::string_view name);
// schema.name, both quoted; an empty schema gives the name alone.
std::string quoteQualified(std::string_view schema, std::string_view name);
// it's -> 'it''s'; a value with a backslash is written E'...' with the backslash doubled.
std::string quoteLiteral(std::string_view value);

}  // namespace cutover::pgclient
