#pragma once

// Server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677, RFC 5929) as
// PostgreSQL implements it (PostgreSQL 15 docs, "SASL Authentication"; src/backend/libpq/
// auth-scram.c): the username in "n=" is ignored (the startup packet's user counts), authzid is
// not supported, and the only channel-binding type is tls-server-end-point.
//
// Every failure is an error Status whose message is meant for the server log only: the caller
// answers all of them with the same FATAL 28P01. Messages never contain client proofs, keys,
// passwords or the client's SCRAM messages.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "protocol/scram.h"

namespace cutover::protocol {

// PostgreSQL's defaults for new verifiers (SCRAM_DEFAULT_ITERATIONS, SCRAM_DEFAULT_SALT_LEN).
inline constexpr int kScramDefaultIterations = 4096;
inline constexpr size_t kScramDefaultSaltBytes = 16;

// One instance per authentication exchange:
// mechanisms() → handleClientFirst() → handleClientFinal() → succeeded().
class ScramServer {
 public:
  // `cbind_data`: the tls-server-end-point hash of our certificate when the client connection is
  // TLS; empty for plaintext (then only SCRAM-SHA-256 is offered and channel binding fails).
  ScramServer(ScramVerifier verifier, std::string cbind_data);
  // Fixed server nonce part (printable, no ','), for tests and the fuzz target.
  ScramServer(ScramVerifier verifier, std::string cbind_data, std::string server_nonce);

  // For an unknown user: a verifier derived deterministically from (user, secret), so the
  // exchange looks the same as for a real user (same salt on every attempt) and fails only at
  // the proof, as PostgreSQL's mock authentication does. `secret` is a per-process random value.
  static ScramServer mock(std::string_view user, std::string_view secret, std::string cbind_data);

  // The mechanism names for AuthenticationSASL, in PostgreSQL's order.
  std::vector<std::string> mechanisms() const;
  // SASLInitialResponse: the chosen mechanism and the client-first-message. Returns the
  // server-first-message ("r=…,s=…,i=…") for AuthenticationSASLContinue.
  Result<std::string> handleClientFirst(std::string_view mechanism, std::string_view client_first);
  // SASLResponse: the client-final-message. Returns the server-final-message ("v=…") for
  // AuthenticationSASLFinal when the proof is right.
  Result<std::string> handleClientFinal(std::string_view client_final);
  // True only after handleClientFinal() verified the proof of a real (non-mock) user.
  bool succeeded() const { return state_ == State::Succeeded; }

 private:
  enum class State { ExpectClientFirst, ExpectClientFinal, Succeeded, Failed };

  Status fail(std::string reason);
  Status parseClientFirst(std::string_view mechanism, std::string_view client_first);

  ScramVerifier verifier_;
  std::string cbind_data_;
  std::string server_nonce_;  // empty: generated in handleClientFirst
  bool doomed_ = false;       // mock user: the proof never verifies
  State state_ = State::ExpectClientFirst;
  std::string gs2_header_;         // exactly as the client sent it
  std::string client_first_bare_;  // for the AuthMessage
  std::string server_first_;
  std::string combined_nonce_;
};

// A verifier for `password` the way PostgreSQL builds one (no SASLprep, see scram.h). Fails for
// an empty salt or iterations outside [1, kMaxScramIterations].
Result<ScramVerifier> makeScramVerifier(std::string_view password, std::string_view salt, int iterations);
// "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>", the inverse of parseScramVerifier().
std::string formatScramVerifier(const ScramVerifier& verifier);

}  // namespace cutover::protocol
