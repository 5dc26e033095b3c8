#include "protocol/frontend_messages.h"

#include <fmt/format.h>

#include "protocol/framing.h"
#include "protocol/value_lists.h"

namespace cutover::protocol {
namespace {

bool readTarget(Reader& reader, char& target) {
  if (!reader.readChar(target, "the target")) return false;
  if (target == 'S' || target == 'P') return true;
  return reader.fail(fmt::format("invalid target {} in {} (expected 'S' or 'P')", describeType(target),
                                 reader.message()));
}

}  // namespace

std::optional<std::string_view> queryTextOf(std::span<const uint8_t> body) {
  if (body.empty() || body.back() != 0) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(body.data()), body.size() - 1);
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  return text;
}

bool Parse::decodeBody(Reader& reader) {
  return reader.readString(name, "statement name") && reader.readString(query, "query") &&
         readOidList(reader, "parameter types", param_types);
}

void Parse::encodeBody(Writer& writer) const {
  writer.putString(name);
  writer.putString(query);
  putOidList(writer, param_types);
}

bool Bind::decodeBody(Reader& reader) {
  return reader.readString(portal, "portal name") && reader.readString(statement, "statement name") &&
         readInt16List(reader, "parameter format codes", param_formats) &&
         readNullableList(reader, "parameters", params) &&
         readInt16List(reader, "result format codes", result_formats);
}

void Bind::encodeBody(Writer& writer) const {
  writer.putString(portal);
  writer.putString(statement);
  putInt16List(writer, param_formats);
  putNullableList(writer, params);
  putInt16List(writer, result_formats);
}

bool Describe::decodeBody(Reader& reader) {
  return readTarget(reader, target) && reader.readString(name, "name");
}

void Describe::encodeBody(Writer& writer) const {
  writer.putChar(target);
  writer.putString(name);
}

bool Execute::decodeBody(Reader& reader) {
  return reader.readString(portal, "portal name") && reader.readInt32(max_rows, "max_rows");
}

void Execute::encodeBody(Writer& writer) const {
  writer.putString(portal);
  writer.putInt32(max_rows);
}

bool Close::decodeBody(Reader& reader) {
  return readTarget(reader, target) && reader.readString(name, "name");
}

void Close::encodeBody(Writer& writer) const {
  writer.putChar(target);
  writer.putString(name);
}

bool FunctionCall::decodeBody(Reader& reader) {
  return reader.readUint32(function_oid, "the function OID") &&
         readInt16List(reader, "argument format codes", arg_formats) &&
         readNullableList(reader, "arguments", args) &&
         reader.readInt16(result_format, "the result format code");
}

void FunctionCall::encodeBody(Writer& writer) const {
  writer.putUint32(function_oid);
  putInt16List(writer, arg_formats);
  putNullableList(writer, args);
  writer.putInt16(result_format);
}

bool SaslInitialResponse::decodeBody(Reader& reader) {
  return reader.readString(mechanism, "mechanism") && readNullable(reader, "the initial response", data);
}

void SaslInitialResponse::encodeBody(Writer& writer) const {
  writer.putString(mechanism);
  writer.putNullable(data);
}

}  // namespace cutover::protocol
