#pragma once

// Typed messages sent by the client (PostgreSQL 15 docs, "Message Formats"), plus the COPY
// messages both directions share (CopyData, CopyDone). Each struct decodes its body (the bytes
// after the length field) and encodes its body; messages.h adds the framing around them.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace cutover::protocol {

// Format codes (Bind, FunctionCall, COPY responses).
inline constexpr int16_t kFormatText = 0;
inline constexpr int16_t kFormatBinary = 1;

struct Query {
  static constexpr char kType = 'Q';
  static constexpr std::string_view kName = "Query";
  std::string sql;
  bool decodeBody(Reader& reader) { return reader.readString(sql, {}); }
  void encodeBody(Writer& writer) const { writer.putString(sql); }
  bool operator==(const Query&) const = default;
};

// The text of a Query body, viewed in place (decode<Query> copies it): what precedes the one
// NUL, which must be the body's last byte. Empty when decode<Query> would fail.
std::optional<std::string_view> queryTextOf(std::span<const uint8_t> body);

struct Parse {
  static constexpr char kType = 'P';
  static constexpr std::string_view kName = "Parse";
  std::string name;                  // empty = the unnamed statement
  std::string query;
  std::vector<uint32_t> param_types;  // OIDs; 0 = let the server infer
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Parse&) const = default;
};

struct Bind {
  static constexpr char kType = 'B';
  static constexpr std::string_view kName = "Bind";
  std::string portal;
  std::string statement;
  std::vector<int16_t> param_formats;               // none = all text, one = applies to all
  std::vector<std::optional<std::string>> params;   // nullopt = NULL
  std::vector<int16_t> result_formats;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Bind&) const = default;
};

struct Describe {
  static constexpr char kType = 'D';
  static constexpr std::string_view kName = "Describe";
  char target = 'S';  // 'S' prepared statement, 'P' portal
  std::string name;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Describe&) const = default;
};

struct Execute {
  static constexpr char kType = 'E';
  static constexpr std::string_view kName = "Execute";
  std::string portal;
  int32_t max_rows = 0;  // 0 = no limit
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Execute&) const = default;
};

struct Close {
  static constexpr char kType = 'C';
  static constexpr std::string_view kName = "Close";
  char target = 'S';  // 'S' prepared statement, 'P' portal
  std::string name;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const Close&) const = default;
};

struct Sync {
  static constexpr char kType = 'S';
  static constexpr std::string_view kName = "Sync";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const Sync&) const = default;
};

struct Flush {
  static constexpr char kType = 'H';
  static constexpr std::string_view kName = "Flush";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const Flush&) const = default;
};

struct Terminate {
  static constexpr char kType = 'X';
  static constexpr std::string_view kName = "Terminate";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const Terminate&) const = default;
};

// Both directions.
struct CopyData {
  static constexpr char kType = 'd';
  static constexpr std::string_view kName = "CopyData";
  std::string data;
  bool decodeBody(Reader& reader) {
    reader.readRest(data);
    return true;
  }
  void encodeBody(Writer& writer) const { writer.putBytes(data); }
  bool operator==(const CopyData&) const = default;
};

// Both directions.
struct CopyDone {
  static constexpr char kType = 'c';
  static constexpr std::string_view kName = "CopyDone";
  bool decodeBody(Reader&) { return true; }
  void encodeBody(Writer&) const {}
  bool operator==(const CopyDone&) const = default;
};

struct CopyFail {
  static constexpr char kType = 'f';
  static constexpr std::string_view kName = "CopyFail";
  std::string message;
  bool decodeBody(Reader& reader) { return reader.readString(message, {}); }
  void encodeBody(Writer& writer) const { writer.putString(message); }
  bool operator==(const CopyFail&) const = default;
};

struct FunctionCall {
  static constexpr char kType = 'F';
  static constexpr std::string_view kName = "FunctionCall";
  uint32_t function_oid = 0;
  std::vector<int16_t> arg_formats;
  std::vector<std::optional<std::string>> args;  // nullopt = NULL
  int16_t result_format = kFormatText;
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const FunctionCall&) const = default;
};

// The 'p' family: PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share one
// type byte; only the authentication exchange in progress tells which one arrived, so the
// caller picks decode<PasswordMessage>, decode<SaslInitialResponse>, decode<SaslResponse> or
// decode<GssResponse>.

// Cleartext password, or the "md5…" response to AuthenticationMD5Password.
struct PasswordMessage {
  static constexpr char kType = 'p';
  static constexpr std::string_view kName = "PasswordMessage";
  std::string password;
  bool decodeBody(Reader& reader) { return reader.readString(password, {}); }
  void encodeBody(Writer& writer) const { writer.putString(password); }
  bool operator==(const PasswordMessage&) const = default;
};

struct SaslInitialResponse {
  static constexpr char kType = 'p';
  static constexpr std::string_view kName = "SASLInitialResponse";
  std::string mechanism;             // e.g. "SCRAM-SHA-256"
  std::optional<std::string> data;   // client-first-message; nullopt = length -1
  bool decodeBody(Reader& reader);
  void encodeBody(Writer& writer) const;
  bool operator==(const SaslInitialResponse&) const = default;
};

struct SaslResponse {
  static constexpr char kType = 'p';
  static constexpr std::string_view kName = "SASLResponse";
  std::string data;  // client-final-message
  bool decodeBody(Reader& reader) {
    reader.readRest(data);
    return true;
  }
  void encodeBody(Writer& writer) const { writer.putBytes(data); }
  bool operator==(const SaslResponse&) const = default;
};

struct GssResponse {
  static constexpr char kType = 'p';
  static constexpr std::string_view kName = "GSSResponse";
  std::string data;
  bool decodeBody(Reader& reader) {
    reader.readRest(data);
    return true;
  }
  void encodeBody(Writer& writer) const { writer.putBytes(data); }
  bool operator==(const GssResponse&) const = default;
};

}  // namespace cutover::protocol
