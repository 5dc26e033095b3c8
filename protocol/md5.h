#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace cutover::protocol {

// Lower-case hex MD5 of `data` (32 characters).
std::string md5Hex(std::string_view data);

// The PasswordMessage answer to AuthenticationMD5Password (PostgreSQL 15 docs, "Message Flow"):
// "md5" + hex(md5(hex(md5(password + user)) + salt)).
std::string md5PasswordResponse(std::string_view user, std::string_view password,
                                std::array<uint8_t, 4> salt);

// Checks a PasswordMessage answer to AuthenticationMD5Password against the stored hash
// (`stored` = "md5" + hex(md5(password + user)), as in pg_authid). The comparison takes the same
// time wherever the answer differs; a malformed `stored` never matches.
bool verifyMd5Response(std::string_view stored, std::string_view response, std::array<uint8_t, 4> salt);

}  // namespace cutover::protocol
