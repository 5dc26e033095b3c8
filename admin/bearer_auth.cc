#include "admin/bearer_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cctype>

namespace cutover::admin {
namespace {

using Digest = std::array<unsigned char, 32>;

bool sha256(std::string_view data, Digest& out) {
  unsigned int length = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) == 1 &&
         length == out.size();
}

bool startsWithBearer(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  }
  return true;
}

}  // namespace

bool bearerTokenMatches(std::string_view authorization, std::string_view expected) {
  if (expected.empty() || !startsWithBearer(authorization)) return false;
  std::string_view presented = authorization.substr(7);
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  Digest a, b;
  if (!sha256(presented, a) || !sha256(expected, b)) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace cutover::admin
