#include "protocol/scram.h"

#include <gtest/gtest.h>

#include <string>

namespace cutover::protocol {
namespace {

// RFC 7677 section 3: user "user", password "pencil".
constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

TEST(ScramTest, Rfc7677Vector) {
  ScramClient client("pencil", std::string(kClientNonce), "user");
  EXPECT_EQ(client.clientFirstMessage(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  Result<std::string> final_message = client.handleServerFirst(kServerFirst);
  ASSERT_TRUE(final_message.isOk()) << final_message.status().message();
  EXPECT_EQ(*final_message, kClientFinal);
  Status verified = client.verifyServerFinal(kServerFinal);
  EXPECT_TRUE(verified.isOk()) << verified.message();
}

TEST(ScramTest, PostgresStyleEmptyUsername) {
  // Same exchange with "n=" as PostgreSQL clients send it. Expected values computed independently
  // with Python (hashlib.pbkdf2_hmac / hmac / base64) following RFC 5802 section 3.
  ScramClient client("pencil", std::string(kClientNonce));
  EXPECT_EQ(client.clientFirstMessage(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  Result<std::string> final_message = client.handleServerFirst(kServerFirst);
  ASSERT_TRUE(final_message.isOk()) << final_message.status().message();
  EXPECT_EQ(*final_message,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
            "p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=");
  EXPECT_TRUE(client.verifyServerFinal("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=").isOk());
}

TEST(ScramTest, TamperedServerSignatureFails) {
  ScramClient client("pencil", std::string(kClientNonce), "user");
  ASSERT_TRUE(client.handleServerFirst(kServerFirst).isOk());
  Status verified = client.verifyServerFinal("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  ASSERT_FALSE(verified.isOk());
  EXPECT_EQ(verified.message(),
            "SCRAM: server signature does not match (the server does not know the password)");
}

TEST(ScramTest, ServerErrorIsReported) {
  ScramClient client("pencil", std::string(kClientNonce), "user");
  ASSERT_TRUE(client.handleServerFirst(kServerFirst).isOk());
  Status verified = client.verifyServerFinal("e=invalid-proof");
  ASSERT_FALSE(verified.isOk());
  EXPECT_EQ(verified.message(), "SCRAM: server rejected authentication: invalid-proof");
}

TEST(ScramTest, ServerFinalBeforeServerFirstFails) {
  ScramClient client("pencil", std::string(kClientNonce));
  EXPECT_FALSE(client.verifyServerFinal(kServerFinal).isOk());
}

TEST(ScramTest, BadServerFirstMessages) {
  struct Case {
    std::string server_first;
    std::string error;
  };
  const Case cases[] = {
      {"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
       "SCRAM: server nonce does not extend the client nonce"},
      {"r=somebodyElse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
       "SCRAM: server nonce does not extend the client nonce"},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "SCRAM: invalid iteration count 0"},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-5",
       "SCRAM: invalid iteration count \"-5\""},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
       "SCRAM: invalid iteration count \"99999999999\""},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001",
       "SCRAM: iteration count 1000001 exceeds cutover's limit of 1000000"},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=not*base64,i=4096",
       "SCRAM: salt in server-first-message is not valid base64"},
      {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=",
       "SCRAM: malformed server-first-message \"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=\" "
       "(expected r=,s=,i=)"},
      {"m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
       "SCRAM: server-first-message requires an unsupported extension (m=)"},
  };
  for (const auto& c : cases) {
    ScramClient client("pencil", std::string(kClientNonce));
    Result<std::string> result = client.handleServerFirst(c.server_first);
    ASSERT_FALSE(result.isOk()) << c.server_first;
    EXPECT_EQ(result.status().message(), c.error) << c.server_first;
  }
}

TEST(ScramTest, RandomNonceIsBase64Of18Bytes) {
  ScramClient first("pw");
  ScramClient second("pw");
  std::string message = first.clientFirstMessage();
  ASSERT_TRUE(message.starts_with("n,,n=,r="));
  std::string nonce = message.substr(8);
  EXPECT_EQ(nonce.size(), 24u);
  std::optional<std::string> raw = base64Decode(nonce);
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(raw->size(), 18u);
  EXPECT_NE(message, second.clientFirstMessage());
}

TEST(ScramTest, Base64) {
  EXPECT_EQ(base64Encode("n,,"), "biws");
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("ab"), "YWI=");
  EXPECT_EQ(base64Decode("YWI="), std::optional<std::string>("ab"));
  EXPECT_EQ(base64Decode("YQ=="), std::optional<std::string>("a"));
  EXPECT_EQ(base64Decode(""), std::optional<std::string>(""));
  EXPECT_FALSE(base64Decode("YWI").has_value());
  EXPECT_FALSE(base64Decode("Y*I=").has_value());
  EXPECT_FALSE(base64Decode(" YWI").has_value());
}

TEST(ScramTest, ParseVerifier) {
  // Verifier for "pencil" with the RFC 7677 salt; keys computed independently with Python.
  Result<ScramVerifier> verifier = parseScramVerifier(
      "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
      "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
  ASSERT_TRUE(verifier.isOk()) << verifier.status().message();
  EXPECT_EQ(verifier->iterations, 4096);
  EXPECT_EQ(base64Encode(verifier->salt), "W22ZaJ0SNY7soEsUEjb6gQ==");
  // The keys agree with our own derivation from the password.
  Sha256Digest salted = scramSaltedPassword("pencil", verifier->salt, 4096);
  std::string salted_chars(reinterpret_cast<const char*>(salted.data()), salted.size());
  Sha256Digest client_key = hmacSha256(salted_chars, "Client Key");
  EXPECT_EQ(sha256(std::string(reinterpret_cast<const char*>(client_key.data()), 32)), verifier->stored_key);
  EXPECT_EQ(hmacSha256(salted_chars, "Server Key"), verifier->server_key);

  EXPECT_FALSE(parseScramVerifier("md5abc").isOk());
  EXPECT_FALSE(parseScramVerifier("SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$a:b").isOk());
  Result<ScramVerifier> short_key = parseScramVerifier("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$YWI=:YWI=");
  ASSERT_FALSE(short_key.isOk());
  EXPECT_EQ(short_key.status().message(),
            "invalid SCRAM verifier: keys must be base64 SHA-256 digests");
}

}  // namespace
}  // namespace cutover::protocol
