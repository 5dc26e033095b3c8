#pragma once

// Typed messages sent by the server (PostgreSQL 15 docs, "Message Formats"). CopyData and
// CopyDone, shared by both directions, live in frontend_messages.h.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace cutover::protocol {

// One 'R' message for the whole AuthenticationXxx family; `kind` is the Int32 after the length.
struct Authentication {
  static constexpr char kType = 'R';
  static constexpr std::string_view kName = "Authentication";
  enum class Kind : int32_t {
    Ok = 0,
    KerberosV5 = 2,
    CleartextPassword = 3,
    Md5Password = 5,
    Gss = 7,
    GssContinue = 8,
    Sspi = 9,
    Sasl = 10,
    SaslContinue = 11,
    SaslFinal = 12,
  };
  Kind kind = Kind::Ok;
  std::array<uint8_t, 4> md5_salt{};          // Md5Password only
  std::vector<std::string> sasl_mechanisms;  // Sasl only
  std::string data;                          // GssContinue, SaslContinue, SaslFinal only

  static Authentication ok() { return {}; }
  static Authentication md5Password(std::array<uint8_t, 4> salt);
  static Authentication sasl(std::vector<std::string> mechanisms);
  static Authentication saslContinue(std::string data);
  static Authentication saslFinal(std::string data);

  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Authentication&) const = default;
};

struct BackendKeyData {
  static constexpr char kType = 'K';
  static constexpr std::string_view kName = "BackendKeyData";
  int32_t process_id = 0;
  int32_t secret_key = 0;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const BackendKeyData&) const = default;
};

struct ParameterStatus {
  static constexpr char kType = 'S';
  static constexpr std::string_view kName = "ParameterStatus";
  std::string name;
  std::string value;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const ParameterStatus&) const = default;
};

struct ReadyForQuery {
  static constexpr char kType = 'Z';
  static constexpr std::string_view kName = "ReadyForQuery";
  char status = 'I';  // 'I' idle, 'T' in a transaction block, 'E' in a failed transaction block
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const { writer.putChar(status); }
  bool operator==(const ReadyForQuery&) const = default;
};

// Field codes of ErrorResponse / NoticeResponse (PostgreSQL 15 docs, "Error and Notice Message
// Fields").
namespace field_code {
inline constexpr char kSeverity = 'S';
inline constexpr char kSeverityNonLocalized = 'V';
inline constexpr char kSqlState = 'C';
inline constexpr char kMessage = 'M';
inline constexpr char kDetail = 'D';
inline constexpr char kHint = 'H';
inline constexpr char kPosition = 'P';
}  // namespace field_code

// Body shared by ErrorResponse and NoticeResponse: (code byte, string) pairs ended by a NUL.
struct ErrorFields {
  std::vector<std::pair<char, std::string>> fields;  // in wire order

  // The first field with `code`, or an empty view.
  std::string_view field(char code) const;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const ErrorFields&) const = default;

 protected:
  void fill(std::string_view severity, std::string_view sqlstate, std::string_view message,
            std::string_view detail, std::string_view hint);
};

struct ErrorResponse : ErrorFields {
  static constexpr char kType = 'E';
  static constexpr std::string_view kName = "ErrorResponse";
  // Fills S and V with `severity` (e.g. "FATAL"), C, M, and D / H when not empty.
  static ErrorResponse make(std::string_view severity, std::string_view sqlstate,
                            std::string_view message, std::string_view detail = {},
                            std::string_view hint = {});
  bool operator==(const ErrorResponse&) const = default;
};

struct NoticeResponse : ErrorFields {
  static constexpr char kType = 'N';
  static constexpr std::string_view kName = "NoticeResponse";
  static NoticeResponse make(std::string_view severity, std::string_view sqlstate,
                             std::string_view message, std::string_view detail = {},
                             std::string_view hint = {});
  bool operator==(const NoticeResponse&) const = default;
};

struct RowDescription {
  static constexpr char kType = 'T';
  static constexpr std::string_view kName = "RowDescription";
  struct Field {
    std::string name;
    uint32_t table_oid = 0;      // 0 if not a table column
    int16_t column_attr = 0;     // attribute number; 0 if not a table column
    uint32_t type_oid = 0;
    int16_t type_size = 0;       // negative = variable width
    int32_t type_modifier = -1;
    int16_t format = 0;          // 0 text, 1 binary
    bool operator==(const Field&) const = default;
  };
  std::vector<Field> fields;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const RowDescription&) const = default;
};

struct DataRow {
  static constexpr char kType = 'D';
  static constexpr std::string_view kName = "DataRow";
  std::vector<std::optional<std::string>> columns;  // nullopt = NULL
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const DataRow&) const = default;
};

struct CommandComplete {
  static constexpr char kType = 'C';
  static constexpr std::string_view kName = "CommandComplete";
  std::string tag;  // e.g. "INSERT 0 1", "SELECT 5"
  bool decodeBody(Reader& reader) { return reader.readString(tag, {}); }
  void encodeBody(Writer& writer) const { writer.putString(tag); }
  bool operator==(const CommandComplete&) const = default;
};

struct EmptyQueryResponse {
  static constexpr char kType = 'I';
  static constexpr std::string_view kName = "EmptyQueryResponse";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const EmptyQueryResponse&) const = default;
};

struct ParseComplete {
  static constexpr char kType = '1';
  static constexpr std::string_view kName = "ParseComplete";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const ParseComplete&) const = default;
};

struct BindComplete {
  static constexpr char kType = '2';
  static constexpr std::string_view kName = "BindComplete";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const BindComplete&) const = default;
};

struct CloseComplete {
  static constexpr char kType = '3';
  static constexpr std::string_view kName = "CloseComplete";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const CloseComplete&) const = default;
};

struct NoData {
  static constexpr char kType = 'n';
  static constexpr std::string_view kName = "NoData";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const NoData&) const = default;
};

struct PortalSuspended {
  static constexpr char kType = 's';
  static constexpr std::string_view kName = "PortalSuspended";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const PortalSuspended&) const = default;
};

struct ParameterDescription {
  static constexpr char kType = 't';
  static constexpr std::string_view kName = "ParameterDescription";
  std::vector<uint32_t> param_types;  // OIDs
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const ParameterDescription&) const = default;
};

// Body shared by CopyInResponse, CopyOutResponse and CopyBothResponse.
struct CopyResponseFields {
  int8_t format = 0;                    // overall format: 0 text, 1 binary
  std::vector<int16_t> column_formats;  // per column; all 0 when format is 0
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const CopyResponseFields&) const = default;
};

struct CopyInResponse : CopyResponseFields {
  static constexpr char kType = 'G';
  static constexpr std::string_view kName = "CopyInResponse";
  bool operator==(const CopyInResponse&) const = default;
};

struct CopyOutResponse : CopyResponseFields {
  static constexpr char kType = 'H';
  static constexpr std::string_view kName = "CopyOutResponse";
  bool operator==(const CopyOutResponse&) const = default;
};

struct CopyBothResponse : CopyResponseFields {
  static constexpr char kType = 'W';
  static constexpr std::string_view kName = "CopyBothResponse";
  bool operator==(const CopyBothResponse&) const = default;
};

struct NotificationResponse {
  static constexpr char kType = 'A';
  static constexpr std::string_view kName = "NotificationResponse";
  int32_t process_id = 0;  // of the notifying backend
  std::string channel;
  std::string payload;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const NotificationResponse&) const = default;
};

struct FunctionCallResponse {
  static constexpr char kType = 'V';
  static constexpr std::string_view kName = "FunctionCallResponse";
  std::optional<std::string> result;  // nullopt = NULL
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const { writer.putNullable(result); }
  bool operator==(const FunctionCallResponse&) const = default;
};

struct NegotiateProtocolVersion {
  static constexpr char kType = 'v';
  static constexpr std::string_view kName = "NegotiateProtocolVersion";
  int32_t newest_minor_version = 0;
  std::vector<std::string> unrecognized_options;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const NegotiateProtocolVersion&) const = default;
};

}  // namespace cutover::protocol
