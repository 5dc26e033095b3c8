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

}  // namespace cutover::protocol
