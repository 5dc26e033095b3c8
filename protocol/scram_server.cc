#include "protocol/scram_server.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include <utility>

namespace cutover::protocol {
namespace {

constexpr size_t kServerNonceBytes = 18;  // as PostgreSQL's SCRAM_RAW_NONCE_LEN

std::string_view asChars(const Sha256Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

// RFC 5802 section 7: printable = %x21-2B / %x2D-7E (visible ASCII except ',').
bool isPrintableNonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

bool isAttributeName(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// "x=value" with a letter for x (RFC 5802 "attr-val"); the value is not checked.
bool isAttribute(std::string_view part) { return part.size() >= 2 && isAttributeName(part[0]) && part[1] == '='; }

std::optional<std::string_view> attributeValue(std::string_view part, char name) {
  if (part.size() < 2 || part[0] != name || part[1] != '=') return std::nullopt;
  return part.substr(2);
}

std::vector<std::string_view> splitOnCommas(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) {
      parts.push_back(text.substr(start));
      return parts;
    }
    parts.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
}

// Equal lengths are public (both sides know the format); the contents are compared in constant time.
bool constantTimeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Sha256Digest keyedDigest(std::string_view secret, std::string_view label, std::string_view user) {
  std::string data(label);
  data.push_back('\0');
  data.append(user);
  return hmacSha256(secret, data);
}

}  // namespace

ScramServer::ScramServer(ScramVerifier verifier, std::string cbind_data)
    : verifier_(std::move(verifier)), cbind_data_(std::move(cbind_data)) {}

ScramServer::ScramServer(ScramVerifier verifier, std::string cbind_data, std::string server_nonce)
    : verifier_(std::move(verifier)), cbind_data_(std::move(cbind_data)), server_nonce_(std::move(server_nonce)) {}

ScramServer ScramServer::mock(std::string_view user, std::string_view secret, std::string cbind_data) {
  // Deterministic per (user, secret): a client probing for user names sees a stable salt for a
  // name that does not exist, exactly as for one that does.
  ScramVerifier verifier;
  verifier.iterations = kScramDefaultIterations;
  Sha256Digest salt = keyedDigest(secret, "cutover mock salt", user);
  verifier.salt.assign(reinterpret_cast<const char*>(salt.data()), kScramDefaultSaltBytes);
  verifier.stored_key = keyedDigest(secret, "cutover mock stored key", user);
  verifier.server_key = keyedDigest(secret, "cutover mock server key", user);
  ScramServer server(std::move(verifier), std::move(cbind_data));
  server.doomed_ = true;
  return server;
}

std::vector<std::string> ScramServer::mechanisms() const {
  if (cbind_data_.empty()) return {std::string(kScramSha256)};
  return {std::string(kScramSha256Plus), std::string(kScramSha256)};
}

Status ScramServer::fail(std::string reason) {
  state_ = State::Failed;
  return Status::error(std::move(reason));
}

Status ScramServer::parseClientFirst(std::string_view mechanism, std::string_view client_first) {
  bool plus = false;
  if (mechanism == kScramSha256Plus) {
    if (cbind_data_.empty()) {
      return fail("SCRAM: client selected SCRAM-SHA-256-PLUS, which is offered only over TLS");
    }
    plus = true;
  } else if (mechanism != kScramSha256) {
    return fail("SCRAM: client selected an unsupported SASL mechanism");
  }

  // gs2-header = gs2-cbind-flag "," [authzid] "," (RFC 5802 section 7).
  size_t flag_end = client_first.find(',');
  if (flag_end == std::string_view::npos) return fail("SCRAM: malformed client-first-message (no gs2 header)");
  std::string_view flag = client_first.substr(0, flag_end);
  if (flag == "n") {
    if (plus) return fail("SCRAM: client selected SCRAM-SHA-256-PLUS but sent no channel-binding data");
  } else if (flag == "y") {
    if (plus) return fail("SCRAM: client selected SCRAM-SHA-256-PLUS but sent no channel-binding data");
    // RFC 5802 section 6: the client supports binding but believes we do not. We offered PLUS,
    // so something between us removed it from the list: a downgrade.
    if (!cbind_data_.empty()) {
      return fail("SCRAM: channel-binding negotiation error (client supports binding but thinks the server "
                  "does not, and the server offered SCRAM-SHA-256-PLUS)");
    }
  } else if (flag.starts_with("p=")) {
    if (!plus) return fail("SCRAM: client selected SCRAM-SHA-256 but sent channel-binding data");
    if (flag.substr(2) != kTlsServerEndPoint) return fail("SCRAM: unsupported channel-binding type");
  } else {
    return fail("SCRAM: malformed client-first-message (bad channel-binding flag)");
  }

  std::string_view rest = client_first.substr(flag_end + 1);
  if (rest.starts_with("a=")) return fail("SCRAM: authorization identity (a=) is not supported");
  if (!rest.starts_with(",")) return fail("SCRAM: malformed client-first-message (bad gs2 header)");
  gs2_header_ = std::string(client_first.substr(0, flag_end + 2));
  std::string_view bare = rest.substr(1);

  // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
  if (bare.starts_with("m=")) return fail("SCRAM: client requires an unsupported extension (m=)");
  std::vector<std::string_view> parts = splitOnCommas(bare);
  // The username is ignored: PostgreSQL authenticates the startup packet's user.
  if (parts.size() < 2 || !attributeValue(parts[0], 'n')) {
    return fail("SCRAM: malformed client-first-message (expected n=)");
  }
  std::optional<std::string_view> client_nonce = attributeValue(parts[1], 'r');
  if (!client_nonce) return fail("SCRAM: malformed client-first-message (expected r=)");
  if (!isPrintableNonce(*client_nonce)) return fail("SCRAM: client nonce is empty or not printable");
  for (size_t i = 2; i < parts.size(); ++i) {
    if (!isAttribute(parts[i])) return fail("SCRAM: malformed client-first-message (bad extension attribute)");
  }
  client_first_bare_ = std::string(bare);

  if (server_nonce_.empty()) {
    unsigned char random[kServerNonceBytes];
    if (RAND_bytes(random, sizeof random) != 1) return fail("SCRAM: could not generate a server nonce");
    server_nonce_ = base64Encode({reinterpret_cast<const char*>(random), sizeof random});
  }
  combined_nonce_ = fmt::format("{}{}", *client_nonce, server_nonce_);
  server_first_ = fmt::format("r={},s={},i={}", combined_nonce_, base64Encode(verifier_.salt), verifier_.iterations);
  return Status::ok();
}

Result<std::string> ScramServer::handleClientFirst(std::string_view mechanism, std::string_view client_first) {
  if (state_ != State::ExpectClientFirst) return fail("SCRAM: unexpected client-first-message");
  Status parsed = parseClientFirst(mechanism, client_first);
  if (!parsed.isOk()) return parsed;
  state_ = State::ExpectClientFinal;
  return server_first_;
}

Result<std::string> ScramServer::handleClientFinal(std::string_view client_final) {
  if (state_ != State::ExpectClientFinal) return fail("SCRAM: unexpected client-final-message");

  // client-final-message = channel-binding "," nonce ["," extensions] "," proof
  std::vector<std::string_view> parts = splitOnCommas(client_final);
  if (parts.size() < 3) return fail("SCRAM: malformed client-final-message");
  std::optional<std::string_view> binding = attributeValue(parts[0], 'c');
  std::optional<std::string_view> nonce = attributeValue(parts[1], 'r');
  std::optional<std::string_view> proof_text = attributeValue(parts.back(), 'p');
  if (!binding || !nonce || !proof_text) {
    return fail("SCRAM: malformed client-final-message (expected c=,r=,…,p=)");
  }
  for (size_t i = 2; i + 1 < parts.size(); ++i) {
    if (!isAttribute(parts[i])) return fail("SCRAM: malformed client-final-message (bad extension attribute)");
  }

  // "c=" repeats the gs2 header, followed by the binding data for "p=" (RFC 5802 section 7).
  std::string expected_input = gs2_header_;
  if (gs2_header_.starts_with("p=")) expected_input += cbind_data_;
  if (!constantTimeEqual(*binding, base64Encode(expected_input))) {
    return fail("SCRAM: channel-binding data in client-final-message does not match");
  }
  if (!constantTimeEqual(*nonce, combined_nonce_)) {
    return fail("SCRAM: nonce in client-final-message does not match");
  }
  std::optional<std::string> proof = base64Decode(*proof_text);
  if (!proof || proof->size() != Sha256Digest().size()) {
    return fail("SCRAM: client proof is not a base64 SHA-256 digest");
  }

  std::string_view final_without_proof = client_final.substr(0, client_final.size() - parts.back().size() - 1);
  std::string auth_message = fmt::format("{},{},{}", client_first_bare_, server_first_, final_without_proof);
  // RFC 5802 section 3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage), and the proof
  // is right when H(ClientKey) == StoredKey.
  Sha256Digest client_signature = hmacSha256(asChars(verifier_.stored_key), auth_message);
  Sha256Digest client_key;
  for (size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] = static_cast<uint8_t>((*proof)[i]) ^ client_signature[i];
  }
  Sha256Digest computed_stored_key = sha256(asChars(client_key));
  OPENSSL_cleanse(client_key.data(), client_key.size());
  bool proof_ok = CRYPTO_memcmp(computed_stored_key.data(), verifier_.stored_key.data(),
                                computed_stored_key.size()) == 0;
  // A mock exchange reaches this point like a real one and fails with the same message.
  if (!proof_ok || doomed_) return fail("SCRAM: client proof does not match (wrong password or unknown user)");

  state_ = State::Succeeded;
  Sha256Digest server_signature = hmacSha256(asChars(verifier_.server_key), auth_message);
  return fmt::format("v={}", base64Encode(asChars(server_signature)));
}

Result<ScramVerifier> makeScramVerifier(std::string_view password, std::string_view salt, int iterations) {
  if (salt.empty()) return Status::error("SCRAM verifier: the salt must not be empty");
  if (iterations < 1 || iterations > kMaxScramIterations) {
    return Status::error(fmt::format("SCRAM verifier: iteration count {} is outside 1..{}", iterations,
                                     kMaxScramIterations));
  }
  Sha256Digest salted = scramSaltedPassword(password, salt, iterations);
  Sha256Digest client_key = hmacSha256(asChars(salted), "Client Key");
  ScramVerifier verifier;
  verifier.iterations = iterations;
  verifier.salt = std::string(salt);
  verifier.stored_key = sha256(asChars(client_key));
  verifier.server_key = hmacSha256(asChars(salted), "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  OPENSSL_cleanse(client_key.data(), client_key.size());
  return verifier;
}

std::string formatScramVerifier(const ScramVerifier& verifier) {
  return fmt::format("SCRAM-SHA-256${}:{}${}:{}", verifier.iterations, base64Encode(verifier.salt),
                     base64Encode(asChars(verifier.stored_key)), base64Encode(asChars(verifier.server_key)));
}

}  // namespace cutover::protocol
