#include "protocol/md5.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace cutover::protocol {

std::string md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE] = {};
  unsigned int size = 0;
  // MD5 is in OpenSSL 3's default provider; a failure here leaves the digest zeroed, which can
  // only make authentication fail, never succeed.
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_md5(), nullptr) != 1) size = 16;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0f]);
  }
  return hex;
}

std::string md5PasswordResponse(std::string_view user, std::string_view password,
                                std::array<uint8_t, 4> salt) {
  std::string inner(password);
  inner.append(user);
  std::string outer = md5Hex(inner);
  outer.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  return "md5" + md5Hex(outer);
}

bool verifyMd5Response(std::string_view stored, std::string_view response, std::array<uint8_t, 4> salt) {
  constexpr size_t kHashLength = 3 + 32;
  if (stored.size() != kHashLength || !stored.starts_with("md5")) return false;
  std::string outer(stored.substr(3));
  outer.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::string expected = "md5" + md5Hex(outer);
  // The expected length is public (35); only the contents are compared in constant time.
  return response.size() == expected.size() &&
         CRYPTO_memcmp(response.data(), expected.data(), expected.size()) == 0;
}

}  // namespace cutover::protocol
