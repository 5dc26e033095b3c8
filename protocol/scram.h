#pragma once

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it (PostgreSQL 15 docs, "SASL
// Authentication"): no channel binding ("n,,"), and the server ignores the username in the
// client-first-message (it uses the startup packet's user), so the client sends "n=".
//
// Passwords are used as given, without SASLprep. PostgreSQL applies SASLprep and falls back to
// the raw password when that fails; for ASCII passwords without control characters SASLprep is
// the identity, so this matches the server. Non-ASCII passwords that SASLprep would change
// (NFKC, non-ASCII spaces) are not supported yet.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cutover::protocol {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr std::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";
// The only channel-binding type PostgreSQL implements (RFC 5929 section 4).
inline constexpr std::string_view kTlsServerEndPoint = "tls-server-end-point";

using Sha256Digest = std::array<uint8_t, 32>;

std::string base64Encode(std::string_view bytes);
// nullopt unless `text` is canonical padded base64 (length a multiple of 4).
std::optional<std::string> base64Decode(std::string_view text);
Sha256Digest sha256(std::string_view data);
Sha256Digest hmacSha256(std::string_view key, std::string_view data);
// Hi(password, salt, iterations) of RFC 5802 = PBKDF2-HMAC-SHA-256 with a 32-byte output.
Sha256Digest scramSaltedPassword(std::string_view password, std::string_view salt, int iterations);

// Client side, for the proxy logging into a store. One instance per authentication exchange:
// clientFirstMessage() → handleServerFirst() → verifyServerFinal().
// Highest iteration count a store may ask of the client side (each round is one HMAC).
inline constexpr int kMaxScramIterations = 1000000;

class ScramClient {
 public:
  // Random 18-byte nonce, base64-encoded.
  explicit ScramClient(std::string password);
  // Fixed nonce, for tests.
  ScramClient(std::string password, std::string nonce);
  // Fixed nonce and a username for the "n=" attribute (RFC test vectors; PostgreSQL ignores it).
  ScramClient(std::string password, std::string nonce, std::string username);

  // Use SCRAM-SHA-256-PLUS: the gs2 header becomes "p=tls-server-end-point,," and "c=" carries
  // `cbind_data` (the hash of the server's certificate, RFC 5929 section 4.1). Call before
  // clientFirstMessage(). Without it the client sends "n,," (no channel binding).
  void useChannelBinding(std::string cbind_data);

  // "<gs2 header>n=<user>,r=<nonce>": the data of SASLInitialResponse.
  std::string clientFirstMessage() const;
  // Takes the data of AuthenticationSASLContinue and returns the client-final-message (the data of
  // SASLResponse). Fails if the server nonce does not extend ours, the salt is not base64, the
  // iteration count is < 1, or an attribute is missing or unknown-mandatory.
  Result<std::string> handleServerFirst(std::string_view server_first);
  // Takes the data of AuthenticationSASLFinal; ok only if "v=" carries the ServerSignature we
  // expect. "e=<reason>" becomes an error naming the reason.
  Status verifyServerFinal(std::string_view server_final);

 private:
  std::string clientFirstBare() const;

  std::string password_;
  std::string nonce_;
  std::string username_;
  std::string gs2_header_ = "n,,";
  std::string cbind_data_;  // appended to the gs2 header in "c=" when binding
  bool nonce_failed_ = false;  // RAND_bytes failed in the constructor
  std::optional<Sha256Digest> expected_server_signature_;  // set by handleServerFirst
};

// A SCRAM verifier as pg_authid stores it: "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"
// (salt and keys base64). For the proxy's own front door.
struct ScramVerifier {
  int iterations = 0;
  std::string salt;  // decoded bytes
  Sha256Digest stored_key{};
  Sha256Digest server_key{};
};
// Errors describe what is wrong without repeating `text` (a verifier is a secret).
Result<ScramVerifier> parseScramVerifier(std::string_view text);

}  // namespace cutover::protocol
