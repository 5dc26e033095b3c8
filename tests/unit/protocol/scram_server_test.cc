#include "protocol/scram_server.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "protocol/md5.h"
#include "protocol/scram.h"

namespace cutover::protocol {
namespace {

// Written by a real PostgreSQL 15 for `CREATE ROLE alice PASSWORD 'pencil'` (initdb + postgres
// --single, then SELECT rolpassword FROM pg_authid).
constexpr std::string_view kPostgresVerifier =
    "SCRAM-SHA-256$4096:g/OEYcqE/kCt3+VFdZtXew==$zpG8yoCV2O3pwYvXp/aS9ejsaVKNesxiPFolncrPwLw=:"
    "QDHR8tqYu982nIcoxzsb/u5IUkCxKD19CVUQ6Q22pGI=";
// The same server, `SET password_encryption = 'md5'; CREATE ROLE bob PASSWORD 'pencil'`.
constexpr std::string_view kPostgresMd5 = "md5e4f70fb0b8f2745aa7a69557c80cbd0c";

constexpr std::string_view kClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kServerNonce = "3rfcNHYJY1ZVvWVs7j";

// Stand-in for a tls-server-end-point hash: SHA-256("cutover test certificate").
std::string testCbindData() {
  Sha256Digest digest = sha256("cutover test certificate");
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

ScramVerifier postgresVerifier() {
  Result<ScramVerifier> verifier = parseScramVerifier(kPostgresVerifier);
  EXPECT_TRUE(verifier.isOk()) << verifier.status().message();
  return *verifier;
}

// Runs a whole exchange with ScramClient; returns the first error (of either side) or ok.
Status runExchange(ScramServer& server, ScramClient& client, std::string_view mechanism) {
  Result<std::string> server_first = server.handleClientFirst(mechanism, client.clientFirstMessage());
  if (!server_first.isOk()) return server_first.status();
  Result<std::string> client_final = client.handleServerFirst(*server_first);
  if (!client_final.isOk()) return client_final.status();
  Result<std::string> server_final = server.handleClientFinal(*client_final);
  if (!server_final.isOk()) return server_final.status();
  return client.verifyServerFinal(*server_final);
}

// The error of a client-first-message the server must refuse.
std::string clientFirstError(ScramServer server, std::string_view mechanism, std::string_view client_first) {
  Result<std::string> result = server.handleClientFirst(mechanism, client_first);
  EXPECT_FALSE(result.isOk()) << client_first;
  EXPECT_FALSE(server.succeeded());
  return result.isOk() ? std::string() : result.status().message();
}

// The error of a client-final-message the server must refuse after an accepted client-first.
std::string clientFinalError(std::string_view client_final, std::string cbind = "",
                             std::string_view mechanism = kScramSha256,
                             std::string_view gs2 = "n,,") {
  ScramServer server(postgresVerifier(), std::move(cbind), std::string(kServerNonce));
  std::string client_first = fmt::format("{}n=,r={}", gs2, kClientNonce);
  Result<std::string> first = server.handleClientFirst(mechanism, client_first);
  EXPECT_TRUE(first.isOk()) << first.status().message();
  Result<std::string> result = server.handleClientFinal(client_final);
  EXPECT_FALSE(result.isOk()) << client_final;
  EXPECT_FALSE(server.succeeded());
  return result.isOk() ? std::string() : result.status().message();
}

// Fixed vectors computed independently with Python (hashlib.pbkdf2_hmac, hmac, base64) from the
// PostgreSQL verifier's salt and "pencil", following RFC 5802 section 3:
//   salted = pbkdf2_hmac("sha256", b"pencil", salt, 4096); ck = HMAC(salted, "Client Key")
//   am = client-first-bare "," server-first "," client-final-without-proof
//   p = ck XOR HMAC(sha256(ck), am); v = HMAC(HMAC(salted, "Server Key"), am)
TEST(ScramServerTest, FixedVectorWithoutChannelBinding) {
  ScramServer server(postgresVerifier(), "", std::string(kServerNonce));
  EXPECT_EQ(server.mechanisms(), std::vector<std::string>{"SCRAM-SHA-256"});
  Result<std::string> first = server.handleClientFirst("SCRAM-SHA-256", "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  ASSERT_TRUE(first.isOk()) << first.status().message();
  EXPECT_EQ(*first, "r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,s=g/OEYcqE/kCt3+VFdZtXew==,i=4096");
  EXPECT_FALSE(server.succeeded());
  Result<std::string> final_message = server.handleClientFinal(
      "c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08=");
  ASSERT_TRUE(final_message.isOk()) << final_message.status().message();
  EXPECT_EQ(*final_message, "v=5cuuJtLpz1QeU1og6KN+y9YJ5EgmfS7t9DX89+wdGVU=");
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, FixedVectorWithChannelBinding) {
  ScramServer server(postgresVerifier(), testCbindData(), std::string(kServerNonce));
  EXPECT_EQ(server.mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
  Result<std::string> first =
      server.handleClientFirst("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=rOprNGfwEbeRWgbNEkqO");
  ASSERT_TRUE(first.isOk()) << first.status().message();
  Result<std::string> final_message = server.handleClientFinal(
      "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwscoIRHhM4rqsE6R2tZ5k+b9b5hIwNdQR7p7HUET0gwXE=,"
      "r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=R8TJSvjeRjDLOqa9zv7/CRYQu3sRH4coLlVUSv+jJoI=");
  ASSERT_TRUE(final_message.isOk()) << final_message.status().message();
  EXPECT_EQ(*final_message, "v=kyoYkMOMb15MyA3GrlAnk/sV7zE68aBSCIT0nsrF5iQ=");
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, ClientExchangeAgainstPostgresVerifier) {
  ScramServer server(postgresVerifier(), "");
  ScramClient client("pencil");
  Status status = runExchange(server, client, kScramSha256);
  EXPECT_TRUE(status.isOk()) << status.message();
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, ClientExchangeWithChannelBinding) {
  ScramServer server(postgresVerifier(), testCbindData());
  ScramClient client("pencil");
  client.useChannelBinding(testCbindData());
  EXPECT_TRUE(client.clientFirstMessage().starts_with("p=tls-server-end-point,,n=,r="));
  Status status = runExchange(server, client, kScramSha256Plus);
  EXPECT_TRUE(status.isOk()) << status.message();
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, ClientWithoutBindingOverTlsSucceeds) {
  // "n,,": the client does not want binding (libpq channel_binding=disable) — allowed.
  ScramServer server(postgresVerifier(), testCbindData());
  ScramClient client("pencil");
  Status status = runExchange(server, client, kScramSha256);
  EXPECT_TRUE(status.isOk()) << status.message();
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, ClientWithOtherCertificateHashFails) {
  ScramServer server(postgresVerifier(), testCbindData());
  ScramClient client("pencil");
  client.useChannelBinding(std::string(32, 'x'));  // a man in the middle's certificate
  Status status = runExchange(server, client, kScramSha256Plus);
  EXPECT_EQ(status.message(), "SCRAM: channel-binding data in client-final-message does not match");
  EXPECT_FALSE(server.succeeded());
}

TEST(ScramServerTest, VerifierMadeHereWorksWithClient) {
  Result<ScramVerifier> verifier = makeScramVerifier("correct horse", "0123456789abcdef", 4096);
  ASSERT_TRUE(verifier.isOk()) << verifier.status().message();
  ScramServer server(*verifier, "");
  ScramClient client("correct horse");
  EXPECT_TRUE(runExchange(server, client, kScramSha256).isOk());
  EXPECT_TRUE(server.succeeded());
}

TEST(ScramServerTest, MakeVerifierMatchesPostgres) {
  ScramVerifier postgres = postgresVerifier();
  Result<ScramVerifier> made = makeScramVerifier("pencil", postgres.salt, 4096);
  ASSERT_TRUE(made.isOk());
  EXPECT_EQ(formatScramVerifier(*made), kPostgresVerifier);
}

TEST(ScramServerTest, MakeVerifierRejectsBadParameters) {
  EXPECT_EQ(makeScramVerifier("pw", "", 4096).status().message(), "SCRAM verifier: the salt must not be empty");
  EXPECT_EQ(makeScramVerifier("pw", "salt", 0).status().message(),
            "SCRAM verifier: iteration count 0 is outside 1..1000000");
  EXPECT_EQ(makeScramVerifier("pw", "salt", 1000001).status().message(),
            "SCRAM verifier: iteration count 1000001 is outside 1..1000000");
}

TEST(ScramServerTest, VerifierRoundTrip) {
  EXPECT_EQ(formatScramVerifier(postgresVerifier()), kPostgresVerifier);
  Result<ScramVerifier> made = makeScramVerifier("pw", std::string("\x00\xff\x10", 3), 7);
  ASSERT_TRUE(made.isOk());
  Result<ScramVerifier> reparsed = parseScramVerifier(formatScramVerifier(*made));
  ASSERT_TRUE(reparsed.isOk()) << reparsed.status().message();
  EXPECT_EQ(reparsed->iterations, 7);
  EXPECT_EQ(reparsed->salt, made->salt);
  EXPECT_EQ(reparsed->stored_key, made->stored_key);
  EXPECT_EQ(reparsed->server_key, made->server_key);
}

TEST(ScramServerTest, WrongPasswordFails) {
  ScramServer server(postgresVerifier(), "");
  ScramClient client("pencil2");
  Status status = runExchange(server, client, kScramSha256);
  EXPECT_EQ(status.message(), "SCRAM: client proof does not match (wrong password or unknown user)");
  EXPECT_FALSE(server.succeeded());
}

TEST(ScramServerTest, TamperedProofFails) {
  // The valid proof of FixedVectorWithoutChannelBinding with its first character changed.
  EXPECT_EQ(clientFinalError(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=yBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08="),
            "SCRAM: client proof does not match (wrong password or unknown user)");
}

TEST(ScramServerTest, TamperedNonceFails) {
  EXPECT_EQ(clientFinalError(
                "c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7k,p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08="),
            "SCRAM: nonce in client-final-message does not match");
  // Only the client's part echoed back.
  EXPECT_EQ(clientFinalError("c=biws,r=rOprNGfwEbeRWgbNEkqO,p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08="),
            "SCRAM: nonce in client-final-message does not match");
}

TEST(ScramServerTest, BadClientFinalMessages) {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j";
  const std::string proof = "p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08=";
  EXPECT_EQ(clientFinalError(""), "SCRAM: malformed client-final-message");
  EXPECT_EQ(clientFinalError("c=biws," + nonce), "SCRAM: malformed client-final-message");
  EXPECT_EQ(clientFinalError(nonce + ",c=biws," + proof),
            "SCRAM: malformed client-final-message (expected c=,r=,…,p=)");
  EXPECT_EQ(clientFinalError("c=biws," + nonce + "," + proof + ",x=1"),
            "SCRAM: malformed client-final-message (expected c=,r=,…,p=)");
  EXPECT_EQ(clientFinalError("c=biws," + nonce + ",1x," + proof),
            "SCRAM: malformed client-final-message (bad extension attribute)");
  EXPECT_EQ(clientFinalError("c=biws," + nonce + ",p=YWI="), "SCRAM: client proof is not a base64 SHA-256 digest");
  EXPECT_EQ(clientFinalError("c=biws," + nonce + ",p=***"), "SCRAM: client proof is not a base64 SHA-256 digest");
  // "c=" must repeat the gs2 header that was sent: "eSws" is "y,,", not our "n,,".
  EXPECT_EQ(clientFinalError("c=eSws," + nonce + "," + proof),
            "SCRAM: channel-binding data in client-final-message does not match");
  // With binding, "c=" without the certificate hash is wrong.
  EXPECT_EQ(clientFinalError("c=" + base64Encode("p=tls-server-end-point,,") + "," + nonce + "," + proof,
                             testCbindData(), kScramSha256Plus, "p=tls-server-end-point,,"),
            "SCRAM: channel-binding data in client-final-message does not match");
}

TEST(ScramServerTest, ExtensionAttributeInClientFinalIsIgnored) {
  // RFC 5802 section 7 allows extensions before the proof; they are part of the AuthMessage, so
  // the fixed proof no longer verifies, but the message parses as far as the proof.
  EXPECT_EQ(clientFinalError("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,x=ext,"
                             "p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08="),
            "SCRAM: client proof does not match (wrong password or unknown user)");
}

TEST(ScramServerTest, DowngradeToYIsRefusedWhenPlusWasOffered) {
  EXPECT_EQ(clientFirstError(ScramServer(postgresVerifier(), testCbindData()), kScramSha256, "y,,n=,r=abc"),
            "SCRAM: channel-binding negotiation error (client supports binding but thinks the server does not, "
            "and the server offered SCRAM-SHA-256-PLUS)");
}

TEST(ScramServerTest, YWithoutTlsIsAccepted) {
  // Plaintext: we offered no PLUS, so "y,," is honest and the exchange proceeds with c=eSws.
  ScramServer server(postgresVerifier(), "", std::string(kServerNonce));
  ASSERT_TRUE(server.handleClientFirst(kScramSha256, "y,,n=,r=rOprNGfwEbeRWgbNEkqO").isOk());
  Result<std::string> result = server.handleClientFinal(
      "c=eSws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08=");
  // The fixed proof was made for "c=biws", so only the proof fails.
  EXPECT_EQ(result.status().message(), "SCRAM: client proof does not match (wrong password or unknown user)");
}

TEST(ScramServerTest, ChannelBindingWithoutTlsFails) {
  ScramServer plain(postgresVerifier(), "");
  EXPECT_EQ(clientFirstError(plain, kScramSha256Plus, "p=tls-server-end-point,,n=,r=abc"),
            "SCRAM: client selected SCRAM-SHA-256-PLUS, which is offered only over TLS");
  EXPECT_EQ(clientFirstError(plain, kScramSha256, "p=tls-server-end-point,,n=,r=abc"),
            "SCRAM: client selected SCRAM-SHA-256 but sent channel-binding data");
}

TEST(ScramServerTest, BadGs2Headers) {
  ScramServer tls(postgresVerifier(), testCbindData());
  EXPECT_EQ(clientFirstError(tls, kScramSha256Plus, "p=tls-unique,,n=,r=abc"),
            "SCRAM: unsupported channel-binding type");
  EXPECT_EQ(clientFirstError(tls, kScramSha256Plus, "p=,,n=,r=abc"), "SCRAM: unsupported channel-binding type");
  EXPECT_EQ(clientFirstError(tls, kScramSha256Plus, "n,,n=,r=abc"),
            "SCRAM: client selected SCRAM-SHA-256-PLUS but sent no channel-binding data");
  EXPECT_EQ(clientFirstError(tls, kScramSha256Plus, "y,,n=,r=abc"),
            "SCRAM: client selected SCRAM-SHA-256-PLUS but sent no channel-binding data");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, "n,a=bob,n=,r=abc"),
            "SCRAM: authorization identity (a=) is not supported");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, "x,,n=,r=abc"),
            "SCRAM: malformed client-first-message (bad channel-binding flag)");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, ""), "SCRAM: malformed client-first-message (no gs2 header)");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, "n"), "SCRAM: malformed client-first-message (no gs2 header)");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, "n,"), "SCRAM: malformed client-first-message (bad gs2 header)");
  EXPECT_EQ(clientFirstError(tls, kScramSha256, "n,b=x,n=,r=abc"),
            "SCRAM: malformed client-first-message (bad gs2 header)");
}

TEST(ScramServerTest, BadClientFirstBare) {
  ScramServer server(postgresVerifier(), "");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,m=ext,n=,r=abc"),
            "SCRAM: client requires an unsupported extension (m=)");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,r=abc"), "SCRAM: malformed client-first-message (expected n=)");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,n=,s=abc"),
            "SCRAM: malformed client-first-message (expected r=)");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,n=,r="), "SCRAM: client nonce is empty or not printable");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,n=,r=ab c"), "SCRAM: client nonce is empty or not printable");
  EXPECT_EQ(clientFirstError(server, kScramSha256, std::string("n,,n=,r=ab\0c", 12)),
            "SCRAM: client nonce is empty or not printable");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,n=,r=ab\x7f"), "SCRAM: client nonce is empty or not printable");
  EXPECT_EQ(clientFirstError(server, kScramSha256, "n,,n=,r=abc,=x"),
            "SCRAM: malformed client-first-message (bad extension attribute)");
}

TEST(ScramServerTest, UsernameAndExtensionsInClientFirstAreIgnored) {
  ScramServer server(postgresVerifier(), "", std::string(kServerNonce));
  Result<std::string> first = server.handleClientFirst(kScramSha256, "n,,n=mallory,r=rOprNGfwEbeRWgbNEkqO,x=1");
  ASSERT_TRUE(first.isOk()) << first.status().message();
  EXPECT_EQ(*first, "r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,s=g/OEYcqE/kCt3+VFdZtXew==,i=4096");
}

TEST(ScramServerTest, UnknownMechanismFails) {
  ScramServer server(postgresVerifier(), testCbindData());
  EXPECT_EQ(clientFirstError(server, "SCRAM-SHA-1", "n,,n=,r=abc"),
            "SCRAM: client selected an unsupported SASL mechanism");
  EXPECT_EQ(clientFirstError(server, "", "n,,n=,r=abc"), "SCRAM: client selected an unsupported SASL mechanism");
  EXPECT_EQ(clientFirstError(server, "scram-sha-256", "n,,n=,r=abc"),
            "SCRAM: client selected an unsupported SASL mechanism");
}

TEST(ScramServerTest, MessagesOutOfOrderFail) {
  ScramServer server(postgresVerifier(), "");
  EXPECT_EQ(server.handleClientFinal("c=biws,r=x,p=y").status().message(),
            "SCRAM: unexpected client-final-message");
  EXPECT_EQ(server.handleClientFirst(kScramSha256, "n,,n=,r=abc").status().message(),
            "SCRAM: unexpected client-first-message");

  ScramServer twice(postgresVerifier(), "");
  ASSERT_TRUE(twice.handleClientFirst(kScramSha256, "n,,n=,r=abc").isOk());
  EXPECT_EQ(twice.handleClientFirst(kScramSha256, "n,,n=,r=abc").status().message(),
            "SCRAM: unexpected client-first-message");

  // After a success nothing more is accepted, and after a failure nothing succeeds.
  ScramServer done(postgresVerifier(), "");
  ScramClient client("pencil");
  ASSERT_TRUE(runExchange(done, client, kScramSha256).isOk());
  EXPECT_FALSE(done.handleClientFinal("c=biws,r=x,p=y").isOk());
}

TEST(ScramServerTest, ServerNonceIsBase64Of18RandomBytes) {
  ScramServer first(postgresVerifier(), "");
  ScramServer second(postgresVerifier(), "");
  Result<std::string> a = first.handleClientFirst(kScramSha256, "n,,n=,r=abc");
  Result<std::string> b = second.handleClientFirst(kScramSha256, "n,,n=,r=abc");
  ASSERT_TRUE(a.isOk() && b.isOk());
  std::string nonce = a->substr(5, a->find(',') - 5);  // after "r=abc"
  EXPECT_EQ(nonce.size(), 24u);
  EXPECT_EQ(base64Decode(nonce)->size(), 18u);
  EXPECT_NE(*a, *b);
}

TEST(ScramServerTest, MockAlwaysFailsButLooksReal) {
  ScramServer mock = ScramServer::mock("nobody", "process secret", "");
  ScramServer real(postgresVerifier(), "");
  EXPECT_EQ(mock.mechanisms(), real.mechanisms());
  ScramClient client("pencil", std::string(kClientNonce));
  Result<std::string> mock_first = mock.handleClientFirst(kScramSha256, client.clientFirstMessage());
  ASSERT_TRUE(mock_first.isOk()) << mock_first.status().message();
  Result<std::string> real_first = real.handleClientFirst(kScramSha256, client.clientFirstMessage());
  ASSERT_TRUE(real_first.isOk());
  // Same shape: r=<client nonce + 24 characters>,s=<base64 of 16 bytes>,i=4096.
  ASSERT_EQ(mock_first->size(), real_first->size());
  EXPECT_TRUE(mock_first->starts_with(fmt::format("r={}", kClientNonce)));
  size_t salt_at = mock_first->find(",s=");
  size_t iterations_at = mock_first->find(",i=");
  ASSERT_NE(salt_at, std::string::npos);
  ASSERT_NE(iterations_at, std::string::npos);
  EXPECT_EQ(salt_at, real_first->find(",s="));
  EXPECT_EQ(base64Decode(mock_first->substr(salt_at + 3, iterations_at - salt_at - 3))->size(), 16u);
  EXPECT_TRUE(mock_first->ends_with(",i=4096"));

  // The client computes a proof as usual; the mock refuses it with the wrong-password message.
  Result<std::string> client_final = client.handleServerFirst(*mock_first);
  ASSERT_TRUE(client_final.isOk()) << client_final.status().message();
  Result<std::string> result = mock.handleClientFinal(*client_final);
  EXPECT_EQ(result.status().message(), "SCRAM: client proof does not match (wrong password or unknown user)");
  EXPECT_FALSE(mock.succeeded());
}

TEST(ScramServerTest, MockFailsEvenWithTheRightProofForItsVerifier) {
  // Even a client that knew the mock's keys could not get in: the doomed flag decides.
  ScramServer mock = ScramServer::mock("nobody", "process secret", testCbindData());
  EXPECT_EQ(mock.mechanisms(), (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));
  ScramClient client("pencil");
  client.useChannelBinding(testCbindData());
  EXPECT_FALSE(runExchange(mock, client, kScramSha256Plus).isOk());
  EXPECT_FALSE(mock.succeeded());
}

TEST(ScramServerTest, MockSaltIsStablePerUserAndSecret) {
  auto saltOf = [](std::string_view user, std::string_view secret) {
    ScramServer mock = ScramServer::mock(user, secret, "");
    Result<std::string> first = mock.handleClientFirst(kScramSha256, "n,,n=,r=abc");
    EXPECT_TRUE(first.isOk());
    return first->substr(first->find(",s="));
  };
  EXPECT_EQ(saltOf("nobody", "s1"), saltOf("nobody", "s1"));
  EXPECT_NE(saltOf("nobody", "s1"), saltOf("somebody", "s1"));
  EXPECT_NE(saltOf("nobody", "s1"), saltOf("nobody", "s2"));
}

TEST(ScramServerTest, ErrorsNeverContainProofOrNonce) {
  const std::string proof = "xBGkldutSw0Nz/5Kjne4N0u3diem+Xx9A7h6va1Jn08=";
  for (const std::string& message : {
           clientFinalError("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=" + proof + "x"),
           clientFinalError("c=eSws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p=" + proof),
           clientFinalError("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7k,p=" + proof),
       }) {
    EXPECT_EQ(message.find(proof), std::string::npos) << message;
    EXPECT_EQ(message.find(kClientNonce), std::string::npos) << message;
    EXPECT_EQ(message.find("pencil"), std::string::npos) << message;
  }
}

// The fuzz seeds are whole exchanges computed by tests/fuzz/make_auth_corpus.py with Python's
// hashlib; they must succeed here, or the fuzzer would start from failing inputs only.
std::vector<std::string> readSeed(const std::string& name) {
  std::ifstream in(std::string(CUTOVER_AUTH_CORPUS_DIR) + "/" + name, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t nul = bytes.find('\0'); nul != std::string::npos; nul = bytes.find('\0', start)) {
    parts.push_back(bytes.substr(start, nul - start));
    start = nul + 1;
  }
  parts.push_back(bytes.substr(start));
  return parts;
}

TEST(ScramServerTest, FuzzSeedsAreValidExchanges) {
  struct Case {
    std::string seed;
    bool with_tls;
    bool succeeds;
  };
  const Case cases[] = {
      {"scram_plain", false, true},          {"scram_plain", true, true},
      {"scram_plus", true, true},            {"scram_plus", false, false},
      {"scram_y_flag", false, true},         {"scram_y_flag", true, false},
      {"scram_extension", false, true},      {"scram_wrong_password", false, false},
  };
  for (const Case& c : cases) {
    std::vector<std::string> parts = readSeed(c.seed);
    ASSERT_EQ(parts.size(), 3u) << c.seed;
    ScramServer server(postgresVerifier(), c.with_tls ? testCbindData() : "", std::string(kServerNonce));
    Result<std::string> first = server.handleClientFirst(parts[0], parts[1]);
    bool ok = first.isOk() && server.handleClientFinal(parts[2]).isOk();
    EXPECT_EQ(ok, c.succeeds) << c.seed << (c.with_tls ? " over TLS" : "");
    EXPECT_EQ(server.succeeded(), c.succeeds) << c.seed;
  }
}

TEST(Md5VerifyTest, PostgresHash) {
  // The response libpq sends for bob/pencil, computed with md5PasswordResponse (itself checked
  // against Python in md5_test.cc); the stored hash is PostgreSQL's own.
  std::array<uint8_t, 4> salt = {0x12, 0x34, 0x56, 0x78};
  std::string response = md5PasswordResponse("bob", "pencil", salt);
  EXPECT_TRUE(verifyMd5Response(kPostgresMd5, response, salt));
  // Wrong password, wrong user, other salt, tampered and truncated answers.
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, md5PasswordResponse("bob", "pencil2", salt), salt));
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, md5PasswordResponse("alice", "pencil", salt), salt));
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, response, {0x12, 0x34, 0x56, 0x79}));
  std::string tampered = response;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, tampered, salt));
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, response.substr(0, 34), salt));
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, response + "0", salt));
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, "", salt));
  // Replaying the stored hash itself is not an answer.
  EXPECT_FALSE(verifyMd5Response(kPostgresMd5, kPostgresMd5, salt));
}

TEST(Md5VerifyTest, MalformedStoredHashNeverMatches) {
  std::array<uint8_t, 4> salt = {1, 2, 3, 4};
  EXPECT_FALSE(verifyMd5Response("", "md5", salt));
  EXPECT_FALSE(verifyMd5Response("md5", "md5" + md5Hex(std::string("\x01\x02\x03\x04", 4)), salt));
  std::string plain_stored = "xyz" + std::string(kPostgresMd5.substr(3));
  EXPECT_FALSE(verifyMd5Response(plain_stored, md5PasswordResponse("bob", "pencil", salt), salt));
}

}  // namespace
}  // namespace cutover::protocol
