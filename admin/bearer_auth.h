#pragma once

#include <string_view>

namespace cutover::admin {

// True when `authorization` (an Authorization header value) is "Bearer <expected>" (scheme
// case-insensitive, RFC 6750 section 2.1). The token comparison is constant-time in the token's
// content and length: both sides are hashed with SHA-256 and the digests compared with
// CRYPTO_memcmp, so neither a byte mismatch nor a length mismatch returns early.
bool bearerTokenMatches(std::string_view authorization, std::string_view expected);

}  // namespace cutover::admin
