#include "protocol/messages.h"

#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <variant>

#include "protocol/framing.h"

namespace cutover::protocol {
namespace {

template <typename T, typename Variant>
struct IsAlternative;
template <typename T, typename... Ts>
struct IsAlternative<T, std::variant<Ts...>> : std::bool_constant<(std::is_same_v<T, Ts> || ...)> {};

Frame peekAny(std::string_view bytes, char type, Direction direction) {
  return type == 0 ? peekStartup(asBytes(bytes), kStartupPacketLimit)
                   : peekMessage(asBytes(bytes), direction, kDefaultMaxMessageLength);
}

// encode → peek → decode → equal, plus the same through the variant decoders, plus every split.
template <typename T>
void expectRoundTrip(const T& message, Direction direction) {
  SCOPED_TRACE(std::string(T::kName));
  std::string bytes = encode(message);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Frame partial = peekAny(std::string_view(bytes).substr(0, cut), T::kType, direction);
    ASSERT_EQ(partial.status, DecodeStatus::NeedMoreData) << "cut at " << cut;
  }
  Frame frame = peekAny(bytes, T::kType, direction);
  ASSERT_EQ(frame.status, DecodeStatus::Ready) << frame.reason;
  EXPECT_EQ(frame.type, T::kType);
  EXPECT_EQ(frame.totalSize(), bytes.size());
  std::span<const uint8_t> body = asBytes(bytes).subspan(frame.headerSize());
  DecodeResult<T> decoded = decode<T>(body);
  ASSERT_TRUE(decoded.isOk()) << decoded.reason();
  EXPECT_TRUE(decoded.value() == message);
  EXPECT_EQ(encode(decoded.value()), bytes);

  if constexpr (T::kType == 0) {
    auto packet = decodeStartup(body);
    ASSERT_TRUE(packet.isOk()) << packet.reason();
    ASSERT_TRUE(std::holds_alternative<T>(packet.value()));
    EXPECT_TRUE(std::get<T>(packet.value()) == message);
  } else if (direction == Direction::Frontend) {
    if constexpr (IsAlternative<T, FrontendMessage>::value) {
      auto variant = decodeFrontend(T::kType, body);
      ASSERT_TRUE(variant.isOk()) << variant.reason();
      ASSERT_TRUE(std::holds_alternative<T>(variant.value()));
      EXPECT_TRUE(std::get<T>(variant.value()) == message);
      EXPECT_EQ(messageName(variant.value()), T::kName);
    }
  } else {
    if constexpr (IsAlternative<T, BackendMessage>::value) {
      auto variant = decodeBackend(T::kType, body);
      ASSERT_TRUE(variant.isOk()) << variant.reason();
      ASSERT_TRUE(std::holds_alternative<T>(variant.value()));
      EXPECT_TRUE(std::get<T>(variant.value()) == message);
      std::string again;
      encode(variant.value(), again);
      EXPECT_EQ(again, bytes);
    }
  }
}

template <typename T>
std::string decodeError(std::string_view body) {
  DecodeResult<T> result = decode<T>(asBytes(body));
  return result.isOk() ? "<decoded>" : result.reason();
}

// Raw body bytes for malformed cases.
struct Body {
  std::string bytes;
  Writer writer{bytes};
};

TEST(MessagesTest, StartupFamilyRoundTrips) {
  StartupMessage startup;
  startup.parameters = {{"user", "app"}, {"database", "shop"}, {"application_name", ""}};
  expectRoundTrip(startup, Direction::Frontend);
  expectRoundTrip(StartupMessage{}, Direction::Frontend);
  expectRoundTrip(SslRequest{}, Direction::Frontend);
  expectRoundTrip(GssEncRequest{}, Direction::Frontend);
  expectRoundTrip(CancelRequest{1234, -99}, Direction::Frontend);
}

TEST(MessagesTest, StartupWireBytes) {
  EXPECT_EQ(encode(SslRequest{}), std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8));
  StartupMessage startup;
  startup.parameters = {{"user", "u"}};
  EXPECT_EQ(encode(startup), std::string("\x00\x00\x00\x10\x00\x03\x00\x00user\0u\0\0", 16));
  EXPECT_EQ(startup.get("user"), std::optional<std::string>("u"));
  EXPECT_EQ(startup.get("database"), std::nullopt);
}

TEST(MessagesTest, FrontendMessagesRoundTrip) {
  const auto fe = Direction::Frontend;
  expectRoundTrip(Query{"SELECT 1"}, fe);
  expectRoundTrip(Query{""}, fe);
  expectRoundTrip(Parse{"s1", "SELECT $1, $2", {23, 0}}, fe);
  expectRoundTrip(Parse{}, fe);
  expectRoundTrip(Bind{"p1", "s1", {1}, {std::string("\x00\x01", 2), std::nullopt, ""}, {0, 1}}, fe);
  expectRoundTrip(Bind{}, fe);
  expectRoundTrip(Describe{'P', "p1"}, fe);
  expectRoundTrip(Execute{"p1", 100}, fe);
  expectRoundTrip(Close{'S', "s1"}, fe);
  expectRoundTrip(Sync{}, fe);
  expectRoundTrip(Flush{}, fe);
  expectRoundTrip(Terminate{}, fe);
  expectRoundTrip(CopyData{std::string("1\t2\n\0", 5)}, fe);
  expectRoundTrip(CopyDone{}, fe);
  expectRoundTrip(CopyFail{"aborted by user"}, fe);
  expectRoundTrip(FunctionCall{1598, {0}, {std::string("42"), std::nullopt}, 1}, fe);
  expectRoundTrip(PasswordMessage{"md5abc"}, fe);
  expectRoundTrip(SaslInitialResponse{"SCRAM-SHA-256", std::string("n,,n=,r=abc")}, fe);
  expectRoundTrip(SaslInitialResponse{"SCRAM-SHA-256", std::nullopt}, fe);
  expectRoundTrip(SaslResponse{"c=biws,r=abc,p=xyz"}, fe);
  expectRoundTrip(GssResponse{std::string("\x01\x02\0", 3)}, fe);
}

TEST(MessagesTest, BackendMessagesRoundTrip) {
  const auto be = Direction::Backend;
  expectRoundTrip(Authentication::ok(), be);
  for (auto kind : {Authentication::Kind::KerberosV5, Authentication::Kind::CleartextPassword,
                    Authentication::Kind::Gss, Authentication::Kind::Sspi}) {
    Authentication auth;
    auth.kind = kind;
    expectRoundTrip(auth, be);
  }
  expectRoundTrip(Authentication::md5Password({0xde, 0xad, 0xbe, 0xef}), be);
  expectRoundTrip(Authentication::sasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}), be);
  expectRoundTrip(Authentication::saslContinue("r=abc,s=c2FsdA==,i=4096"), be);
  expectRoundTrip(Authentication::saslFinal("v=abc"), be);
  Authentication gss_continue;
  gss_continue.kind = Authentication::Kind::GssContinue;
  gss_continue.data = std::string("\0\1", 2);
  expectRoundTrip(gss_continue, be);
  expectRoundTrip(BackendKeyData{42, -7}, be);
  expectRoundTrip(ParameterStatus{"server_version", "15.4"}, be);
  expectRoundTrip(ReadyForQuery{'T'}, be);
  expectRoundTrip(ErrorResponse::make("ERROR", "42P01", "relation \"x\" does not exist", "d", "h"), be);
  expectRoundTrip(NoticeResponse::make("NOTICE", "00000", "hello"), be);
  RowDescription rows;
  rows.fields = {{"id", 16384, 1, 23, 4, -1, 0}, {"name", 0, 0, 25, -1, -1, 1}};
  expectRoundTrip(rows, be);
  expectRoundTrip(RowDescription{}, be);
  expectRoundTrip(DataRow{{std::string("1"), std::nullopt, std::string("")}}, be);
  expectRoundTrip(DataRow{}, be);
  expectRoundTrip(CommandComplete{"INSERT 0 1"}, be);
  expectRoundTrip(EmptyQueryResponse{}, be);
  expectRoundTrip(ParseComplete{}, be);
  expectRoundTrip(BindComplete{}, be);
  expectRoundTrip(CloseComplete{}, be);
  expectRoundTrip(NoData{}, be);
  expectRoundTrip(PortalSuspended{}, be);
  expectRoundTrip(ParameterDescription{{23, 25}}, be);
  CopyInResponse copy_in;
  copy_in.format = 1;
  copy_in.column_formats = {1, 1};
  expectRoundTrip(copy_in, be);
  CopyOutResponse copy_out;
  copy_out.column_formats = {0};
  expectRoundTrip(copy_out, be);
  expectRoundTrip(CopyBothResponse{}, be);
  expectRoundTrip(NotificationResponse{77, "orders", "42"}, be);
  expectRoundTrip(FunctionCallResponse{std::string("x")}, be);
  expectRoundTrip(FunctionCallResponse{std::nullopt}, be);
  expectRoundTrip(NegotiateProtocolVersion{0, {"_pq_.compression"}}, be);
  expectRoundTrip(CopyData{"row"}, be);
  expectRoundTrip(CopyDone{}, be);
}

TEST(MessagesTest, QueryTextOfViewsWhatDecodeWouldCopy) {
  auto body = [](std::string_view bytes) { return asBytes(bytes); };
  const std::string ok("SELECT 1\0", 9);
  ASSERT_TRUE(queryTextOf(body(ok)));
  EXPECT_EQ(*queryTextOf(body(ok)), "SELECT 1");
  EXPECT_EQ(static_cast<const void*>(queryTextOf(body(ok))->data()), static_cast<const void*>(ok.data()));
  EXPECT_EQ(*queryTextOf(body(std::string("\0", 1))), "");
  for (const std::string& bad : {std::string("SELECT 1"), std::string("SELECT\0 1\0", 10), std::string()}) {
    EXPECT_FALSE(queryTextOf(body(bad))) << bad;
    EXPECT_FALSE(decode<Query>(body(bad)).isOk()) << bad;
  }
  EXPECT_EQ(decode<Query>(body(ok)).value().sql, "SELECT 1");
}

TEST(MessagesTest, ErrorResponseHelper) {
  ErrorResponse error = ErrorResponse::make("FATAL", "28P01", "password authentication failed");
  EXPECT_EQ(error.field('S'), "FATAL");
  EXPECT_EQ(error.field('V'), "FATAL");
  EXPECT_EQ(error.field('C'), "28P01");
  EXPECT_EQ(error.field('M'), "password authentication failed");
  EXPECT_EQ(error.field('D'), "");
  EXPECT_EQ(error.fields.size(), 4u);
  EXPECT_EQ(encode(ReadyForQuery{'I'}), std::string("Z\0\0\0\5I", 6));
}

TEST(MessagesTest, PasswordFamilyNeedsContext) {
  std::string bytes = encode(PasswordMessage{"secret"});
  auto body = asBytes(bytes).subspan(5);
  auto as_password = decode<PasswordMessage>(body);
  ASSERT_TRUE(as_password.isOk());
  EXPECT_EQ(as_password.value().password, "secret");
  auto as_sasl = decode<SaslResponse>(body);
  ASSERT_TRUE(as_sasl.isOk());
  EXPECT_EQ(as_sasl.value().data, std::string("secret\0", 7));
  auto variant = decodeFrontend('p', body);
  ASSERT_TRUE(variant.isOk());
  EXPECT_TRUE(std::holds_alternative<SaslResponse>(variant.value()));
  EXPECT_EQ(decodeError<SaslInitialResponse>(std::string("secret\0", 7)),
            "SASLInitialResponse ends before the length of the initial response (needs 4 bytes, 0 left)");
}

TEST(MessagesTest, MessageStreamDecodes) {
  std::string stream;
  encode(Parse{"", "INSERT INTO t VALUES ($1)", {}}, stream);
  encode(Bind{"", "", {}, {std::string("7")}, {}}, stream);
  encode(Execute{"", 0}, stream);
  encode(Sync{}, stream);
  std::vector<std::string_view> names;
  std::span<const uint8_t> rest = asBytes(stream);
  while (!rest.empty()) {
    Frame frame = peekMessage(rest, Direction::Frontend, kDefaultMaxMessageLength);
    ASSERT_EQ(frame.status, DecodeStatus::Ready) << frame.reason;
    auto message = decodeFrontend(frame.type, rest.subspan(frame.headerSize(), frame.bodySize()));
    ASSERT_TRUE(message.isOk()) << message.reason();
    names.push_back(messageName(message.value()));
    rest = rest.subspan(frame.totalSize());
  }
  EXPECT_EQ(names, (std::vector<std::string_view>{"Parse", "Bind", "Execute", "Sync"}));
}

TEST(MessagesTest, MissingStringTerminator) {
  EXPECT_EQ(decodeError<Query>("SELECT 1"), "missing string terminator in Query");
  EXPECT_EQ(decodeError<Parse>(std::string("s1\0SELECT", 9)), "missing string terminator in Parse (query)");
  EXPECT_EQ(decodeError<ErrorResponse>(std::string("SERROR\0Moops", 12)),
            "missing string terminator in ErrorResponse (field 'M')");
  EXPECT_EQ(decodeError<StartupMessage>(std::string("\0\3\0\0user\0app", 12)),
            "missing string terminator in StartupMessage (value of parameter \"user\")");
}

TEST(MessagesTest, TruncatedBodies) {
  Body bind;
  bind.writer.putString("");
  bind.writer.putString("");
  bind.writer.putUint16(0);
  bind.writer.putUint16(3);
  bind.writer.putNullable(std::string("x"));
  EXPECT_EQ(decodeError<Bind>(bind.bytes), "Bind declares 3 parameters but the message ends after 1");

  Body execute;
  execute.writer.putString("");
  execute.writer.putUint16(0);
  EXPECT_EQ(decodeError<Execute>(execute.bytes), "Execute ends before max_rows (needs 4 bytes, 2 left)");

  Body parse;
  parse.writer.putString("");
  parse.writer.putString("SELECT $1, $2");
  parse.writer.putUint16(2);
  parse.writer.putUint32(23);
  EXPECT_EQ(decodeError<Parse>(parse.bytes), "Parse declares 2 parameter types but the message ends after 1");

  Body row;
  row.writer.putUint16(2);
  row.writer.putNullable(std::nullopt);
  EXPECT_EQ(decodeError<DataRow>(row.bytes), "DataRow declares 2 columns but the message ends after 1");

  Body long_value;
  long_value.writer.putUint16(1);
  long_value.writer.putInt32(100);
  long_value.writer.putBytes("abc");
  EXPECT_EQ(decodeError<DataRow>(long_value.bytes), "column 1 in DataRow declares 100 bytes but only 3 remain");

  Body negative;
  negative.writer.putString("");
  negative.writer.putString("");
  negative.writer.putUint16(0);
  negative.writer.putUint16(1);
  negative.writer.putInt32(-2);
  EXPECT_EQ(decodeError<Bind>(negative.bytes), "invalid length -2 for parameter 1 in Bind");

  Body fields;
  fields.writer.putUint16(1);
  fields.writer.putString("id");
  fields.writer.putUint32(0);
  fields.writer.putInt16(0);
  fields.writer.putUint8(0);
  EXPECT_EQ(decodeError<RowDescription>(fields.bytes),
            "RowDescription ends before a type OID (needs 4 bytes, 1 left)");
  EXPECT_EQ(decodeError<RowDescription>(std::string("\0\2", 2)),
            "RowDescription declares 2 fields but the message ends after 0");

  EXPECT_EQ(decodeError<BackendKeyData>(std::string("\0\0\0\1", 4)),
            "BackendKeyData ends before the secret key (needs 4 bytes, 0 left)");
  EXPECT_EQ(decodeError<ErrorResponse>(std::string("SERROR\0", 7)),
            "missing field list terminator in ErrorResponse");
  EXPECT_EQ(decodeError<Authentication>(std::string("\0\0\0\x0aSCRAM-SHA-256\0", 18)),
            "missing mechanism list terminator in Authentication (SASL)");
  EXPECT_EQ(decodeError<Authentication>(std::string("\0\0\0\5\1\2", 6)),
            "Authentication ends before the MD5 salt (needs 4 bytes, 2 left)");
  EXPECT_EQ(decodeError<StartupMessage>(std::string("\0\3\0\0user\0app\0", 13)),
            "missing parameter list terminator in StartupMessage");
  EXPECT_EQ(decodeError<CancelRequest>(std::string("\x04\xd2\x16\x2e\0\0\0\1", 8)),
            "CancelRequest ends before the secret key (needs 4 bytes, 0 left)");
  EXPECT_EQ(decodeError<Query>(""), "missing string terminator in Query");
}

TEST(MessagesTest, TrailingBytes) {
  EXPECT_EQ(decodeError<ReadyForQuery>("IXX"), "trailing 2 bytes after ReadyForQuery");
  EXPECT_EQ(decodeError<Sync>("x"), "trailing 1 byte after Sync");
  EXPECT_EQ(decodeError<Query>(std::string("SELECT 1\0\0", 10)), "trailing 1 byte after Query");
  EXPECT_EQ(decodeError<SslRequest>(std::string("\x04\xd2\x16\x2f\0", 5)), "trailing 1 byte after SSLRequest");
}

TEST(MessagesTest, InvalidValues) {
  EXPECT_EQ(decodeError<Describe>(std::string("Xname\0", 6)),
            "invalid target 'X' in Describe (expected 'S' or 'P')");
  EXPECT_EQ(decodeError<Close>(std::string("\0name\0", 6)),
            "invalid target 0x00 in Close (expected 'S' or 'P')");
  EXPECT_EQ(decodeError<ReadyForQuery>("X"),
            "invalid transaction status 'X' in ReadyForQuery (expected 'I', 'T' or 'E')");
  EXPECT_EQ(decodeError<Authentication>(std::string("\0\0\0\4", 4)),
            "unknown authentication request code 4 in Authentication");
  EXPECT_EQ(decodeError<StartupMessage>(std::string("\0\2\0\0\0", 5)),
            "unsupported protocol version 2.0 in StartupMessage");
  EXPECT_EQ(decodeError<SslRequest>(std::string("\x04\xd2\x16\x30", 4)),
            "unexpected request code 80877104 in SSLRequest (expected 80877103)");
  EXPECT_EQ(decodeError<NegotiateProtocolVersion>(std::string("\0\0\0\0\xff\xff\xff\xff", 8)),
            "invalid option count -1 in NegotiateProtocolVersion");
  EXPECT_EQ(decodeError<NegotiateProtocolVersion>(std::string("\0\0\0\0\0\0\0\3a\0", 10)),
            "NegotiateProtocolVersion declares 3 options but the message ends after 1");
}

TEST(MessagesTest, VariantDecodersRejectUnknownTypes) {
  EXPECT_EQ(decodeFrontend('Z', {}).reason(), "unknown frontend message type 'Z'");
  EXPECT_EQ(decodeBackend('Q', {}).reason(), "unknown backend message type 'Q'");
  EXPECT_EQ(decodeStartup(asBytes(std::string("\0\3", 2))).reason(),
            "startup packet ends before its request code (needs 4 bytes, 2 left)");
  // Shared letters decode per direction.
  std::string describe = encode(Describe{'S', "s"});
  auto as_frontend = decodeFrontend('D', asBytes(describe).subspan(5));
  ASSERT_TRUE(as_frontend.isOk());
  EXPECT_TRUE(std::holds_alternative<Describe>(as_frontend.value()));
  auto as_backend = decodeBackend('D', asBytes(describe).subspan(5));
  ASSERT_FALSE(as_backend.isOk());
  EXPECT_EQ(as_backend.reason(), "DataRow declares 21363 columns but the message ends after 0");
}

}  // namespace
}  // namespace cutover::protocol
