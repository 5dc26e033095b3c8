#include "protocol/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fmt/format.h>

#include <charconv>
#include <climits>
#include <vector>

namespace cutover::protocol {
namespace {

constexpr size_t kNonceBytes = 18;

std::string_view asChars(const Sha256Digest& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

bool isBase64Char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

std::vector<std::string_view> splitAttributes(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

// "x=value" → value, when the attribute is named `name`.
std::optional<std::string_view> attribute(std::string_view part, char name) {
  if (part.size() < 2 || part[0] != name || part[1] != '=') return std::nullopt;
  return part.substr(2);
}

// RFC 5802 saslname: ',' and '=' are escaped as "=2C" and "=3D".
std::string escapeSaslName(std::string_view name) {
  std::string escaped;
  for (char c : name) {
    if (c == ',') {
      escaped += "=2C";
    } else if (c == '=') {
      escaped += "=3D";
    } else {
      escaped.push_back(c);
    }
  }
  return escaped;
}

std::optional<int> parseIterations(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<Sha256Digest> decodeDigest(std::string_view text) {
  std::optional<std::string> bytes = base64Decode(text);
  if (!bytes || bytes->size() != 32) return std::nullopt;
  Sha256Digest digest;
  for (size_t i = 0; i < 32; ++i) digest[i] = static_cast<uint8_t>((*bytes)[i]);
  return digest;
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(written < 0 ? 0 : static_cast<size_t>(written));
  return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (!isBase64Char(text[i])) return std::nullopt;
  }
  if (text.empty()) return std::string();
  std::string out(text.size() / 4 * 3, '\0');
  int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (written < 0 || static_cast<size_t>(written) < padding) return std::nullopt;
  // EVP_DecodeBlock counts the zero bytes the padding stands for.
  out.resize(static_cast<size_t>(written) - padding);
  return out;
}

Sha256Digest sha256(std::string_view data) {
  Sha256Digest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data());
  return digest;
}

Sha256Digest hmacSha256(std::string_view key, std::string_view data) {
  Sha256Digest digest{};
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest.data(), &size);
  return digest;
}

Sha256Digest scramSaltedPassword(std::string_view password, std::string_view salt, int iterations) {
  Sha256Digest digest{};
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                    iterations, EVP_sha256(), static_cast<int>(digest.size()), digest.data());
  return digest;
}

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {
  unsigned char random[kNonceBytes];
  if (RAND_bytes(random, sizeof random) != 1) {
    nonce_failed_ = true;
    return;
  }
  nonce_ = base64Encode({reinterpret_cast<const char*>(random), sizeof random});
}

ScramClient::ScramClient(std::string password, std::string nonce)
    : password_(std::move(password)), nonce_(std::move(nonce)) {}

ScramClient::ScramClient(std::string password, std::string nonce, std::string username)
    : password_(std::move(password)), nonce_(std::move(nonce)), username_(std::move(username)) {}

std::string ScramClient::clientFirstBare() const {
  return fmt::format("n={},r={}", escapeSaslName(username_), nonce_);
}

void ScramClient::useChannelBinding(std::string cbind_data) {
  gs2_header_ = fmt::format("p={},,", kTlsServerEndPoint);
  cbind_data_ = std::move(cbind_data);
}

std::string ScramClient::clientFirstMessage() const {
  return gs2_header_ + clientFirstBare();
}

Result<std::string> ScramClient::handleServerFirst(std::string_view server_first) {
  if (nonce_failed_) return Status::error("SCRAM: could not generate a client nonce (RAND_bytes failed)");
  std::vector<std::string_view> parts = splitAttributes(server_first);
  if (!parts.empty() && attribute(parts[0], 'm')) {
    return Status::error("SCRAM: server-first-message requires an unsupported extension (m=)");
  }
  std::optional<std::string_view> nonce = parts.size() > 0 ? attribute(parts[0], 'r') : std::nullopt;
  std::optional<std::string_view> salt_text = parts.size() > 1 ? attribute(parts[1], 's') : std::nullopt;
  std::optional<std::string_view> iterations_text =
      parts.size() > 2 ? attribute(parts[2], 'i') : std::nullopt;
  if (!nonce || !salt_text || !iterations_text) {
    return Status::error(fmt::format("SCRAM: malformed server-first-message \"{}\" (expected r=,s=,i=)",
                                     server_first));
  }
  if (nonce->size() <= nonce_.size() || !nonce->starts_with(nonce_)) {
    return Status::error("SCRAM: server nonce does not extend the client nonce");
  }
  std::optional<std::string> salt = base64Decode(*salt_text);
  if (!salt || salt->empty()) return Status::error("SCRAM: salt in server-first-message is not valid base64");
  std::optional<int> iterations = parseIterations(*iterations_text);
  if (!iterations) {
    return Status::error(fmt::format("SCRAM: invalid iteration count \"{}\"", *iterations_text));
  }
  if (*iterations < 1) return Status::error(fmt::format("SCRAM: invalid iteration count {}", *iterations));
  // PostgreSQL's default is 4096. The key derivation runs on a worker thread, so a store (or
  // something impersonating one) asking for millions of rounds would stall every session there.
  if (*iterations > kMaxScramIterations) {
    return Status::error(fmt::format("SCRAM: iteration count {} exceeds cutover's limit of {}", *iterations,
                                     kMaxScramIterations));
  }

  Sha256Digest salted = scramSaltedPassword(password_, *salt, *iterations);
  Sha256Digest client_key = hmacSha256(asChars(salted), "Client Key");
  Sha256Digest stored_key = sha256(asChars(client_key));
  std::string final_without_proof = fmt::format("c={},r={}", base64Encode(gs2_header_ + cbind_data_), *nonce);
  std::string auth_message =
      fmt::format("{},{},{}", clientFirstBare(), server_first, final_without_proof);
  Sha256Digest client_signature = hmacSha256(asChars(stored_key), auth_message);
  Sha256Digest proof;
  for (size_t i = 0; i < proof.size(); ++i) proof[i] = client_key[i] ^ client_signature[i];
  Sha256Digest server_key = hmacSha256(asChars(salted), "Server Key");
  expected_server_signature_ = hmacSha256(asChars(server_key), auth_message);
  return fmt::format("{},p={}", final_without_proof, base64Encode(asChars(proof)));
}

Status ScramClient::verifyServerFinal(std::string_view server_final) {
  if (!expected_server_signature_) {
    return Status::error("SCRAM: server-final-message arrived before server-first-message");
  }
  std::string_view first = splitAttributes(server_final)[0];
  if (auto error = attribute(first, 'e')) {
    return Status::error(fmt::format("SCRAM: server rejected authentication: {}", *error));
  }
  std::optional<std::string_view> verifier = attribute(first, 'v');
  if (!verifier) {
    return Status::error(fmt::format("SCRAM: malformed server-final-message \"{}\"", server_final));
  }
  std::optional<Sha256Digest> signature = decodeDigest(*verifier);
  if (!signature) return Status::error("SCRAM: server signature is not a base64 SHA-256 digest");
  if (CRYPTO_memcmp(signature->data(), expected_server_signature_->data(), signature->size()) != 0) {
    return Status::error("SCRAM: server signature does not match (the server does not know the password)");
  }
  return Status::ok();
}

Result<ScramVerifier> parseScramVerifier(std::string_view text) {
  auto invalid = [](std::string_view what) {
    return Status::error(fmt::format("invalid SCRAM verifier: {}", what));
  };
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (!text.starts_with(kPrefix)) return invalid("does not start with SCRAM-SHA-256$");
  std::string_view rest = text.substr(kPrefix.size());
  size_t colon = rest.find(':');
  size_t dollar = rest.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar) {
    return invalid("expected <iterations>:<salt>$<StoredKey>:<ServerKey>");
  }
  std::optional<int> iterations = parseIterations(rest.substr(0, colon));
  if (!iterations || *iterations < 1) return invalid("bad iteration count");
  std::optional<std::string> salt = base64Decode(rest.substr(colon + 1, dollar - colon - 1));
  if (!salt || salt->empty()) return invalid("salt is not base64");
  std::string_view keys = rest.substr(dollar + 1);
  size_t key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) return invalid("expected <StoredKey>:<ServerKey>");
  std::optional<Sha256Digest> stored_key = decodeDigest(keys.substr(0, key_colon));
  std::optional<Sha256Digest> server_key = decodeDigest(keys.substr(key_colon + 1));
  if (!stored_key || !server_key) return invalid("keys must be base64 SHA-256 digests");
  ScramVerifier verifier;
  verifier.iterations = *iterations;
  verifier.salt = std::move(*salt);
  verifier.stored_key = *stored_key;
  verifier.server_key = *server_key;
  return verifier;
}

}  // namespace cutover::protocol
