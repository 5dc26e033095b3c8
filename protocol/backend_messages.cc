#include "protocol/backend_messages.h"

#include <fmt/format.h>

#include "protocol/framing.h"
#include "protocol/value_lists.h"

namespace cutover::protocol {

Authentication Authentication::md5Password(std::array<uint8_t, 4> salt) {
  Authentication message;
  message.kind = Kind::Md5Password;
  message.md5_salt = salt;
  return message;
}

Authentication Authentication::sasl(std::vector<std::string> mechanisms) {
  Authentication message;
  message.kind = Kind::Sasl;
  message.sasl_mechanisms = std::move(mechanisms);
  return message;
}

Authentication Authentication::saslContinue(std::string data) {
  Authentication message;
  message.kind = Kind::SaslContinue;
  message.data = std::move(data);
  return message;
}

Authentication Authentication::saslFinal(std::string data) {
  Authentication message;
  message.kind = Kind::SaslFinal;
  message.data = std::move(data);
  return message;
}

bool Authentication::decodeBody(Reader& reader) {
  int32_t code = 0;
  if (!reader.readInt32(code, "the authentication request code")) return false;
  switch (code) {
    case static_cast<int32_t>(Kind::Ok):
    case static_cast<int32_t>(Kind::KerberosV5):
    case static_cast<int32_t>(Kind::CleartextPassword):
    case static_cast<int32_t>(Kind::Gss):
    case static_cast<int32_t>(Kind::Sspi):
      kind = static_cast<Kind>(code);
      return true;
    case static_cast<int32_t>(Kind::Md5Password): {
      kind = Kind::Md5Password;
      std::string salt;
      if (!reader.readBytes(4, salt, "the MD5 salt")) return false;
      for (size_t i = 0; i < 4; ++i) md5_salt[i] = static_cast<uint8_t>(salt[i]);
      return true;
    }
    case static_cast<int32_t>(Kind::Sasl):
      kind = Kind::Sasl;
      // Mechanism names, then an empty string that ends the list.
      while (true) {
        if (reader.remaining() == 0) {
          return reader.fail("missing mechanism list terminator in Authentication (SASL)");
        }
        std::string mechanism;
        if (!reader.readString(mechanism, "SASL mechanism")) return false;
        if (mechanism.empty()) return true;
        sasl_mechanisms.push_back(std::move(mechanism));
      }
    case static_cast<int32_t>(Kind::GssContinue):
    case static_cast<int32_t>(Kind::SaslContinue):
    case static_cast<int32_t>(Kind::SaslFinal):
      kind = static_cast<Kind>(code);
      reader.readRest(data);
      return true;
    default:
      return reader.fail(fmt::format("unknown authentication request code {} in Authentication", code));
  }
}

void Authentication::encodeBody(Writer& writer) const {
  writer.putInt32(static_cast<int32_t>(kind));
  switch (kind) {
    case Kind::Md5Password:
      for (uint8_t byte : md5_salt) writer.putUint8(byte);
      break;
    case Kind::Sasl:
      for (const auto& mechanism : sasl_mechanisms) writer.putString(mechanism);
      writer.putUint8(0);
      break;
    case Kind::GssContinue:
    case Kind::SaslContinue:
    case Kind::SaslFinal:
      writer.putBytes(data);
      break;
    default:
      break;
  }
}

bool BackendKeyData::decodeBody(Reader& reader) {
  return reader.readInt32(process_id, "the process id") && reader.readInt32(secret_key, "the secret key");
}

void BackendKeyData::encodeBody(Writer& writer) const {
  writer.putInt32(process_id);
  writer.putInt32(secret_key);
}

bool ParameterStatus::decodeBody(Reader& reader) {
  return reader.readString(name, "name") && reader.readString(value, "value");
}

void ParameterStatus::encodeBody(Writer& writer) const {
  writer.putString(name);
  writer.putString(value);
}

bool ReadyForQuery::decodeBody(Reader& reader) {
  if (!reader.readChar(status, "the transaction status")) return false;
  if (status == 'I' || status == 'T' || status == 'E') return true;
  return reader.fail(fmt::format("invalid transaction status {} in ReadyForQuery (expected 'I', 'T' or 'E')",
                                 describeType(status)));
}

std::string_view ErrorFields::field(char code) const {
  for (const auto& [field_code, value] : fields) {
    if (field_code == code) return value;
  }
  return {};
}

bool ErrorFields::decodeBody(Reader& reader) {
  fields.clear();
  while (true) {
    char code = 0;
    if (reader.remaining() == 0) {
      return reader.fail(fmt::format("missing field list terminator in {}", reader.message()));
    }
    reader.readChar(code, "a field code");
    if (code == 0) return true;
    std::string value;
    if (!reader.readString(value, fmt::format("field {}", describeType(code)))) return false;
    fields.emplace_back(code, std::move(value));
  }
}

void ErrorFields::encodeBody(Writer& writer) const {
  for (const auto& [code, value] : fields) {
    writer.putChar(code);
    writer.putString(value);
  }
  writer.putUint8(0);
}

void ErrorFields::fill(std::string_view severity, std::string_view sqlstate, std::string_view message,
                       std::string_view detail, std::string_view hint) {
  fields.emplace_back(field_code::kSeverity, std::string(severity));
  fields.emplace_back(field_code::kSeverityNonLocalized, std::string(severity));
  fields.emplace_back(field_code::kSqlState, std::string(sqlstate));
  fields.emplace_back(field_code::kMessage, std::string(message));
  if (!detail.empty()) fields.emplace_back(field_code::kDetail, std::string(detail));
  if (!hint.empty()) fields.emplace_back(field_code::kHint, std::string(hint));
}

ErrorResponse ErrorResponse::make(std::string_view severity, std::string_view sqlstate,
                                  std::string_view message, std::string_view detail,
                                  std::string_view hint) {
  ErrorResponse response;
  response.fill(severity, sqlstate, message, detail, hint);
  return response;
}

NoticeResponse NoticeResponse::make(std::string_view severity, std::string_view sqlstate,
                                    std::string_view message, std::string_view detail,
                                    std::string_view hint) {
  NoticeResponse response;
  response.fill(severity, sqlstate, message, detail, hint);
  return response;
}

bool RowDescription::decodeBody(Reader& reader) {
  uint16_t count = 0;
  if (!reader.readUint16(count, "the field count")) return false;
  fields.clear();
  for (size_t i = 0; i < count; ++i) {
    if (reader.remaining() == 0) return failDeclared(reader, count, "fields", i);
    Field field;
    if (!reader.readString(field.name, fmt::format("name of field {}", i + 1)) ||
        !reader.readUint32(field.table_oid, "a table OID") ||
        !reader.readInt16(field.column_attr, "a column attribute number") ||
        !reader.readUint32(field.type_oid, "a type OID") || !reader.readInt16(field.type_size, "a type size") ||
        !reader.readInt32(field.type_modifier, "a type modifier") ||
        !reader.readInt16(field.format, "a format code")) {
      return false;
    }
    fields.push_back(std::move(field));
  }
  return true;
}

void RowDescription::encodeBody(Writer& writer) const {
  writer.putCount16(fields.size());
  for (const auto& field : fields) {
    writer.putString(field.name);
    writer.putUint32(field.table_oid);
    writer.putInt16(field.column_attr);
    writer.putUint32(field.type_oid);
    writer.putInt16(field.type_size);
    writer.putInt32(field.type_modifier);
    writer.putInt16(field.format);
  }
}

bool DataRow::decodeBody(Reader& reader) { return readNullableList(reader, "columns", columns); }

void DataRow::encodeBody(Writer& writer) const { putNullableList(writer, columns); }

bool ParameterDescription::decodeBody(Reader& reader) {
  return readOidList(reader, "parameter types", param_types);
}

void ParameterDescription::encodeBody(Writer& writer) const { putOidList(writer, param_types); }

bool CopyResponseFields::decodeBody(Reader& reader) {
  uint8_t raw = 0;
  if (!reader.readUint8(raw, "the overall format")) return false;
  format = static_cast<int8_t>(raw);
  return readInt16List(reader, "column format codes", column_formats);
}

void CopyResponseFields::encodeBody(Writer& writer) const {
  writer.putUint8(static_cast<uint8_t>(format));
  putInt16List(writer, column_formats);
}

bool NotificationResponse::decodeBody(Reader& reader) {
  return reader.readInt32(process_id, "the process id") && reader.readString(channel, "channel") &&
         reader.readString(payload, "payload");
}

void NotificationResponse::encodeBody(Writer& writer) const {
  writer.putInt32(process_id);
  writer.putString(channel);
  writer.putString(payload);
}

bool FunctionCallResponse::decodeBody(Reader& reader) { return readNullable(reader, "the result", result); }

bool NegotiateProtocolVersion::decodeBody(Reader& reader) {
  int32_t count = 0;
  if (!reader.readInt32(newest_minor_version, "the newest minor version") ||
      !reader.readInt32(count, "the option count")) {
    return false;
  }
  if (count < 0) {
    return reader.fail(fmt::format("invalid option count {} in NegotiateProtocolVersion", count));
  }
  unrecognized_options.clear();
  for (int32_t i = 0; i < count; ++i) {
    if (reader.remaining() == 0) {
      return failDeclared(reader, static_cast<size_t>(count), "options", static_cast<size_t>(i));
    }
    std::string option;
    if (!reader.readString(option, "option name")) return false;
    unrecognized_options.push_back(std::move(option));
  }
  return true;
}

void NegotiateProtocolVersion::encodeBody(Writer& writer) const {
  writer.putInt32(newest_minor_version);
  writer.putInt32(static_cast<int32_t>(unrecognized_options.size()));
  for (const auto& option : unrecognized_options) writer.putString(option);
}

}  // namespace cutover::protocol
